"""Launch lines accept the tail of request lengths, not only the mean request."""

from __future__ import annotations

from breakeven.loaders import parse_workload
from breakeven.planner.deploy import TAIL_MULTIPLE, context_for, p99_multiple
from breakeven.planner.search import plan
from tests.support.paths import TODAY


def test_the_assumed_tail_is_the_p99_of_a_lognormal():
    assert 3.3 < TAIL_MULTIPLE < 3.5
    assert p99_multiple(0.0) == 1.0


def test_the_context_covers_the_p99_rounded_up_and_says_so():
    c = context_for(800, 200, 131072)
    assert (c.max_input, c.max_output) == (2699, 675)  # ceil(3.37 x mean)
    assert c.model_len == 4096 and "p99" in c.note and "4,096" in c.note


def test_stated_maxima_win_and_the_model_caps_them():
    c = context_for(3000, 400, 32768, max_input=20000, max_output=2000)
    assert c.model_len == 22528 and "traffic.max_input_tokens and max_output_tokens" in c.note
    capped = context_for(3000, 400, 8192, max_input=20000, max_output=2000)
    assert capped.model_len == 8192 and "capped at the model's context" in capped.note
    assert capped.max_input <= 8192


def test_a_kv_cache_smaller_than_the_tail_caps_the_context():
    c = context_for(3000, 400, 131072, kv_tokens=5000)
    assert c.model_len == 4096 and "KV cache" in c.note


def _chosen(catalog, **traffic):
    w = parse_workload({"name": "t", "task": "chat", "quality": "mid",
                        "traffic": {"tokens_per_day": 2_000_000_000, "input_tokens": 3000,
                                    "output_tokens": 400} | traffic,
                        "team": {"ops_fte": 0.1}}, "w.yaml")
    result = plan(w, catalog, today=TODAY)
    assert result.verdict == "self_host"
    return result.chosen.deployment


def test_every_engine_line_takes_the_tail(catalog):
    dep = _chosen(catalog, max_input_tokens=16000, max_output_tokens=1000)
    assert "--max-model-len 17408" in dep.launch["vllm"]
    assert "--max-input-tokens 16000" in dep.launch["tgi"]
    assert "--max-total-tokens 17408" in dep.launch["tgi"]
    assert "--context-length 17408" in dep.launch["sglang"]
    assert "traffic.max_input_tokens" in dep.context_note
    default = _chosen(catalog)
    assert "--max-model-len 12288" in default.launch["vllm"]
