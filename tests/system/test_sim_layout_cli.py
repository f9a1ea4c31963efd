"""``breakeven sim --layout`` from the console entry point: a layout the engine or the model
cannot take is one line on stderr and exit 2; one it can is said in the start-up line and in
the offline run's description."""

from __future__ import annotations

import json

import pytest

from tests.support.servers import SimProcess

REFUSED = {
    "a dense model": (["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--layout", "ep"],
                      "is dense"),
    "an engine with tensor parallelism only": (
        ["--model", "deepseek-v3", "--gpu", "h200", "--engine", "tgi", "--layout", "dp-ep"],
        "has no dp-ep layout"),
    "one GPU": (["--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--gpus", "1", "--layout",
                 "ep"], "2 or more GPUs"),
    "a context over one rank's cache": (["--model", "qwen3-30b-a3b", "--gpu", "l4", "--gpus",
                                         "4", "--layout", "dp-ep", "--max-model-len", "40000"],
                                        "each of this deployment's 4 data-parallel ranks"),
    "a GPU count no layout takes": (["--model", "deepseek-v3", "--gpu", "h200", "--gpus", "3",
                                     "--layout", "dp-ep"], "does not divide the 128 attention"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_layout_that_cannot_run_is_one_line_and_exit_2(case, run_cli):
    args, needle = REFUSED[case]
    r = run_cli("sim", "--port", "0", *args)
    assert r.returncode == 2, (r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_the_layout_is_said_at_start_up_and_offline(run_cli, tmp_path):
    sim = SimProcess("--model", "qwen3-30b-a3b", "--gpu", "h100-sxm", "--gpus", "2",
                     "--layout", "dp-ep", "--time-scale", "0.01")
    try:
        assert "dp-ep: 2 attention data-parallel ranks" in sim.banner
    finally:
        sim.stop()
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"prompt": "hello", "max_tokens": 8}\n', encoding="utf-8")
    r = run_cli("sim", "--model", "deepseek-v3", "--gpu", "h200", "--layout", "ep",
                "--offline", "--trace", str(trace), "--json")
    assert r.returncode == 0, r.stderr
    assert "ep: experts split over 8 GPUs" in json.loads(r.stdout)["deployment"]


def test_the_scheduler_kind_is_said_offline(run_cli, tmp_path):
    """SGLang's steps (prompts first, unmixed) are said where the deployment is; vLLM's
    mixed steps need no word."""
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"prompt": "hello", "max_tokens": 8}\n', encoding="utf-8")
    said = {}
    for engine in ("sglang", "vllm"):
        r = run_cli("sim", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--engine", engine,
                    "--offline", "--trace", str(trace), "--json")
        assert r.returncode == 0, r.stderr
        said[engine] = json.loads(r.stdout)["deployment"]
    assert "prompts first, in steps of their own" in said["sglang"]
    assert "prompts first" not in said["vllm"]
