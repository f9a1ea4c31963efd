"""One boundary decision: every class in force combines by the stricter rule, the header
raises and never lowers, and what the content holds always counts."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from breakeven.errors import ApiError
from breakeven.gateway.call import new_call
from breakeven.gateway.classify import classify, header_class
from breakeven.gateway.config import GatewayConfig, Key

CFG = GatewayConfig.model_validate({
    "backends": [{"name": "s", "url": "http://127.0.0.1:9/v1", "model": "m", "hosting": "self",
                  "gpu": {"gpu": "a10g", "usd_per_gpu_hour": 1, "capacity_tokens_per_s": 1}}],
    "routes": [{"alias": "r", "backends": ["s"]}],
    "data_classes": {"internal": {"hosting": ["self", "hosted"], "regions": ["eu"]},
                     "us-only": {"hosting": ["self", "hosted"], "regions": ["us"]},
                     "secret": {"hosting": ["self"], "action": "block"}}})
GENERAL = Key(name="g", sha256="1" * 64)
PII = Key(name="p", sha256="2" * 64, data_class="pii")
INTERNAL = Key(name="i", sha256="3" * 64, data_class="internal")


def test_classes_combine_by_the_stricter_rule():
    assert CFG.combine("general", "pii") == "pii"
    assert CFG.combine("general", "internal") == "internal"
    both = CFG.combine("internal", "pii")
    assert both == "internal+pii"
    rule = CFG.rule(both)
    assert rule is not None and rule.hosting == ("self",) and rule.regions == ("eu",)
    nowhere = CFG.rule(CFG.combine("internal", "us-only"))  # regions that do not meet
    assert nowhere is not None and nowhere.hosting == ()
    assert CFG.rule(CFG.combine("pii", "secret")).action == "block"  # type: ignore[union-attr]


def test_the_header_raises_never_lowers_and_names_one_class():
    assert header_class(CFG, GENERAL, CIMultiDict()) == "general"
    assert header_class(CFG, GENERAL, CIMultiDict({"x-data-class": "internal"})) == "internal"
    assert header_class(CFG, INTERNAL, CIMultiDict({"x-data-class": "pii"})) == "internal+pii"
    with pytest.raises(ApiError) as lower:
        header_class(CFG, PII, CIMultiDict({"x-data-class": "general"}))
    assert lower.value.status == 403
    for headers in (CIMultiDict([("x-data-class", "pii"), ("x-data-class", "general")]),
                    CIMultiDict({"x-data-class": "pii,general"})):
        with pytest.raises(ApiError, match="must name one class") as twice:
            header_class(CFG, GENERAL, headers)
        assert twice.value.status == 400
    with pytest.raises(ApiError, match="unknown data class 'piii'"):
        header_class(CFG, GENERAL, CIMultiDict({"x-data-class": "piii"}))


@pytest.mark.parametrize("declared", ["general", "internal"])
def test_what_the_content_holds_always_counts(declared):
    call = new_call("chat/completions")
    call.key = GENERAL
    classify(CFG, call, {"model": "r", "messages": [
        {"role": "user", "content": "card 4111 1111 1111 1111"}]}, lambda: declared)
    rule = CFG.rule(call.data_class)
    assert rule is not None and rule.hosting == ("self",)  # a hosted-allowed class is no way out
    assert "CREDIT_CARD" in call.trace.found


def test_a_blocked_class_is_refused_whatever_the_key_holds():
    call = new_call("chat/completions")
    call.key = PII
    with pytest.raises(ApiError) as refused:
        classify(CFG, call, {"model": "r", "messages": [
            {"role": "user", "content": "key sk-ant-api03-" + "A" * 40}]}, lambda: "pii")
    assert refused.value.status == 400 and refused.value.code == "sensitive_data_blocked"
