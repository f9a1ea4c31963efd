from __future__ import annotations

import itertools

import pytest

from breakeven.planner.sizing import (
    Deployment,
    SloTarget,
    evaluate,
    kv_bytes_per_token,
    layouts,
    operating_point,
    size,
    slo_concurrency,
)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("llama-3.1-8b", 131_072),
        ("mistral-7b", 131_072),
        ("llama-3.1-70b", 327_680),
        ("qwen2.5-72b", 327_680),
        ("llama-3.1-405b", 516_096),
        ("qwen2.5-7b", 57_344),
        ("gemma-2-9b", 344_064),
        ("gemma-2-27b", 376_832),
        ("deepseek-v3", 70_272),  # MLA: 61 layers x (512 + 64) x 2 bytes
    ],
)
def test_kv_bytes_per_token_matches_published_configs(catalog, model, expected):
    assert kv_bytes_per_token(catalog.model(model)) == expected


def test_fp8_kv_halves_and_gqa_heads_replicate_beyond_tp(catalog):
    llama = catalog.model("llama-3.1-70b")
    assert kv_bytes_per_token(llama, "fp8") == 327_680 / 2
    assert kv_bytes_per_token(llama, tp=8) == 327_680 / 8
    assert kv_bytes_per_token(llama, tp=16) == 327_680 / 8  # 8 KV heads: one per rank at most
    ds = catalog.model("deepseek-v3")
    assert kv_bytes_per_token(ds, tp=8) == kv_bytes_per_token(ds)  # the latent is replicated


def test_70b_bf16_does_not_fit_one_80gb_gpu_and_says_what_would(catalog):
    s = size(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"),
             gpus=1)
    assert not s.fits
    assert "141 GB" in (s.reason or "")
    assert any("FP8 on 1" in h for h in s.suggestions)
    assert any("2 x NVIDIA H100 SXM with tensor parallelism" in h for h in s.suggestions)


def test_70b_bf16_picks_two_gpus_by_default(catalog):
    s = size(catalog.model("llama-3.1-70b"), catalog.gpu("a100-80gb"), catalog.engine("vllm"))
    assert s.fits and s.deployment.gpus == 2


def test_8b_bf16_fits_a10g_with_room_for_kv_cache(catalog):
    s = size(catalog.model("llama-3.1-8b"), catalog.gpu("a10g"), catalog.engine("vllm"),
             input_len=1000, output_len=200)
    assert s.fits and s.deployment.gpus == 1
    assert 14.5 < s.memory.weights_gib < 15.5
    assert s.memory.kv_cache_gib_per_gpu > 2.5
    assert s.max_concurrency == s.memory.kv_tokens // 1200


def test_hf_ids_resolve_to_the_same_model(catalog):
    assert catalog.model("meta-llama/Llama-3.1-8B-Instruct").id == "llama-3.1-8b"


def test_405b_needs_more_than_one_node_in_bf16(catalog):
    s = size(catalog.model("llama-3.1-405b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"))
    assert s.fits and s.deployment.tp == 8 and s.deployment.pp == 2


def test_deepseek_v3_fp8_fits_8_h200_but_not_8_h100(catalog):
    ds = catalog.model("deepseek-v3")
    assert size(ds, catalog.gpu("h200"), catalog.engine("vllm"), quant="fp8").deployment.gpus == 8
    on_h100 = size(ds, catalog.gpu("h100-sxm"), catalog.engine("vllm"), quant="fp8", gpus=8)
    assert not on_h100.fits


def test_tp_must_divide_attention_heads(catalog):
    pairs = layouts(catalog.model("qwen2.5-7b"), catalog.gpu("h100-sxm"))  # 28 heads
    assert (8, 1) not in pairs and (4, 1) in pairs


def test_latency_rises_and_throughput_saturates_with_concurrency(catalog):
    dep = Deployment(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"),
                     catalog.engine("vllm"), "bf16")
    points = [operating_point(dep, 1000, 200, b) for b in (1, 4, 16, 64, 256)]
    tpots = [p.tpot_ms for p in points]
    ttfts = [p.ttft_ms for p in points]
    tput = [p.output_tok_s for p in points]
    assert tpots == sorted(tpots) and ttfts == sorted(ttfts)
    assert tput == sorted(tput)
    gains = [b / a for a, b in itertools.pairwise(tput)]
    assert gains[0] > gains[-1]  # diminishing returns toward saturation


def test_moe_decode_reads_only_active_experts_at_batch_one(catalog):
    engine = catalog.engine("vllm")
    mixtral = Deployment(catalog.model("mixtral-8x7b"), catalog.gpu("h100-sxm"), engine, "fp8")
    dense = Deployment(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"), engine, "fp8")
    one = operating_point(mixtral, 500, 200, 1).tpot_ms
    assert one < operating_point(dense, 500, 200, 1).tpot_ms / 3
    assert operating_point(mixtral, 500, 200, 64).tpot_ms > 1.5 * one


def test_slo_concurrency_is_the_largest_that_meets_it(catalog):
    dep = Deployment(catalog.model("llama-3.1-8b"), catalog.gpu("l40s"),
                     catalog.engine("vllm"), "fp8")
    s = evaluate(dep, 1000, 200, None, SloTarget(tpot_ms=40))
    assert 1 <= s.slo_concurrency < s.max_concurrency
    assert operating_point(dep, 1000, 200, s.slo_concurrency).tpot_ms <= 40
    assert operating_point(dep, 1000, 200, s.slo_concurrency + 1).tpot_ms > 40


@pytest.mark.parametrize(("model", "gpu", "quant", "tp", "layout", "inp", "out", "slo"), [
    ("llama-3.1-8b", "l40s", "fp8", 1, "tp", 1000, 200, SloTarget(tpot_ms=40)),
    ("llama-3.1-8b", "h100-sxm", "bf16", 1, "tp", 8000, 100, SloTarget(ttft_ms=2000)),
    ("llama-3.1-70b", "h100-sxm", "fp8", 2, "tp", 2000, 500,
     SloTarget(ttft_ms=800, tpot_ms=60)),
    ("deepseek-r1", "h200", "fp8", 8, "dp-ep", 1000, 1000, SloTarget(tpot_ms=50)),
    ("mixtral-8x7b", "a100-80gb", "bf16", 2, "tp", 300, 50, SloTarget(ttft_ms=250)),
])
def test_slo_concurrency_is_the_edge_a_scan_finds(catalog, model, gpu, quant, tp, layout,
                                                  inp, out, slo):
    # the search interpolates and halves an end's excess; a scan of every concurrency is
    # the reference it must agree with, for TPOT-bound, TTFT-bound and both
    dep = Deployment(catalog.model(model), catalog.gpu(gpu), catalog.engine("vllm"), quant,
                     tp, layout=layout)
    limit = min(dep.seqs, 400)
    scan = max((c for c in range(1, limit + 1)
                if slo.met_by(operating_point(dep, inp, out, c))), default=0)
    assert 0 < scan < limit  # the edge lies inside the range, where the search works
    assert slo_concurrency(dep, inp, out, limit, slo) == scan
