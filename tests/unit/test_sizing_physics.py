"""The sizing model's physics: weight and KV bytes, formats, the step's parts, work
conservation. Rows for models and GPU figures the catalog does not carry yet are built
here from their published facts."""

from __future__ import annotations

from datetime import date

import pytest

from breakeven.catalog.schema import GPU, MOE, OpenModel
from breakeven.errors import InputError
from breakeven.planner.formats import compute_tflops, weight_bytes
from breakeven.planner.replica import GIB, Deployment, kv_bytes_per_token, memory
from breakeven.planner.sizing import evaluate, operating_point, size
from breakeven.planner.step import allreduce_s, attention_flops, decode_step_s, prefill_s

# openai/gpt-oss-120b config.json: 36 layers, hidden 2880, 64 heads of 64, 8 KV heads,
# 128 experts (4 per token) of 3 x 2880 x 2880 weights each; ~116.8B total, ~5.1B active;
# MXFP4 checkpoint ~60.8 GiB (model card / HF repo).
GPT_OSS_EXPERTS_B = 36 * 128 * 3 * 2880 * 2880 / 1e9
GPT_OSS = OpenModel(
    id="gpt-oss-120b", name="gpt-oss-120b", family="gpt-oss", license="apache-2.0",
    params_b=116.8, active_params_b=5.1, layers=36, hidden=2880, heads=64, kv_heads=8,
    head_dim=64, intermediate=2880, vocab=201088, max_context=131072, native_quant="mxfp4",
    moe=MOE(experts=128, experts_per_token=4, expert_params_b=GPT_OSS_EXPERTS_B),
    source="huggingface.co/openai/gpt-oss-120b config.json", as_of=date(2025, 8, 5))


def _b200_fp4(cat) -> GPU:
    """The catalog's B200 with its dense FP4 rate (9 PFLOPS, NVIDIA DGX B200 datasheet)."""
    return cat.gpu("b200").model_copy(update={"fp4_tflops": 9000.0})


def test_gpt_oss_120b_mxfp4_weights_match_the_checkpoint_and_fit_one_80gb_gpu(catalog):
    assert 114 < GPT_OSS_EXPERTS_B < 115.5
    gib = weight_bytes(GPT_OSS, "mxfp4") / GIB
    assert gib == pytest.approx(60.8, rel=0.03)  # the published checkpoint
    s = size(GPT_OSS, catalog.gpu("h100-sxm"), catalog.engine("vllm"), quant="mxfp4",
             input_len=1024, output_len=1024)
    assert s.fits and s.deployment.gpus == 1
    assert not size(GPT_OSS, catalog.gpu("h100-sxm"), catalog.engine("vllm"), quant="bf16",
                    gpus=1).fits


def test_mxfp4_runs_weight_only_on_hopper_and_w4a8_on_blackwell(catalog):
    h100, b200 = catalog.gpu("h100-sxm"), _b200_fp4(catalog)
    assert compute_tflops(h100, "mxfp4") == h100.bf16_tflops
    assert compute_tflops(b200, "mxfp4") == b200.fp8_tflops == 4500.0
    assert compute_tflops(b200, "fp4") == 9000.0


def test_fp4_is_refused_on_a_gpu_without_fp4_tensor_cores(catalog):
    with pytest.raises(InputError, match="FP4 tensor cores"):
        size(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"),
             quant="fp4")
    dep = Deployment(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"),
                     catalog.engine("vllm"), "fp4")
    assert not evaluate(dep, 1000, 200).fits


def test_nvfp4_70b_fits_one_b200_with_block_scales_counted(catalog):
    s = size(catalog.model("llama-3.3-70b"), _b200_fp4(catalog), catalog.engine("vllm"),
             quant="fp4")
    assert s.fits and s.deployment.gpus == 1
    assert s.memory.weights_gib * GIB == pytest.approx(70.6e9 * (0.5 + 1 / 16), rel=0.01)


def test_int4_is_served_by_vllm_sglang_and_tensorrt_llm(catalog):
    for engine in ("vllm", "sglang", "tensorrt-llm"):
        s = size(catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm"),
                 catalog.engine(engine), quant="int4", gpus=1)
        assert s.fits, s.reason


def test_kv_dtype_auto_resolves_to_the_engines_default_for_the_format(catalog):
    m, gpu = catalog.model("llama-3.1-70b"), catalog.gpu("h100-sxm")
    fp8 = Deployment(m, gpu, catalog.engine("tensorrt-llm"), "fp8", 2)
    bf16 = Deployment(m, gpu, catalog.engine("vllm"), "bf16", 2)
    assert (fp8.kv_dtype, bf16.kv_dtype) == ("fp8", "bf16")
    assert memory(fp8).kv_bytes_per_token == kv_bytes_per_token(m) / 2
    assert Deployment(m, gpu, catalog.engine("vllm"), "fp8", 2, kv_dtype="bf16").kv == "bf16"


def test_saturation_is_capped_by_the_engines_max_num_seqs(catalog):
    dep = Deployment(catalog.model("llama-3.1-8b"), catalog.gpu("h200"),
                     catalog.engine("vllm"), "fp8")
    s = evaluate(dep, 500, 100)
    assert memory(dep).kv_tokens // 600 > 2000  # the cache alone would hold more
    assert s.max_concurrency == dep.seqs == 1024  # vLLM's default on a 141 GB GPU


def test_the_embedding_table_is_not_streamed_each_step(catalog):
    m = catalog.model("llama-3.1-8b")
    dep = Deployment(m, catalog.gpu("h100-sxm"), catalog.engine("vllm"), "bf16")
    bandwidth = dep.gpu.bandwidth_gbs * 1e9 * dep.engine.mbu
    everything = m.params_b * 1e9 * 2 / bandwidth
    streamed = (m.params_b * 1e9 - m.vocab * m.hidden) * 2 / bandwidth
    step = (decode_step_s(dep, 1, 0.0) - dep.engine.step_overhead_ms / 1e3
            - dep.engine.sequence_overhead_us / 1e6 - dep.rates.activation_s_per_token)
    assert step == pytest.approx(streamed, rel=1e-6)
    assert step < everything


def test_attention_is_added_to_the_gemms_not_overlapped(catalog):
    dep = Deployment(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"),
                     catalog.engine("vllm"), "bf16")
    kv_read = 64 * 4000 * kv_bytes_per_token(dep.model) / (dep.gpu.bandwidth_gbs * 1e9
                                                            * dep.engine.mbu)
    extra = decode_step_s(dep, 64, 4000.0) - decode_step_s(dep, 64, 0.0)
    assert extra == pytest.approx(kv_read, rel=1e-6)


def test_elementwise_traffic_grows_with_the_tokens_on_every_tp_rank(catalog):
    """Norms, residual adds and activation quantisation read and write each token's
    residual stream ``activation_passes`` times a layer: the step grows by that traffic for
    decode and prefill tokens alike, tensor parallelism does not split it (every rank holds
    the whole stream) and a data-parallel attention rank carries only its own tokens'."""
    gpu, model = catalog.gpu("h200"), catalog.model("deepseek-r1")
    base = catalog.engine("sglang").model_copy(update={
        "by_generation": {}, "moe_by_generation": {}, "activation_passes": 0.0})
    busy = base.model_copy(update={"activation_passes": 24.0})
    per_token = 24 * model.layers * model.hidden * 2 / (gpu.bandwidth_gbs * 1e9 * base.mbu)

    def extra(layout: str, tp: int, batch: int, prefill: int = 0) -> float:
        plain, heavy = (Deployment(model, gpu, e, "fp8", tp, layout=layout,  # no launches
                                   link=catalog.interconnect_for(gpu), prefill_graphs=True)
                        for e in (base, busy))  # to hide the traffic behind

        return (decode_step_s(heavy, batch, 2000.0, prefill, 500.0)
                - decode_step_s(plain, batch, 2000.0, prefill, 500.0))

    assert extra("tp", 8, 256) == pytest.approx(256 * per_token, rel=1e-6)
    assert extra("tp", 8, 64, 1024) == pytest.approx((64 + 1024) * per_token, rel=1e-6)
    assert extra("ep", 8, 256) == pytest.approx(extra("tp", 8, 256), rel=1e-6)
    assert extra("dp-ep", 8, 256) == pytest.approx(256 * per_token / 8, rel=1e-6)


def test_allreduce_uses_the_fabrics_achieved_bus_bandwidth(catalog):
    gpu = catalog.gpu("h100-sxm")
    link = catalog.interconnect_for(gpu)
    assert link is not None and link.busbw_gbs < gpu.interconnect_gbs / 2
    m = catalog.model("llama-3.1-70b")
    dep = Deployment(m, gpu, catalog.engine("vllm"), "fp8", 8, link=link)
    ring = 2 * 7 / 8 * 256 * m.hidden * 2 / (link.busbw_gbs * 1e9)
    assert allreduce_s(dep, 256) == pytest.approx(
        2 * m.layers * (ring + link.latency_us * 1e-6))
    assert allreduce_s(Deployment(m, gpu, catalog.engine("vllm"), "fp8", 1), 256) == 0


def test_mla_attention_costs_its_absorbed_flops(catalog):
    ds = catalog.model("deepseek-v3")
    dep = Deployment(ds, catalog.gpu("h200"), catalog.engine("sglang"), "fp8", 8)
    assert ds.mla is not None
    per = 2 * ds.heads * (2 * ds.mla.kv_lora_rank + ds.mla.qk_rope_head_dim) * ds.layers
    assert attention_flops(dep, 1, 1) == per
    # every TP rank reads the whole latent: attention does not shrink with TP
    bandwidth = dep.gpu.bandwidth_gbs * 1e9 * dep.engine.mbu
    whole = 64 * 9000 * kv_bytes_per_token(ds, dep.kv) / bandwidth
    extra = decode_step_s(dep, 64, 9000.0) - decode_step_s(dep, 64, 0.0)
    assert extra >= whole * (1 - 1e-9)


@pytest.mark.parametrize("engine", ["sglang", "tensorrt-llm", "vllm"])
def test_an_mla_models_prompt_steps_wait_on_eager_launches_unless_graphed(catalog, engine):
    """A step carrying prompt tokens runs without CUDA graphs: the host launches an MLA
    model's kernels one by one and the GPU runs behind them, so the step takes at least the
    launches; a long prompt, whose GPU work outlasts them, costs what it does graphed.
    Decode steps, graphed prefill and a GQA model do not wait on them."""
    gpu, e = catalog.gpu("h200"), catalog.engine(engine)
    eager = Deployment(catalog.model("deepseek-v3"), gpu, e, "fp8", 8)
    graphed = Deployment(catalog.model("deepseek-v3"), gpu, e, "fp8", 8, prefill_graphs=True)
    host = eager.model.layers * e.eager_mla_layer_us / 1e6
    assert host > 0.02  # tens of ms a step: what short prompts' TTFT shows
    r, layers = eager.rates, eager.model.layers
    for batch, prompt in ((0, 1), (0, 1024), (32, 512), (0, 32768)):
        outside = r.fixed_s + r.per_sequence_s * batch  # the engine's own step overhead
        work = decode_step_s(graphed, batch, 2000.0, prompt) - outside
        assert decode_step_s(eager, batch, 2000.0, prompt) - outside == pytest.approx(
            max(work, host) + min(work, host) / layers)
    assert decode_step_s(eager, 0, 0.0, 1) > 2 * decode_step_s(graphed, 0, 0.0, 1)
    assert decode_step_s(graphed, 0, 0.0, 32768) > 2 * host  # the GPU outlasts the host
    assert (decode_step_s(eager, 0, 0.0, 32768) - decode_step_s(graphed, 0, 0.0, 32768)
            == pytest.approx(host / layers))
    assert decode_step_s(eager, 32, 2000.0) == decode_step_s(graphed, 32, 2000.0)
    gqa = Deployment(catalog.model("llama-3.1-70b"), gpu, e, "fp8", 8)
    gqa_graphed = Deployment(catalog.model("llama-3.1-70b"), gpu, e, "fp8", 8,
                             prefill_graphs=True)
    assert decode_step_s(gqa, 0, 0.0, 1024) == decode_step_s(gqa_graphed, 0, 0.0, 1024)
    # a lone request's TTFT carries the difference once, on the analytic path and in the
    # simulation
    lone = [evaluate(d, 1024, 64, concurrency=1).point for d in (eager, graphed)]
    assert lone[0] is not None and lone[1] is not None
    waited = prefill_s(eager, 1024) - prefill_s(graphed, 1024)
    assert waited > 0.01
    assert lone[0].ttft_ms - lone[1].ttft_ms == pytest.approx(waited * 1e3, rel=0.02)


def test_moe_reads_more_experts_as_the_batch_grows(catalog):
    dep = Deployment(catalog.model("mixtral-8x7b"), catalog.gpu("h100-sxm"),
                     catalog.engine("vllm"), "fp8")
    steps = [decode_step_s(dep, b, 0.0) for b in (1, 2, 4, 16)]
    assert steps == sorted(steps) and steps[-1] > 1.5 * steps[0]


def test_prefill_is_never_dropped_beyond_the_token_budget(catalog):
    """405B FP8 on 8 x H200, 2048/128 at saturation: the output rate stays under the
    compute ceiling of every token it must prefill and decode."""
    m = catalog.model("llama-3.1-405b")
    dep = Deployment(m, catalog.gpu("h200"), catalog.engine("vllm"), "fp8", 8)
    s = evaluate(dep, 2048, 128)
    assert s.point is not None
    ceiling = dep.peak_flops * dep.engine.mfu * dep.tp / (2 * m.active_params_b * 1e9)
    assert s.point.requests_per_s * (2048 + 128) < ceiling
    assert s.point.output_tok_s < ceiling * 128 / (2048 + 128)


def test_tensorrt_llm_takes_its_fraction_of_the_memory_left_after_weights(catalog):
    m, gpu = catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm")
    trt = memory(Deployment(m, gpu, catalog.engine("tensorrt-llm"), "bf16", kv_dtype="bf16"))
    vllm = memory(Deployment(m, gpu, catalog.engine("vllm"), "bf16"))
    free = gpu.memory_gib - trt.weights_gib_per_gpu - trt.overhead_gib_per_gpu
    assert trt.kv_cache_gib_per_gpu == pytest.approx(free * 0.9, rel=1e-6)
    assert trt.kv_cache_gib_per_gpu > vllm.kv_cache_gib_per_gpu


def test_embeddings_take_one_prefill_pass(catalog):
    dep = Deployment(catalog.model("bge-m3"), catalog.gpu("l4"), catalog.engine("vllm"),
                     "bf16")
    p = operating_point(dep, 512, 0, 8)
    assert p.tpot_ms == 0 and p.output_tok_s == 0 and p.total_tok_s > 0


def test_pipeline_stages_run_micro_batches_at_once(catalog):
    """PP 2 keeps two micro-batches in flight: a step of 64 sequences is one pass of 32
    through both stages (every stage's weights read once per pass), one lone sequence gets
    no help, and a KV-bound replica serves more per GPU than one stage would."""
    m, gpu, e = catalog.model("llama-3.3-70b"), catalog.gpu("rtx-pro-6000"), catalog.engine("vllm")
    pp1, pp2 = (Deployment(m, gpu, e, "fp4", 1, pp, "fp8") for pp in (1, 2))
    one_pass = decode_step_s(pp1, 32, 1500) - pp1.rates.fixed_s  # all layers, 32 sequences
    step = decode_step_s(pp2, 64, 1500) - pp2.rates.fixed_s
    assert step == pytest.approx(one_pass, rel=1e-9)  # the two passes of 32 overlap
    assert (decode_step_s(pp2, 1, 1500) - pp2.rates.fixed_s
            == pytest.approx(decode_step_s(pp1, 1, 1500) - pp1.rates.fixed_s, rel=1e-9))
    one = evaluate(pp1, 1000, 1000)
    two = evaluate(pp2, 1000, 1000)
    assert two.memory.kv_tokens > 2 * one.memory.kv_tokens  # half the layers per GPU
    assert two.point.output_tok_s > 2 * one.point.output_tok_s
