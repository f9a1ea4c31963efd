from __future__ import annotations

import re
import shutil

import pytest

from breakeven.catalog.schema import TASKS
from breakeven.errors import CatalogError
from breakeven.loaders import default_catalog_dir, load_catalog, load_workload
from breakeven.planner.search import plan
from breakeven.render.data import plan_dict
from tests.support.paths import EXAMPLES, TODAY

REQUIRED_GPUS = {"a10g", "l4", "l40s", "a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200",
                 "b200", "mi300x"}
REQUIRED_MODELS = {"llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.3-70b",
                   "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-72b", "gemma-2-9b",
                   "gemma-2-27b", "deepseek-v3"}


def test_catalog_covers_the_required_rows(catalog):
    assert {g.id for g in catalog.gpus} >= REQUIRED_GPUS
    assert {m.id for m in catalog.models} >= REQUIRED_MODELS
    assert {e.id for e in catalog.engines} == {"vllm", "tgi", "sglang", "ollama", "tensorrt-llm"}
    providers = {h.provider for h in catalog.hosted}
    assert {"anthropic", "openai", "google", "together", "fireworks", "groq"} <= providers
    for gpu in REQUIRED_GPUS:
        assert catalog.offers_for(gpu), gpu


def test_ids_are_lower_case_slugs(catalog):
    for row in (*catalog.gpus, *catalog.models, *catalog.hosted, *catalog.engines):
        assert re.fullmatch(r"[a-z0-9][a-z0-9.\-/]*", row.id), row.id


def test_every_model_has_a_quality_tier_for_its_kind(catalog):
    for m in (*catalog.models, *catalog.hosted):
        row = catalog.quality(m.id)
        assert row is not None, m.id
        tasks = ["embeddings"] if m.kind == "embedding" else [t for t in TASKS
                                                               if t != "embeddings"]
        for task in tasks:
            assert row.tier(task) is not None, (m.id, task)


def test_moe_and_mla_figures_are_consistent(catalog):
    mixtral = catalog.model("mixtral-8x7b")
    moe = mixtral.moe
    active = mixtral.params_b - moe.expert_params_b * (1 - moe.experts_per_token / moe.experts)
    assert active == pytest.approx(mixtral.active_params_b, rel=0.02)
    ds = catalog.model("deepseek-v3")
    moe = ds.moe
    active = ds.params_b - moe.expert_params_b * (1 - moe.experts_per_token / moe.experts)
    assert active == pytest.approx(ds.active_params_b, rel=0.05)


def test_duplicate_ids_are_refused(tmp_path):
    copy = tmp_path / "cat"
    shutil.copytree(default_catalog_dir(), copy)
    text = (copy / "engines.yaml").read_text().replace("id: sglang", "id: vllm")
    (copy / "engines.yaml").write_text(text)
    with pytest.raises(CatalogError, match="duplicate engine id 'vllm'"):
        load_catalog(copy)


def test_workload_price_overrides_are_traced_to_the_workload_file(catalog):
    w, cat = load_workload(EXAMPLES / "seed-worked-example.yaml", catalog, today=TODAY)
    offers = cat.offers_for("h100-sxm")
    assert offers and all(o.usd_per_gpu_hour == 3.5 for o in offers)
    assert all(o.source == "workload file seed-worked-example.yaml" for o in offers)
    d = plan_dict(plan(w, cat, today=TODAY))
    assert d["chosen"]["label"] == "balanced-closed"
    # the catalog itself is untouched
    assert catalog.offers_for("h100-sxm")[0].usd_per_gpu_hour != 3.5


def test_hosted_price_override_changes_the_bill(catalog, tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("traffic: {requests_per_day: 1000, input_tokens: 1000, output_tokens: 0}\n"
                 "candidates: {hosted: [gpt-4o]}\n"
                 "prices: {hosted: {gpt-4o: {input_per_mtok: 1.0}}}\n")
    w, cat = load_workload(f, catalog, today=TODAY)
    d = plan_dict(plan(w, cat, today=TODAY))
    assert d["hosted"]["monthly_usd"] == pytest.approx(1000 * 1000 * 1.0 / 1e6 * 30)
