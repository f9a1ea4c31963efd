"""``stage: prototype`` stays hosted unless compliance forbids it; data classes are declared."""

from __future__ import annotations

import pytest

from breakeven.errors import WorkloadError
from breakeven.loaders import parse_workload
from breakeven.planner.search import plan
from tests.support.paths import TODAY

BIG = {"name": "big", "task": "chat", "quality": "mid",
       "traffic": {"tokens_per_day": 2_000_000_000, "input_tokens": 800, "output_tokens": 200},
       "team": {"ops_fte": 0.1}}


def test_a_high_volume_production_workload_self_hosts(catalog):
    assert plan(parse_workload(BIG, "w"), catalog, today=TODAY).verdict == "self_host"


def test_the_same_workload_as_a_prototype_stays_hosted_with_the_reason(catalog):
    result = plan(parse_workload(BIG | {"stage": "prototype"}, "w"), catalog, today=TODAY)
    assert result.verdict == "hosted"
    reasons = " ".join(result.reasons)
    assert "self-hosting locks you in" in reasons and "GPUs $" in reasons


def test_a_prototype_self_hosts_when_compliance_forbids_hosted(catalog):
    w = BIG | {"stage": "prototype", "compliance": {"custom_weights": True}}
    result = plan(parse_workload(w, "w"), catalog, today=TODAY)
    assert result.verdict == "self_host"
    assert any("compliance forbids" in r for r in result.reasons)


def test_stage_is_one_of_two(catalog):
    with pytest.raises(WorkloadError, match="stage"):
        parse_workload(BIG | {"stage": "beta"}, "w.yaml")


def _segmented(data_class: str, **extra: object) -> dict[str, object]:
    return BIG | {"segments": [{"name": "a", "share": 1.0, "data_class": data_class}]} | extra


def test_a_data_class_is_matched_case_insensitively_and_spelt_as_declared():
    w = parse_workload(_segmented("PII"), "w.yaml")
    assert w.segments[0].data_class == "pii" and w.sensitive("PII")
    assert not w.sensitive("general")


def test_an_unknown_data_class_is_refused_with_a_suggestion():
    with pytest.raises(WorkloadError, match=r"unknown data class 'piii' \(did you mean 'pii'\?\)"):
        parse_workload(_segmented("piii"), "w.yaml")


def test_declared_data_classes_replace_the_defaults():
    classes = [{"name": "general"}, {"name": "payroll", "sensitive": True}]
    w = parse_workload(_segmented("Payroll", data_classes=classes), "w.yaml")
    assert w.sensitive("payroll") and w.segments[0].data_class == "payroll"
    with pytest.raises(WorkloadError, match="unknown data class 'pii'"):
        parse_workload(_segmented("pii", data_classes=classes), "w.yaml")


def test_a_sensitive_segment_is_kept_off_hosted_apis(catalog):
    result = plan(parse_workload(_segmented("phi"), "w"), catalog, today=TODAY)
    assert all(p.side == "self_hosted" for p in result.chosen.placements)


def test_the_peak_warning_needs_interactive_traffic_on_the_gpus(catalog):
    peaky = BIG | {"traffic": BIG["traffic"] | {"peak_to_mean": 4, "tokens_per_day": 2e10}}
    interactive = plan(parse_workload(peaky, "w"), catalog, today=TODAY)
    assert interactive.verdict == "self_host"
    assert any("peaks at 4x" in w for w in interactive.warnings)
    batch = plan(parse_workload(peaky | {"segments": [{"name": "b", "share": 1.0,
                                                       "mode": "batch"}]}, "w"),
                 catalog, today=TODAY)
    assert not any("peaks at" in w for w in batch.warnings)


def test_the_compliance_warning_only_when_compliance_forced_it(catalog):
    result = plan(parse_workload(BIG, "w"), catalog, today=TODAY)
    assert not any("for compliance, not cost" in w for w in result.warnings)
