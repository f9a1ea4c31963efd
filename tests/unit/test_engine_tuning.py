"""An engine's efficiency per GPU generation (engines.yaml ``by_generation``) and the layer
floor: a deployment takes the figures of its GPU's generation, a step's GPU work never
takes less than layers x the floor, and a floor only shows at small batches."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from breakeven.catalog.engine import EngineTuning
from breakeven.planner.replica import Deployment
from breakeven.planner.sizing import operating_point, size
from breakeven.planner.step import decode_step_s
from breakeven.render.terminal import print_sizing


def _rendered(s) -> str:
    out = io.StringIO()
    print_sizing(s, Console(file=out, width=400))
    return out.getvalue()


def test_every_gpu_names_its_generation(catalog):
    assert all(g.generation for g in catalog.gpus)
    assert catalog.gpu("h200").generation == "hopper"
    assert catalog.gpu("mi300x").generation == "cdna3"


def test_a_deployment_takes_its_generations_figures(catalog):
    engine = catalog.engine("vllm").model_copy(update={"by_generation": {
        "hopper": EngineTuning(mbu=0.5, layer_floor_us=40.0)}})
    model = catalog.model("llama-3.1-8b")
    on_hopper = Deployment(model, catalog.gpu("h100-sxm"), engine, "bf16")
    on_ampere = Deployment(model, catalog.gpu("a100-80gb"), engine, "bf16")
    assert (on_hopper.engine.mbu, on_hopper.engine.layer_floor_us) == (0.5, 40.0)
    assert on_hopper.engine.mfu == engine.mfu  # what the entry leaves out stays the row's
    assert on_ampere.engine.mbu == engine.mbu and on_ampere.engine.layer_floor_us == 0.0
    assert on_hopper.rates.bandwidth == pytest.approx(on_hopper.gpu.bandwidth_gbs * 1e9 * 0.5)


def test_the_catalogs_tuned_figures_reach_the_step(catalog):
    """SGLang's MI300X figures were fitted on MoE models only: an MoE takes them, a dense
    model keeps the row's own (an MoE's expert reads and kernels are not a dense model's)."""
    engine = catalog.engine("sglang")
    tuning = engine.moe_by_generation["cdna3"]
    gpu = catalog.gpu("mi300x")
    moe, dense = (Deployment(catalog.model(m), gpu, engine, "fp8", 8,
                             link=catalog.interconnect_for(gpu))
                  for m in ("deepseek-v3.1", "llama-3.1-70b"))
    assert moe.engine.mbu == tuning.mbu and moe.engine.layer_floor_us == tuning.layer_floor_us
    assert "cdna3" not in engine.by_generation
    assert (dense.engine.mbu, dense.engine.layer_floor_us) == (engine.mbu, engine.layer_floor_us)
    assert moe.rates.floor_s > 0 == dense.rates.floor_s


def test_a_dense_model_and_an_moe_take_their_own_kinds_figures(catalog):
    engine = catalog.engine("vllm").model_copy(update={
        "by_generation": {"hopper": EngineTuning(mbu=0.5)},
        "moe_by_generation": {"hopper": EngineTuning(mbu=0.3, layer_floor_us=50.0)}})
    gpu = catalog.gpu("h100-sxm")
    dense = Deployment(catalog.model("llama-3.1-8b"), gpu, engine, "bf16")
    moe = Deployment(catalog.model("qwen3-30b-a3b"), gpu, engine, "bf16")
    assert (dense.engine.mbu, dense.engine.layer_floor_us) == (0.5, 0.0)
    assert (moe.engine.mbu, moe.engine.layer_floor_us) == (0.3, 50.0)
    assert engine.tuned_for("hopper", moe=True) is moe.engine  # made once per kind


def _pair(catalog, floor_us):
    gpu = catalog.gpu("h100-sxm")
    base = catalog.engine("vllm").model_copy(update={"by_generation": {}})
    model = catalog.model("llama-3.1-70b")
    return [Deployment(model, gpu, base.model_copy(update={"layer_floor_us": f}), "fp8", 2,
                       link=catalog.interconnect_for(gpu)) for f in (0.0, floor_us)]


def test_a_steps_gpu_work_is_at_least_layers_times_the_floor(catalog):
    plain, floored = _pair(catalog, 400.0)
    layers = plain.model.layers
    fixed = plain.rates.fixed_s + plain.rates.per_sequence_s * 1
    assert decode_step_s(plain, 1, 100) - fixed < layers * 400e-6
    assert decode_step_s(floored, 1, 100) == pytest.approx(layers * 400e-6 + fixed)
    # a big batch does more work than the floor: the floor no longer shows
    assert decode_step_s(floored, 256, 4000) == decode_step_s(plain, 256, 4000)


def test_the_floor_slows_a_lone_request_more_than_a_full_batch(catalog):
    plain, floored = _pair(catalog, 400.0)
    alone = operating_point(floored, 1000, 500, 1).tpot_ms / operating_point(
        plain, 1000, 500, 1).tpot_ms
    busy = operating_point(floored, 1000, 500, 128).tpot_ms / operating_point(
        plain, 1000, 500, 128).tpot_ms
    assert alone > 1.2 and 1.0 <= busy < 1 + (alone - 1) / 3


def test_tuned_figures_are_made_once_and_a_copy_gets_its_own(catalog):
    engine = catalog.engine("vllm")
    first = engine.tuned_for("cdna3")
    assert engine.tuned_for("cdna3") is first and engine.tuned_for("hopper") is engine
    edited = engine.model_copy(update={"step_overhead_ms": 9.0})
    assert edited.tuned_for("cdna3").step_overhead_ms == 9.0  # not the original's memo
    assert engine.tuned_for("cdna3").step_overhead_ms == engine.step_overhead_ms


def test_a_freed_copys_tuned_figures_never_reach_a_new_copy(catalog):
    """Copies share the memo with their original; CPython reuses a freed copy's id for the
    next one, and an id-keyed memo then handed the new copy the freed one's figures (it
    failed an unrelated test in CI). Many short-lived copies with different figures, each
    must get its own."""
    import gc

    engine = catalog.engine("vllm")
    for i in range(300):
        floor = float(i % 7)
        copy = engine.model_copy(update={"by_generation": {
            "hopper": EngineTuning(layer_floor_us=floor)}})
        assert copy.tuned_for("hopper").layer_floor_us == floor
        del copy
        if i % 50 == 0:
            gc.collect()


def test_a_misspelt_generation_is_an_error_naming_the_field(tmp_path):
    from breakeven.errors import CatalogError
    from breakeven.loaders import default_catalog_dir, load_catalog

    text = (default_catalog_dir() / "engines.yaml").read_text()
    assert "      hopper: {" in text
    (tmp_path / "engines.yaml").write_text(text.replace("      hopper: {", "      hoper: {", 1))
    with pytest.raises(CatalogError) as err:
        load_catalog(tmp_path)
    assert "by_generation.hoper" in str(err.value) and "engines.yaml" in str(err.value)


def test_size_says_whose_efficiency_figures_it_used(catalog):
    """A figure from the catalog's fitted entry and one from an engine's untouched defaults
    (no published run of vLLM on Hopper with an MoE model fits one) read alike unless the
    output says which is which: the JSON names the entry, the table says "unchecked"."""
    model, gpu = catalog.model("deepseek-r1"), catalog.gpu("h200")
    tuned = size(model, gpu, catalog.engine("sglang"), quant="fp8", gpus=8, concurrency=1)
    plain = size(model, gpu, catalog.engine("vllm"), quant="fp8", gpus=8, concurrency=1)
    eff = tuned.settings["efficiency"]
    fitted = catalog.engine("sglang").moe_by_generation["hopper"]
    assert eff["tuned_for"] == "hopper/moe" and eff["kind"] == "moe"
    assert (eff["mbu"], eff["mfu"], eff["layer_floor_us"]) == (
        fitted.mbu, fitted.mfu, fitted.layer_floor_us)
    vllm = catalog.engine("vllm")
    assert plain.settings["efficiency"]["tuned_for"] is None
    assert plain.settings["efficiency"]["mbu"] == vllm.mbu
    # a dense model on the same GPU under SGLang keeps the row's own figures, and says so
    dense = size(catalog.model("llama-3.1-70b"), gpu, catalog.engine("sglang"), quant="fp8",
                 gpus=2, concurrency=1)
    assert dense.settings["efficiency"]["tuned_for"] is None
    assert dense.settings["efficiency"]["moe_efficiency"] is None
    text = _rendered(plain)
    assert "defaults, unchecked" in text and "hopper MoE" in text
    assert "figures for hopper MoE models in the catalog" in _rendered(tuned)
