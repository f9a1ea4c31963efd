from __future__ import annotations

import json

import pytest

from breakeven.loaders import load_workload
from breakeven.planner.search import plan
from breakeven.render.data import plan_dict
from tests.support.paths import EXAMPLES, TODAY


def _plan(catalog, name, **traffic):
    w, cat = load_workload(EXAMPLES / name, catalog, today=TODAY)
    if traffic:
        w = w.model_copy(update={"traffic": w.traffic.model_copy(update=traffic)})
    return plan_dict(plan(w, cat, today=TODAY))


def test_seed_worked_example_gives_the_back_of_envelope_numbers(catalog):
    d = _plan(catalog, "seed-worked-example.yaml")
    assert d["verdict"] == "hosted"
    assert d["hosted"]["monthly_usd"] == 750.0
    assert d["self_hosted"]["monthly_usd"] == 2520.0
    assert d["self_hosted"]["gpu"] == "h100-sxm" and d["self_hosted"]["gpu_count"] == 1
    assert 0 < d["self_hosted"]["utilisation"] < 0.3
    assert 5e6 < d["breakeven"]["tokens_per_day"] < 100e6
    assert any("low volume" in w for w in d["warnings"])


def test_seed_worked_example_flips_at_100m_tokens_per_day(catalog):
    d = _plan(catalog, "seed-worked-example.yaml", tokens_per_day=100e6)
    assert d["verdict"] == "self_host"
    assert d["hosted"]["monthly_usd"] == 15000.0
    assert d["self_hosted"]["monthly_usd"] < 15000 * 0.8
    vllm = d["chosen"]["deployment"]["launch"]["vllm"].split()
    # FP8 weights: the catalog's FP8 checkpoint, served under the model's own id
    assert vllm[:3] == ["vllm", "serve", "nvidia/Llama-3.1-70B-Instruct-FP8"]
    assert vllm[vllm.index("--served-model-name") + 1] == "meta-llama/Llama-3.1-70B-Instruct"
    assert any("estimated" in w for w in d["warnings"])


def test_small_team_without_ops_capacity_stays_hosted(catalog):
    d = _plan(catalog, "small-team-prototype.yaml")
    assert d["verdict"] == "hosted"
    assert any("no GPU operations capacity" in r for r in d["reasons"])
    assert d["hosted"]["monthly_usd"] < 1000


def test_eu_regulated_workload_self_hosts_in_the_eu_for_audit(catalog):
    d = _plan(catalog, "eu-regulated.yaml")
    assert d["verdict"] == "self_host"
    assert d["chosen"]["deployment"]["offer"]["region"] == "eu"
    assert d["hosted"] is None
    assert any("audit requires pinned" in r for r in d["reasons"])
    assert any(e["why"].startswith("offer in region") for e in d["eliminated"])


def test_batch_extraction_at_volume_self_hosts_a_small_open_model(catalog):
    d = _plan(catalog, "batch-extraction.yaml")
    assert d["verdict"] == "self_host"
    dep = d["chosen"]["deployment"]
    assert dep["utilisation"] > 0.3
    assert d["self_hosted"]["monthly_usd"] < 0.8 * d["hosted"]["monthly_usd"]


def test_hybrid_support_bot_keeps_pii_self_hosted_and_escalates_hard_cases(catalog):
    d = _plan(catalog, "hybrid-support-bot.yaml")
    assert d["verdict"] == "hybrid"
    sides = {r["segment"]: r for r in d["routing"]}
    assert sides["account-pii"]["side"] == "self_hosted"
    assert sides["hard-cases"]["side"] == "hosted"
    assert sides["hard-cases"]["route"] == "support-escalation"
    # no option anywhere sends PII to a hosted model
    for option in d["options"]:
        for p in option["placements"]:
            if p["segment"] == "account-pii":
                assert p["side"] == "self_hosted"


def test_plan_json_is_serialisable_and_every_option_is_ranked(catalog):
    d = _plan(catalog, "hybrid-support-bot.yaml")
    json.dumps(d)
    costs = [o["monthly_usd"] for o in d["options"]]
    assert costs == sorted(costs)
    assert d["schema"] == "breakeven.plan/v1"


def test_no_feasible_option_says_which_constraint_eliminated_what(catalog, tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("traffic: {requests_per_day: 1000}\ntask: reasoning\nquality: frontier\n"
                 "compliance: {audit: true}\n")
    w, cat = load_workload(f, catalog, today=TODAY)
    d = plan_dict(plan(w, cat, today=TODAY))
    assert d["verdict"] == "none"
    assert any("audit" in r for r in d["reasons"])
    assert any("quality" in r and "reasoning" in r for r in d["reasons"])


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_plans(catalog, name):
    assert _plan(catalog, name)["verdict"] in ("hosted", "self_host", "hybrid")


def test_gpus_paid_only_in_the_traffic_window_cost_less(catalog, tmp_path):
    base = ("traffic: {requests_per_day: 50000, hours_per_day: 10, days_per_week: 5}\n"
            "candidates: {open_models: [llama-3.1-8b], gpus: [l40s], hosted: [gpt-4o-mini]}\n"
            "quality: mid\n")
    costs = {}
    for schedule in ("always_on", "traffic_hours"):
        f = tmp_path / f"{schedule}.yaml"
        f.write_text(base + f"decision: {{gpu_schedule: {schedule}}}\n")
        w, cat = load_workload(f, catalog, today=TODAY)
        d = plan_dict(plan(w, cat, today=TODAY))
        dep = next(o for o in d["options"] if o["deployment"])["deployment"]
        costs[schedule] = (dep["gpu_usd"], dep["paid_hours_per_month"])
    assert costs["always_on"][1] == 720
    assert costs["traffic_hours"][1] == pytest.approx(10 * 30 * 5 / 7, abs=0.05)
    assert costs["traffic_hours"][0] < costs["always_on"][0]
