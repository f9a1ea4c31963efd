"""Expert-parallel (``ep``) and data-parallel-attention (``dp-ep``) layouts of MoE models:
their memory, the fabric's all-to-all, the batch each GPU runs, which engines offer them, and
the simulation agreeing with the analytic path on them."""

from __future__ import annotations

import pytest

from breakeven.errors import InputError
from breakeven.planner.formats import moe_layout_refusal
from breakeven.planner.replica import Deployment
from breakeven.planner.sizing import best_layout, evaluate, size
from breakeven.planner.step import allreduce_s, decode_step_s
from breakeven.sim.offline import simulated
from tests.support.cli import run_main


def _dep(catalog, layout, model="deepseek-v3", gpu="h200", gpus=8, quant="fp8"):
    g = catalog.gpu(gpu)
    return Deployment(catalog.model(model), g, catalog.engine("vllm"), quant, gpus, 1,
                      link=catalog.interconnect_for(g), layout=layout)


def test_expert_parallel_keeps_the_memory_split_and_dp_attention_replicates_attention(catalog):
    tp, ep, dp = (_dep(catalog, layout).mem for layout in ("tp", "ep", "dp-ep"))
    assert ep.weights_gib_per_gpu == pytest.approx(tp.weights_gib_per_gpu)
    # DeepSeek-V3's attention is ~4 x 7168^2 weights per layer, 61 layers, FP8: ~12.5 GB
    # whole on every GPU instead of an eighth of it
    extra_gb = (dp.weights_gib_per_gpu - tp.weights_gib_per_gpu) * 2**30 / 1e9
    assert extra_gb == pytest.approx(4 * 7168**2 * 61 * 7 / 8 / 1e9, rel=0.01)


def test_dp_attention_stores_an_mla_latent_once_instead_of_on_every_rank(catalog):
    tp, dp = _dep(catalog, "tp"), _dep(catalog, "dp-ep")
    # MLA's latent is replicated on every TP rank: the same bytes per token per GPU, but
    # with DP attention each GPU holds only its own sequences, so the replica holds ~8x
    assert tp.mem.kv_bytes_per_token_per_gpu == dp.mem.kv_bytes_per_token_per_gpu
    per_gpu_ratio = dp.mem.kv_cache_gib_per_gpu / tp.mem.kv_cache_gib_per_gpu
    assert dp.mem.kv_tokens == pytest.approx(8 * per_gpu_ratio * tp.mem.kv_tokens, rel=0.01)
    assert dp.seqs == 8 * tp.seqs and dp.batched_tokens == 8 * tp.batched_tokens


def test_the_fabric_trades_an_all_reduce_for_an_all_to_all(catalog):
    tp, ep, dp = (_dep(catalog, layout) for layout in ("tp", "ep", "dp-ep"))
    m, busbw, lat = tp.model, tp.rates.busbw, tp.rates.link_latency_s
    tokens = 256.0
    ring = 2 * 7 / 8 * tokens * m.hidden * 2 / busbw
    assert allreduce_s(tp, tokens) == pytest.approx(2 * m.layers * (ring + lat))
    # top-8 copies of each token's 7,168 activations, FP8 out and BF16 back, 7/8 of them
    # leaving the GPU, each GPU sending an eighth of the step's tokens
    a2a = 8 * 7168 * 3 * 7 / 8 / 8
    assert ep.rates.a2a_bytes_per_token == pytest.approx(a2a)
    moe = m.layers * (tokens * a2a / busbw + 2 * lat)
    assert allreduce_s(ep, tokens) == pytest.approx(m.layers * (ring + lat) + moe)
    assert allreduce_s(dp, tokens) == pytest.approx(moe)


def test_dp_attention_is_slower_for_one_sequence_and_serves_more_at_once(catalog):
    tp, dp = _dep(catalog, "tp"), _dep(catalog, "dp-ep")
    # one sequence: every GPU still reads the whole attention weights
    assert decode_step_s(dp, 1, 2000) > decode_step_s(tp, 1, 2000)
    a = evaluate(tp, 1000, 1000)
    b = evaluate(dp, 1000, 1000)
    assert b.max_concurrency > 4 * a.max_concurrency
    assert b.point is not None and a.point is not None
    assert b.point.output_tok_s > a.point.output_tok_s


@pytest.mark.parametrize("layout", ["ep", "dp-ep"])
def test_tpot_rises_with_concurrency_and_the_simulation_agrees(catalog, layout):
    tpots = [evaluate(_dep(catalog, layout), 1000, 500, c).point.tpot_ms
             for c in (1, 16, 64, 256)]
    assert tpots == sorted(tpots) and tpots[0] < tpots[-1]
    s = size(catalog.model("qwen3-235b-a22b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"),
             quant="fp8", gpus=8, input_len=1000, output_len=500, concurrency=64,
             link=catalog.interconnect_for(catalog.gpu("h100-sxm")), layout=layout)
    sim = simulated(s, spread=0.2, seed=1)
    assert sim.method == "simulated" and s.point is not None and sim.point is not None
    assert sim.point.output_tok_s == pytest.approx(s.point.output_tok_s, rel=0.2)
    assert sim.point.tpot_ms == pytest.approx(s.point.tpot_ms, rel=0.2)


def test_layouts_engines_and_models_refuse(catalog):
    dense, moe = catalog.model("llama-3.1-70b"), catalog.model("deepseek-v3")
    vllm, tgi = catalog.engine("vllm"), catalog.engine("tgi")
    assert "dense" in (moe_layout_refusal(dense, vllm, "ep", 8) or "")
    assert "tensor parallelism only" in (moe_layout_refusal(moe, tgi, "dp-ep", 8) or "")
    assert "2 or more GPUs" in (moe_layout_refusal(moe, vllm, "ep", 1) or "")
    assert "experts" in (moe_layout_refusal(moe, vllm, "ep", 3) or "")
    assert moe_layout_refusal(moe, vllm, "dp-ep", 8) is None
    assert moe_layout_refusal(dense, tgi, "tp", 1) is None
    h200 = catalog.gpu("h200")
    with pytest.raises(InputError, match="dense") as exc:
        size(dense, h200, vllm, layout="ep")
    assert exc.value.field == "layout"
    with pytest.raises(InputError, match="2 or more GPUs"):
        size(moe, h200, vllm, quant="fp8", gpus=1, layout="ep")
    # experts are split over a stage's GPUs, not over every GPU of the replica
    odd = moe.model_copy(update={"moe": moe.moe.model_copy(update={"experts": 12})})
    with pytest.raises(InputError, match=r"^gpus: 8 GPUs do not split the 12 experts"):
        size(odd, h200, vllm, quant="fp8", gpus=8, layout="ep")
    with pytest.raises(InputError, match="16 GPUs are 2 stages of 8: 8 GPUs do not split"):
        size(odd, h200, vllm, quant="fp8", gpus=16, layout="ep")
    four = size(odd, h200, vllm, quant="fp8", gpus=16, layout="tp")
    assert (four.deployment.tp, four.deployment.pp) == (8, 2)
    s = size(moe, h200, vllm, quant="fp8", layout="dp-ep")  # the fewest GPUs: one node
    assert s.fits and s.deployment.gpus == 8 and s.settings["layout"] == "dp-ep"


def test_auto_picks_the_layout_with_the_most_throughput_and_tp_for_dense(catalog):
    h200, vllm = catalog.gpu("h200"), catalog.engine("vllm")
    link = catalog.interconnect_for(h200)
    dense = best_layout(catalog.model("llama-3.1-70b"), h200, vllm, link=link)
    assert dense.deployment.layout == "tp"
    picked = best_layout(catalog.model("deepseek-v3"), h200, vllm, quant="fp8", gpus=8,
                         input_len=1000, output_len=1000, link=link)
    options = [size(catalog.model("deepseek-v3"), h200, vllm, quant="fp8", gpus=8,
                    input_len=1000, output_len=1000, link=link, layout=layout)
               for layout in ("tp", "ep", "dp-ep")]
    best = max(options, key=lambda s: s.point.output_tok_s if s.point else 0.0)
    assert picked.deployment.layout == best.deployment.layout


def test_sim_sizes_its_replica_on_the_catalog_fabric(catalog):
    from breakeven.cli.sim_cmd import _deployment

    dep = _deployment(None, "llama-3.3-70b", "h100-sxm", 2, "fp8", "auto", "vllm")
    link = catalog.interconnect_for(catalog.gpu("h100-sxm"))
    assert link is not None and dep.link == link
    assert dep.rates.busbw == pytest.approx(link.busbw_gbs * 1e9)


def _size(capsys, *args: str) -> tuple[int, str, str]:
    return run_main(capsys, "size", *args)


def test_size_layout_on_the_command_line(capsys):
    import json

    code, out, _ = _size(capsys, "--model", "deepseek-v3", "--gpu", "h200", "--layout",
                         "dp-ep", "--input-len", "1000", "--output-len", "200",
                         "--concurrency", "32", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["engine_settings"]["layout"] == "dp-ep" and d["gpus"] == 8
    code, out, _ = _size(capsys, "--model", "deepseek-v3", "--gpu", "h200", "--layout", "ep",
                         "--input-len", "1000", "--output-len", "200", "--concurrency", "32")
    assert code == 0 and "expert parallel" in out
    code, _, err = _size(capsys, "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--layout",
                         "ep")
    assert code == 2 and "dense" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_dp_rank_must_hold_a_whole_request_in_its_own_share_of_the_cache(catalog):
    """Under data-parallel attention a request lives on one rank: the whole replica's cache
    holding it is not enough, and the concurrency counts whole requests per rank."""
    gpu = catalog.gpu("h200")
    dep = Deployment(catalog.model("deepseek-v3"), gpu, catalog.engine("vllm"), "fp8", 8,
                     layout="dp-ep", gpu_memory_utilization=0.67,
                     link=catalog.interconnect_for(gpu))
    per_rank = dep.mem.kv_tokens // dep.ranks
    need = 128_000
    assert per_rank < need <= dep.mem.kv_tokens  # the case: fits the total, not a rank
    s = evaluate(dep, need - 8000, 8000)
    assert not s.fits and "one data-parallel rank" in (s.reason or "")
    roomy = Deployment(dep.model, gpu, dep.engine, "fp8", 8, layout="dp-ep",
                       gpu_memory_utilization=0.7, link=dep.link)
    ok = evaluate(roomy, need - 8000, 8000)
    per = roomy.mem.kv_tokens // roomy.ranks
    assert ok.fits and ok.max_concurrency == roomy.ranks * (per // need)
