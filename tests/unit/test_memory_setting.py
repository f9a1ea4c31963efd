"""The engine's memory setting as a deployment sets it (``--gpu-memory-utilization``): vLLM's
--gpu-memory-utilization and SGLang's --mem-fraction-static are shares of each GPU's whole
memory, TensorRT-LLM's free_gpu_memory_fraction a share of what the weights leave; what
each makes of the KV cache, what the output says, and the refusals."""

from __future__ import annotations

import json

import pytest

from breakeven.errors import InputError
from breakeven.planner.replica import GIB
from breakeven.planner.sizing import size
from tests.support.cli import run_main

_70B = dict(quant="fp8", gpus=2, input_len=1000, output_len=200, concurrency=8)


def _kv_gib(catalog, engine: str, fraction: float | None) -> tuple[float, object]:
    s = size(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"), catalog.engine(engine),
             gpu_memory_utilization=fraction, **_70B)
    assert s.fits
    return s.memory.kv_cache_gib_per_gpu, s


@pytest.mark.parametrize("engine", ["vllm", "sglang"])
def test_a_share_of_the_whole_gpu_moves_the_kv_cache_by_that_share(catalog, engine):
    gpu_gib = catalog.gpu("h100-sxm").memory_gib
    low, s_low = _kv_gib(catalog, engine, 0.80)
    high, s_high = _kv_gib(catalog, engine, 0.90)
    assert s_low.deployment.memory_utilization == 0.80
    assert high - low == pytest.approx(0.10 * gpu_gib, abs=0.05)  # block rounding
    assert s_high.memory.weights_gib_per_gpu == s_low.memory.weights_gib_per_gpu


def test_tensorrt_llms_share_is_of_the_memory_the_weights_leave(catalog):
    half, s = _kv_gib(catalog, "tensorrt-llm", 0.45)
    full, _ = _kv_gib(catalog, "tensorrt-llm", 0.90)
    assert full / half == pytest.approx(2.0, rel=0.01)  # KV is the share itself
    free = (catalog.gpu("h100-sxm").memory_gib - s.memory.weights_gib_per_gpu
            - s.memory.overhead_gib_per_gpu)
    assert full == pytest.approx(0.90 * free, rel=0.01)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "tensorrt-llm"])
def test_more_memory_for_the_engine_never_holds_fewer_sequences(catalog, engine):
    held = [_kv_gib(catalog, engine, f)[1].max_concurrency for f in (0.7, 0.8, 0.9, 0.95)]
    assert held == sorted(held) and held[-1] > held[0]


def test_the_setting_is_stated_and_the_default_is_the_engines(capsys, catalog):
    base = ("size", "--model", "deepseek-r1", "--gpu", "h200", "--gpus", "8", "--engine",
            "sglang", "--kv-dtype", "bf16", "--input-len", "8192", "--output-len", "1024",
            "--concurrency", "32", "--max-batched-tokens", "32768", "--json")
    code, out, _ = run_main(capsys, *base)
    assert code == 0
    default = json.loads(out)
    settings = default["engine_settings"]
    assert settings["memory_fraction_set"] is False
    assert settings["gpu_memory_utilization"] < 0.7  # SGLang's own rule for a 32k chunk
    code, out, _ = run_main(capsys, *base, "--gpu-memory-utilization", "0.82")
    assert code == 0
    given = json.loads(out)
    assert given["engine_settings"]["gpu_memory_utilization"] == 0.82
    assert given["engine_settings"]["memory_fraction_set"] is True
    # InferenceX's run kept all 32 of its 9k-token requests in flight at 0.82
    assert default["queued"] > 0 and given["queued"] == 0
    assert given["kv_cache_tokens"] > 3 * default["kv_cache_tokens"]
    code, out, _ = run_main(capsys, *base[:-1], "--gpu-memory-utilization", "0.82")
    assert code == 0 and "0.82 of total (set)" in out


@pytest.mark.parametrize("value", ["0", "-0.5", "1.2", "abc", "nan"])
def test_a_bad_setting_is_one_line_naming_the_option(capsys, value):
    code, out, err = run_main(capsys, "size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                              "--gpu-memory-utilization", value)
    assert code == 2 and out == ""
    assert "--gpu-memory-utilization" in err and "Traceback" not in err


def test_too_little_memory_is_a_fit_refused_with_the_figure(capsys):
    code, out, err = run_main(capsys, "size", "--model", "llama-3.1-70b", "--gpu", "h100-sxm",
                              "--gpus", "2", "--quant", "fp8", "--gpu-memory-utilization",
                              "0.3", "--json")
    assert code == 3 and "Traceback" not in err
    data = json.loads(out)
    assert data["fits"] is False and "30% memory utilisation" in data["reason"]


def test_the_simulator_serves_the_kv_cache_the_setting_leaves(capsys, tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"prompt": "hello there", "max_tokens": 4}\n' * 3, encoding="utf-8")
    base = ("sim", "--offline", "--trace", str(trace), "--model", "llama-3.1-8b", "--gpu",
            "h100-sxm", "--quant", "fp8", "--concurrency", "2", "--json")
    blocks = []
    for fraction in ("0.5", "0.9"):
        code, out, err = run_main(capsys, *base, "--gpu-memory-utilization", fraction)
        assert code == 0, err
        described = json.loads(out)["deployment"]
        blocks.append(int(described.split(" KV blocks")[0].rsplit(": ", 1)[1].replace(",", "")))
    blocks_half, blocks_most = blocks
    gib_per_block = 16 * 2 * 32 * 8 * 128 * 1 / GIB  # 8B: 32 layers x 8 KV heads x 128, FP8
    assert (blocks_most - blocks_half) * gib_per_block == pytest.approx(0.4 * 80, rel=0.02)


@pytest.mark.parametrize("kwargs", [{"rate": float("nan")}, {"rate": float("inf")},
                                    {"rate": -1.0}, {"gpu_memory_utilization": float("nan")},
                                    {"gpu_memory_utilization": 1.5},
                                    {"gpu_memory_utilization": 0.0}])
def test_the_core_refuses_what_the_cli_refuses(catalog, kwargs):
    # a NaN rate made the simulated open loop run forever (found through the CLI)
    field = next(iter(kwargs))
    with pytest.raises(InputError) as exc:
        size(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"),
             **kwargs)
    assert exc.value.field == field
