"""SGLang's default --mem-fraction-static and chunked-prefill size, as its server arguments
compute them, and what a deployment's memory makes of them: the fraction holds weights and
KV only."""

from __future__ import annotations

import pytest

from breakeven.planner.replica import GIB, Deployment, memory
from breakeven.planner.sizing import size
from breakeven.planner.static_fraction import cuda_graph_max_bs, static_fraction


def test_the_fraction_reserves_activations_graphs_and_the_parallel_layout():
    # an 80 GiB GPU at TP 8 with an 8k chunk: 512 + 8192 x 1.5 + 512 x 2 + 1024 MiB
    assert static_fraction(80.0, 8, 1, 8192) == round((81920 - 14848) / 81920, 3) == 0.819
    # a small reservation is raised to 10 GiB on a GPU over 60 GB
    assert static_fraction(80.0, 1, 1, 1024) == round((81920 - 10240) / 81920, 3)
    # below 60 GB no floor: a 24 GB GPU at TP 1 (graphs up to 24) keeps more
    assert static_fraction(24.0, 1, 1, 2048) == round(
        (24576 - (512 + 2048 * 1.5 + 24 * 2 + 128)) / 24576, 3)
    # a bigger chunk, more stages or data-parallel attention reserve more
    assert static_fraction(178.0, 4, 1, 16384) < static_fraction(178.0, 4, 1, 8192)
    assert static_fraction(178.0, 8, 2, 8192) < static_fraction(178.0, 8, 1, 8192)
    assert static_fraction(140.0, 8, 1, 8192, 8) < static_fraction(140.0, 8, 1, 8192) - 0.1
    assert [cuda_graph_max_bs(g * 1024, 8) for g in (16, 24, 40, 80, 141, 180)] == [
        8, 80, 160, 512, 512, 512]
    assert cuda_graph_max_bs(80 * 1024, 2) == 256


def test_an_sglang_deployment_takes_the_rule_unless_it_names_its_own(catalog):
    gpu, model = catalog.gpu("b200"), catalog.model("deepseek-r1")
    sglang, vllm = catalog.engine("sglang"), catalog.engine("vllm")
    dep = Deployment(model, gpu, sglang, "fp8", 4)
    assert dep.batched_tokens == 16384  # SGLang's chunked-prefill default on a B200
    assert dep.memory_utilization == static_fraction(gpu.memory_gib, 4, 1, 16384) < 0.86
    dep = Deployment(model, gpu, sglang, "fp8", 4, max_batched_tokens=8192)
    assert dep.memory_utilization == static_fraction(gpu.memory_gib, 4, 1, 8192) > 0.92
    assert Deployment(model, gpu, sglang, "fp8", 4,
                      gpu_memory_utilization=0.85).memory_utilization == 0.85
    assert Deployment(model, gpu, vllm, "fp8", 4).memory_utilization == \
        vllm.memory_fraction
    # weights and KV share the fraction; activations are not taken off it again
    m = memory(dep)
    assert m.kv_cache_gib_per_gpu == pytest.approx(
        gpu.memory_gib * dep.memory_utilization - m.weights_gib_per_gpu
        - m.overhead_gib_per_gpu)
    assert m.overhead_gib_per_gpu * GIB < (sglang.runtime_overhead_gib + 1) * GIB


def test_deepseek_r1_fp8_fits_four_b200s_on_sglang_as_inferencex_ran_it(catalog):
    """InferenceX's dashboard has SGLang 0.5.9 serving DeepSeek-R1 FP8 on 4 x B200 at
    8192/1024 with --chunked-prefill-size 8192 and no --mem-fraction-static; a flat 0.88
    left no room for the weights. SGLang's default 16k chunk reserves 12 GiB more, and
    then the weights do not fit."""
    gpu = catalog.gpu("b200")

    def on_four(**kw):
        return size(catalog.model("deepseek-r1"), gpu, catalog.engine("sglang"), quant="fp8",
                    gpus=4, input_len=8192, output_len=1024, kv_dtype="fp8",
                    link=catalog.interconnect_for(gpu), **kw)

    s = on_four(max_batched_tokens=8192)
    assert s.fits and s.deployment.gpus == 4 and s.max_concurrency >= 16
    default = on_four()
    assert not default.fits
    assert "16,384-token chunk" in default.reason and "--max-batched-tokens" in default.reason


def test_sglangs_chunk_follows_the_gpus_memory(catalog):
    sglang = catalog.engine("sglang")
    gpus = [catalog.gpu(g) for g in ("a10g", "l40s", "h100-sxm", "h200", "b200")]
    assert [g.memory_gib for g in gpus] == [22.5, 44.5, 79.6, 139.8, 178.0]
    assert [sglang.budget_on(g) for g in gpus] == [2048, 4096, 8192, 8192, 16384]
    pinned = sglang.model_copy(update={"max_batched_tokens": 4096})
    assert pinned.budget_on(catalog.gpu("b200")) == 4096  # a budget the row names wins


@pytest.mark.parametrize(("gpu", "seqs", "budget", "budget_028"), [
    ("l4", 256, 2048, 2048), ("l40s", 256, 2048, 2048), ("a100-40gb", 256, 2048, 2048),
    # 80 GB, but vLLM names A100s out (vllm-project/vllm#17885)
    ("a100-80gb", 256, 2048, 2048),
    ("h100-sxm", 1024, 8192, 8192), ("h200", 1024, 8192, 8192),
    ("rtx-pro-6000", 1024, 8192, 8192),
    # 160 GiB and more: 16,384 tokens from 0.28.0
    ("b200", 1024, 8192, 16384), ("mi300x", 1024, 8192, 16384),
    ("mi355x", 1024, 8192, 16384)])
def test_vllms_defaults_follow_the_gpu_as_its_api_server_sets_them(catalog, gpu, seqs,
                                                                   budget, budget_028):
    """vLLM's get_batch_defaults: 1024 sequences and 8192 tokens on GPUs of 70 GiB and more
    but A100s, 256 and 2048 on the rest (0.11-0.27), and from 0.28 16,384 tokens on GPUs of
    160 GiB and more. Once the catalog held 256 everywhere, a 2024 figure; then 0.11's
    defaults in a world of 0.28."""
    vllm, g = catalog.engine("vllm"), catalog.gpu(gpu)
    old = vllm.at_version("0.11.2")
    assert (old.seqs_on(g), old.budget_on(g)) == (seqs, budget)
    assert (vllm.seqs_on(g), vllm.budget_on(g)) == (seqs, budget_028)  # the catalog's 0.28
    later = vllm.at_version("0.30.1")  # past the last change recorded: its defaults hold
    assert (later.seqs_on(g), later.budget_on(g)) == (seqs, budget_028)
    s = size(catalog.model("llama-3.1-8b"), g, vllm, input_len=1000, output_len=200)
    assert s.fits and s.deployment.seqs == seqs and s.deployment.batched_tokens == budget_028
    assert s.max_concurrency <= seqs


def test_sglangs_default_chunk_is_the_replicas_under_dp_attention(catalog):
    """SGLang divides its chunked-prefill size over the DP ranks (chunked_prefill_size //
    dp_size); vLLM's and TensorRT-LLM's budgets are each rank's. A budget the deployment
    names is per rank everywhere."""
    h200, model = catalog.gpu("h200"), catalog.model("deepseek-v3")

    def dep(engine, **kw):
        return Deployment(model, h200, catalog.engine(engine), "fp8", 8, layout="dp-ep", **kw)

    assert dep("sglang").batched_tokens == 8192  # 1,024 a rank
    assert dep("vllm").batched_tokens == 8192 * 8
    assert dep("sglang", max_batched_tokens=2048).batched_tokens == 2048 * 8
    # the reservation follows the flag's chunk, the replica's
    assert dep("sglang").memory_utilization == static_fraction(h200.memory_gib, 8, 1, 8192, 8)
    assert Deployment(model, h200, catalog.engine("sglang"), "fp8", 8).batched_tokens == 8192


def test_a_budget_ladder_out_of_order_is_refused_naming_the_file(tmp_path):
    """``budget_by_memory`` takes the last step a GPU reaches: steps out of order (or a
    budget of no tokens) would pick the wrong one silently, so the catalog is refused."""
    from breakeven.errors import CatalogError
    from breakeven.loaders import default_catalog_dir, load_catalog

    text = (default_catalog_dir() / "engines.yaml").read_text()
    ladder = "    budget_by_memory: [[0, 2048], [35, 4096], [60, 8192], [160, 16384]]\n"
    assert ladder in text
    for bad in ("[[0, 2048], [160, 16384], [60, 8192]]", "[[0, 0]]", "[[0, 2048], [0, 4096]]"):
        (tmp_path / "engines.yaml").write_text(
            text.replace(ladder, f"    budget_by_memory: {bad}\n", 1))
        with pytest.raises(CatalogError, match="budget_by_memory") as err:
            load_catalog(tmp_path)
        assert "engines.yaml" in str(err.value)
