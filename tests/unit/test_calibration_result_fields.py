"""``plan --calibrate`` reads bench results a person may have edited or another tool may
have written: every field, set to every kind of junk, is read or refused with an input error
naming the file and the field, never a traceback (50 such paths crashed: a string count
compared with an int, a float of None, infinity rounded)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from breakeven.errors import InputError
from breakeven.planner.calibration import from_result

GOOD: dict[str, Any] = {
    "schema": "breakeven.bench/v1", "created": "2026-12-01",
    "deployment": {"model": "llama-3.1-8b", "gpu": "a10g", "gpus": 1, "quant": "bf16",
                   "engine": "vllm", "layout": "tp", "simulated": True},
    "server": {"breakeven": {"time_scale": 0.5}},
    "server_cache": {"num_gpu_blocks": "100", "block_size": "16"},
    "levels": [{"level": "c=4", "mode": "concurrency", "concurrency": 4, "status": "ok",
                "completed": 60, "requests": 60, "request_throughput": 1.0,
                "ttft_ms": {"p90": 10.0, "mean": 9.0}, "tpot_ms": {"p90": 10.0, "p50": 9.0},
                "e2e_ms": {"mean": 100.0, "p50": 90.0}, "mean_input_tokens": 100,
                "mean_output_tokens": 100, "server_late": False, "too_few": False}],
}
JUNK = ["x", -1, 0, None, [], {}, float("inf"), float("nan"), True, "\u00b2", 1e308, "1"]


def _paths(node: Any, prefix: tuple[Any, ...] = ()):
    items = (node.items() if isinstance(node, dict)
             else enumerate(node) if isinstance(node, list) else ())
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def test_the_good_result_reads():
    cal = from_result(copy.deepcopy(GOOD), "r.json")
    assert cal.gpus == 1 and cal.kv_tokens == 1600 and len(cal.levels) == 1
    assert cal.levels[0].rps == pytest.approx(0.5)  # the sim's time scale undone


@pytest.mark.parametrize("path", list(_paths(GOOD)), ids=lambda p: ".".join(map(str, p)))
def test_junk_in_any_field_is_read_or_refused_by_name(path):
    for junk in JUNK:
        data = copy.deepcopy(GOOD)
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = junk
        try:
            cal = from_result(data, "r.json")
        except InputError as e:
            assert e.where == "r.json" and "\n" not in str(e)
        else:
            assert all(0 < lv.rps < float("inf") for lv in cal.levels)
            assert cal.input_len >= 1 and cal.gpus >= 1
