"""``breakeven sim --layout`` runs the replica ``breakeven size --layout`` sizes: the same
deployment, the same KV cache and sequence slots, and a closed loop on it that agrees with
the analytic figures ``size`` reports for that layout."""

from __future__ import annotations

import pytest

from breakeven.cli.sim_cmd import _deployment
from breakeven.planner.sizing import Deployment, operating_point, size
from breakeven.sim.config import engine_config
from breakeven.sim.offline import closed_loop


def _settings(dep: Deployment) -> tuple[object, ...]:
    """What a replica is, field by field (the engine row by its figures: a catalog loaded
    twice gives equal rows, whatever each has cached)."""
    return (dep.model.id, dep.gpu.id, dep.engine.model_dump(), dep.quant, dep.tp, dep.pp,
            dep.kv_dtype, dep.layout, dep.link, dep.seqs, dep.batched_tokens,
            dep.memory_utilization)


CASES = [
    ("deepseek-v3", "h200", "fp8", "ep", 1000, 500, 64),
    ("deepseek-v3", "h200", "fp8", "dp-ep", 1000, 500, 256),
    ("qwen3-235b-a22b", "h100-sxm", "fp8", "dp-ep", 1000, 300, 128),
    ("gpt-oss-120b", "h100-sxm", "mxfp4", "ep", 1000, 300, 64),
]


@pytest.mark.parametrize(("model", "gpu", "quant", "layout", "inp", "out", "conc"), CASES)
def test_sim_and_size_run_the_same_layout_and_agree(catalog, model, gpu, quant, layout, inp,
                                                    out, conc):
    g = catalog.gpu(gpu)
    sized = size(catalog.model(model), g, catalog.engine("vllm"), quant=quant,
                 input_len=inp, output_len=out, concurrency=conc,
                 link=catalog.interconnect_for(g), layout=layout)
    assert sized.fits and sized.point is not None
    dep = _deployment(None, model, gpu, None, quant, "auto", "vllm", layout)
    assert _settings(dep) == _settings(sized.deployment) and dep.layout == layout
    config = engine_config(dep)
    assert config.kv_tokens == sized.memory.kv_tokens
    assert config.max_num_seqs == dep.seqs and config.max_num_batched_tokens == dep.batched_tokens
    run = closed_loop(dep, inp, out, conc, spread=0.2, seed=3, turns=6)
    # the simulated lengths average 0.9 x the nominal ones
    plan = operating_point(dep, round(inp * 0.9), round(out * 0.9), conc)
    assert run["request_throughput"] == pytest.approx(plan.requests_per_s, rel=0.15)
    assert run["tpot_ms"]["mean"] == pytest.approx(plan.tpot_ms, rel=0.15)


def test_dp_attention_counts_max_num_seqs_per_rank(catalog):
    dep = _deployment(None, "deepseek-v3", "h200", 8, "fp8", "auto", "vllm", "dp-ep")
    assert dep.ranks == 8
    assert engine_config(dep, max_num_seqs=64).max_num_seqs == 8 * 64
    tp = _deployment(None, "deepseek-v3", "h200", 8, "fp8", "auto", "vllm", "tp")
    assert engine_config(tp, max_num_seqs=64).max_num_seqs == 64
    # each rank keeps its own sequences' MLA latents: eight times the cache of one
    assert engine_config(dep).kv_tokens > 5 * engine_config(tp).kv_tokens


def test_a_dp_ep_sequence_fits_one_ranks_share_of_the_cache(catalog):
    # Qwen3-30B-A3B on 4 x L4: 120k tokens of cache in all, 30k on each rank, under the
    # model's 40,960-token context; tensor parallelism pools the cache for every sequence
    dep = _deployment(None, "qwen3-30b-a3b", "l4", 4, None, "auto", "vllm", "dp-ep")
    config = engine_config(dep)
    assert config.max_model_len == dep.mem.kv_tokens // 4 < dep.model.max_context
    tp = _deployment(None, "qwen3-30b-a3b", "l4", 4, None, "auto", "vllm", "tp")
    assert engine_config(tp).max_model_len == min(tp.model.max_context, tp.mem.kv_tokens)
