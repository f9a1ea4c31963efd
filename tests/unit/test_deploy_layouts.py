"""A MoE layout goes into each engine's launch line as that engine's own flags, and an
engine that has no such layout gets no line at all."""

from __future__ import annotations

import math

import pytest

from breakeven.planner.deploy import TRT_OPTIONS, launch_lines
from breakeven.planner.sizing import size
from tests.support.launch import trt_options


def _lines(catalog, layout, engines=None, engine="vllm", model="deepseek-v3"):
    h200 = catalog.gpu("h200")
    s = size(catalog.model(model), h200, catalog.engine(engine), quant="fp8",
             input_len=1000, output_len=1000, link=catalog.interconnect_for(h200),
             layout=layout)
    assert s.fits and s.deployment.gpus == 8
    return s, launch_lines(s, engines=catalog.engines if engines is None else engines)


def _flags(line: str) -> list[str]:
    return line.split()



def test_tensor_parallel_lines_carry_no_moe_flag_and_every_engine_gets_one(catalog):
    _, lines = _lines(catalog, "tp")
    assert list(lines) == ["vllm", "sglang", "tgi", "tensorrt-llm"]  # 8 GPUs: no Ollama
    joined = " ".join(lines.values())
    for flag in ("--enable-expert-parallel", "--data-parallel-size", "--ep-size",
                 "--enable-dp-attention", "--ep_size", "enable_attention_dp"):
        assert flag not in joined
    assert "--tensor-parallel-size 8" in lines["vllm"] and "--tp 8" in lines["sglang"]


def test_expert_parallel_flags_per_engine(catalog):
    s, lines = _lines(catalog, "ep")
    assert list(lines) == ["vllm", "sglang", "tensorrt-llm"]  # TGI has no expert parallelism
    vllm = _flags(lines["vllm"])
    assert "--enable-expert-parallel" in vllm and "--data-parallel-size" not in vllm
    assert vllm[vllm.index("--tensor-parallel-size") + 1] == "8"
    assert vllm[vllm.index("--max-num-seqs") + 1] == str(s.max_seqs)
    sglang = _flags(lines["sglang"])
    assert sglang[sglang.index("--ep-size") + 1] == "8" and "--enable-dp-attention" not in sglang
    trt = _flags(lines["tensorrt-llm"])
    assert trt[trt.index("--ep_size") + 1] == "8"
    assert "enable_attention_dp" not in trt_options(lines["tensorrt-llm"])


def test_data_parallel_attention_flags_per_engine(catalog):
    s, lines = _lines(catalog, "dp-ep")
    assert list(lines) == ["vllm", "sglang", "tensorrt-llm"]
    assert s.deployment.ranks == 8
    per_rank = str(math.ceil(s.max_seqs / 8))
    vllm = _flags(lines["vllm"])
    # vLLM: one engine core per DP rank, attention unsplit, experts over all eight
    assert vllm[vllm.index("--tensor-parallel-size") + 1] == "1"
    assert vllm[vllm.index("--data-parallel-size") + 1] == "8"
    assert "--enable-expert-parallel" in vllm
    assert vllm[vllm.index("--max-num-seqs") + 1] == per_rank
    sglang = _flags(lines["sglang"])
    assert sglang[sglang.index("--tp") + 1] == "8" and sglang[sglang.index("--dp-size") + 1] == "8"
    assert "--enable-dp-attention" in sglang and sglang[sglang.index("--ep-size") + 1] == "8"
    # SGLang divides --max-running-requests over its DP-attention workers itself
    assert sglang[sglang.index("--max-running-requests") + 1] == str(s.max_seqs)
    trt = lines["tensorrt-llm"]
    assert trt_options(trt)["enable_attention_dp"] is True
    flags = _flags(trt)
    assert flags[flags.index("--extra_llm_api_options") + 1] == TRT_OPTIONS
    assert flags[flags.index("--ep_size") + 1] == "8"
    assert flags[flags.index("--max_batch_size") + 1] == per_rank


@pytest.mark.parametrize("engine", ["sglang", "tensorrt-llm"])
def test_the_sized_engine_comes_first(catalog, engine):
    _, lines = _lines(catalog, "dp-ep", engine=engine)
    assert next(iter(lines)) == engine


def test_a_layout_an_engine_refuses_is_never_emitted(catalog):
    # an SGLang row offering expert parallelism but not DP attention: no dp-ep line for it
    engines = [e.model_copy(update={"moe_layouts": ("ep",)}) if e.id == "sglang" else e
               for e in catalog.engines]
    _, lines = _lines(catalog, "dp-ep", engines=engines)
    assert "sglang" not in lines and "vllm" in lines
    _, lines = _lines(catalog, "ep", engines=engines)
    assert "--ep-size 8" in lines["sglang"]
    # without the catalog's rows only the sized engine is known to take the layout
    _, alone = _lines(catalog, "ep", engines=())
    assert list(alone) == ["vllm"]


def test_every_line_carries_the_step_budget_and_kv_dtype_it_was_sized_with(catalog):
    """A budget the deployment sets and an FP8 KV cache reach each engine's own flags
    (SGLang's auto KV dtype is the model's 16-bit one and its chunk a total over the DP
    ranks); without them the engines' defaults, which the sizing assumed, stand, but for
    vLLM's budget, which its line always states."""
    h200 = catalog.gpu("h200")

    def sized(**kw):
        s = size(catalog.model("llama-3.1-70b"), h200, catalog.engine("sglang"), quant="fp8",
                 gpus=2, input_len=1000, output_len=1000, link=catalog.interconnect_for(h200),
                 **kw)
        assert s.fits
        return {k: _flags(v) for k, v in launch_lines(s, engines=catalog.engines).items()}

    lines = sized(kv_dtype="fp8", max_batched_tokens=4096)
    assert "--kv-cache-dtype fp8_e4m3" in " ".join(lines["sglang"])
    assert " ".join(lines["sglang"]).count("--chunked-prefill-size 4096") == 1
    assert "--max-num-batched-tokens 4096" in " ".join(lines["vllm"])
    assert "--kv-cache-dtype fp8" in " ".join(lines["vllm"])
    assert "--max_num_tokens 4096" in " ".join(lines["tensorrt-llm"])
    plain_lines = sized(kv_dtype="bf16")
    plain = " ".join(" ".join(v) for v in plain_lines.values())
    for flag in ("--kv-cache-dtype", "--chunked-prefill-size", "--max_num_tokens"):
        assert flag not in plain
    # vLLM's line pins the budget it was sized with even at the default: vLLM's own
    # default moves with the release (16,384 on GPUs of 160 GiB+ from 0.28)
    assert "--max-num-batched-tokens 8192" in " ".join(plain_lines["vllm"])


def test_sglangs_chunk_is_the_total_over_its_dp_ranks(catalog):
    h200 = catalog.gpu("h200")
    s = size(catalog.model("deepseek-v3"), h200, catalog.engine("sglang"), quant="fp8",
             input_len=1000, output_len=1000, link=catalog.interconnect_for(h200),
             layout="dp-ep", max_batched_tokens=2048)
    assert s.fits and s.deployment.gpus == 8
    lines = launch_lines(s, engines=catalog.engines)
    assert "--chunked-prefill-size 16384" in lines["sglang"]  # 2048 a rank x 8 ranks
    assert "--max-num-batched-tokens 2048" in lines["vllm"]  # one engine core's
