"""Local attention (sliding windows, chunked attention) and the per-sequence step cost in
the sizing model: what a sequence keeps in the KV cache and reads per step, capacity, the
simulator counting the same blocks, and a step that grows with its batch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from breakeven.planner.replica import Deployment, cached_tokens, memory
from breakeven.planner.sizing import evaluate, operating_point
from breakeven.planner.step import decode_step_s
from breakeven.sim.config import BLOCK, engine_config
from breakeven.sim.offline import closed_loop, request_specs, simulate


def _global(model):
    """The same model as if every layer attended globally."""
    return model.model_copy(update={"sliding_window": None, "sliding_window_layers": None})


def test_a_sequence_holds_every_token_globally_and_its_window_locally(catalog):
    oss = catalog.model("gpt-oss-20b")  # 24 layers, 12 with a 128-token window
    assert (oss.sliding_window, oss.sliding_window_layers, oss.layers) == (128, 12, 24)
    assert cached_tokens(oss, 100) == 100  # shorter than the window: all of it
    assert cached_tokens(oss, 10_000) == pytest.approx(12 / 24 * 10_000 + 12 / 24 * 128)
    maverick = catalog.model("llama-4-maverick")  # 36 of 48 layers chunked at 8,192
    assert cached_tokens(maverick, 40_960) == pytest.approx(
        (12 * 40_960 + 36 * 8_192) / 48)
    dense = catalog.model("llama-3.1-8b")
    assert cached_tokens(dense, 40_960) == 40_960


def test_windows_raise_the_sequences_the_cache_holds(catalog):
    gpu, engine = catalog.gpu("h100-sxm"), catalog.engine("vllm")
    oss = catalog.model("gpt-oss-20b")
    windowed = Deployment(oss, gpu, engine, "mxfp4", max_num_seqs=4096)
    everywhere = Deployment(_global(oss), gpu, engine, "mxfp4", max_num_seqs=4096)
    assert memory(windowed).kv_tokens == memory(everywhere).kv_tokens  # same bytes
    inp, out = 1024, 32_768
    a = evaluate(windowed, inp, out)
    b = evaluate(everywhere, inp, out)
    assert a.max_concurrency == memory(windowed).kv_tokens // cached_tokens(oss, inp + out)
    assert a.max_concurrency > 1.9 * b.max_concurrency


def test_local_layers_read_only_their_window_per_step(catalog):
    gpu, engine = catalog.gpu("h100-sxm"), catalog.engine("vllm")
    oss = catalog.model("gpt-oss-20b")
    windowed = Deployment(oss, gpu, engine, "mxfp4")
    everywhere = Deployment(_global(oss), gpu, engine, "mxfp4")
    # within the window both read the same; beyond it the windowed one reads about half
    assert decode_step_s(windowed, 64, 100) == pytest.approx(decode_step_s(everywhere, 64, 100))
    base = decode_step_s(windowed, 64, 0)
    long_w = decode_step_s(windowed, 64, 30_000) - base
    long_g = decode_step_s(everywhere, 64, 30_000) - base
    assert long_w == pytest.approx(long_g * (12 * 30_000 + 12 * 128) / (24 * 30_000), rel=1e-6)
    # TPOT still rises with the context
    steps = [decode_step_s(windowed, 64, c) for c in (1_000, 4_000, 16_000, 64_000)]
    assert steps == sorted(steps) and steps[0] < steps[-1]


def test_the_simulator_counts_each_sequence_the_way_sizing_does(catalog):
    """Per request, as vLLM's hybrid KV cache manager: a local layer keeps a sequence's last
    window, so the cache holds as many 40,000-token sequences as sizing says, and the cache
    itself (its tokens) does not depend on any length."""
    gpu = catalog.gpu("h100-sxm")
    dep = Deployment(catalog.model("llama-4-scout"), gpu, catalog.engine("vllm"), "fp8", 2,
                     link=catalog.interconnect_for(gpu))
    m, kv = dep.model, memory(dep).kv_tokens
    cfg = engine_config(dep)
    assert cfg.num_blocks == kv // BLOCK
    assert (cfg.global_layers, cfg.local_layers) == (m.layers - m.sliding_window_layers,
                                                     m.sliding_window_layers)
    assert cfg.window_blocks == -(-m.sliding_window // BLOCK) + 1
    n = 40_000 // BLOCK
    per = cfg.global_layers * n + cfg.local_layers * min(n, cfg.window_blocks)
    assert cfg.units // per == pytest.approx(kv // cached_tokens(m, 40_000), rel=0.01)
    plain = engine_config(Deployment(catalog.model("llama-3.1-8b"), gpu, catalog.engine("vllm"),
                                     "bf16", link=catalog.interconnect_for(gpu)))
    assert (plain.global_layers, plain.local_layers, plain.units) == (1, 0, plain.num_blocks)


def test_simulation_and_analytic_path_agree_on_a_windowed_model(catalog):
    gpu = catalog.gpu("h100-sxm")
    dep = Deployment(catalog.model("gpt-oss-20b"), gpu, catalog.engine("vllm"), "mxfp4")
    conc = 64
    run = closed_loop(dep, 4000, 400, conc, spread=0.2, seed=3, turns=6)
    plan = operating_point(dep, round(4000 * 0.9), round(400 * 0.9), conc)
    assert run["tpot_ms"]["mean"] == pytest.approx(plan.tpot_ms, rel=0.15)
    assert run["request_throughput"] == pytest.approx(plan.requests_per_s, rel=0.15)


def test_each_running_sequence_adds_the_engines_per_sequence_cost(catalog):
    gpu = catalog.gpu("h100-sxm")
    base = catalog.engine("vllm").model_copy(update={"sequence_overhead_us": 0.0})
    costly = base.model_copy(update={"sequence_overhead_us": 20.0})
    model = catalog.model("llama-3.1-8b")
    a = Deployment(model, gpu, base, "bf16")
    b = Deployment(model, gpu, costly, "bf16")
    for batch in (1, 64, 256):
        extra = decode_step_s(b, batch, 2000) - decode_step_s(a, batch, 2000)
        assert extra == pytest.approx(20e-6 * batch)
    # it lowers saturated throughput, more at a bigger batch
    lo = operating_point(b, 1000, 1000, 256).output_tok_s / operating_point(
        a, 1000, 1000, 256).output_tok_s
    hi = operating_point(b, 1000, 1000, 8).output_tok_s / operating_point(
        a, 1000, 1000, 8).output_tok_s
    assert lo < hi < 1


def test_per_request_windows_serve_long_sequences_a_global_count_would_preempt(catalog):
    """gpt-oss-120b on one H100, 64 concurrent 6,000 + 2,000-token requests (~4x the cache
    if every layer kept every token): counted per request the engine preempts half as often
    and serves a quarter more than the same cache counted globally."""
    gpu = catalog.gpu("h100-sxm")
    dep = Deployment(catalog.model("gpt-oss-120b"), gpu, catalog.engine("vllm"), "mxfp4",
                     link=catalog.interconnect_for(gpu), gpu_memory_utilization=0.90)
    cfg = engine_config(dep)  # (the fraction pinned: the case is sized to this cache)
    flat = replace(cfg, global_layers=1, local_layers=0, window_blocks=0)
    assert 3 * cfg.kv_tokens < 64 * 8000
    windowed, counted = (simulate(c, request_specs(64, 6000, 2000), concurrency=64)
                         for c in (cfg, flat))
    assert windowed["preemptions"] * 2 <= counted["preemptions"]
    assert windowed["output_throughput"] > 1.2 * counted["output_throughput"]
