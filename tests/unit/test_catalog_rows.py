"""Every catalog row validates with its source and date; the 2025-26 models are there by
their Hugging Face ids, with the architecture facts sizing needs."""

from __future__ import annotations

import collections
import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from breakeven.catalog.schema import GPU, TIERS, GPUOffer, HostedModel, OpenModel, QualityRow
from breakeven.loaders import load_catalog
from tests.support.cli import run_main

HF_IDS = {
    "openai/gpt-oss-120b": "gpt-oss-120b", "openai/gpt-oss-20b": "gpt-oss-20b",
    "Qwen/Qwen3-32B": "qwen3-32b", "Qwen/Qwen3-30B-A3B": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B": "qwen3-235b-a22b", "deepseek-ai/DeepSeek-R1": "deepseek-r1",
    "deepseek-ai/DeepSeek-V3.1": "deepseek-v3.1",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": "llama-4-scout",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": "llama-4-maverick",
    "moonshotai/Kimi-K2-Instruct": "kimi-k2", "google/gemma-3-27b-it": "gemma-3-27b",
    "mistralai/Mistral-Small-3.2-24B-Instruct-2506": "mistral-small-3.2",
    "zai-org/GLM-4.5": "glm-4.5", "zai-org/GLM-4.6": "glm-4.6",
    "MiniMaxAI/MiniMax-M2": "minimax-m2",
}
NEW_GPUS = {"b300", "h20", "rtx-pro-6000", "mi325x", "mi355x"}


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _all_rows(cat):
    return [*cat.gpus, *cat.offers, *cat.models, *cat.hosted, *cat.engines, *cat.quality_rows]


def test_every_row_has_a_source_and_a_date_not_in_the_future(cat):
    rows = _all_rows(cat)
    assert len(rows) > 150
    for row in rows:
        assert len(row.source) >= 10, row
        assert row.as_of <= date.today(), row


@pytest.mark.parametrize("kind, fields", [
    (GPUOffer, {"gpu": "h100-sxm", "provider": "x", "region": "us", "pricing": "on_demand",
                "usd_per_gpu_hour": 2.0}),
    (QualityRow, {"model": "x", "basis": "b", "chat": "high"}),
])
def test_a_row_without_source_or_as_of_is_refused(kind, fields):
    kind.model_validate({**fields, "source": "somewhere exact", "as_of": "2026-01-01"})
    for missing in ("source", "as_of"):
        data = {**fields, "source": "somewhere exact", "as_of": "2026-01-01"}
        del data[missing]
        with pytest.raises(ValidationError, match=missing):
            kind.model_validate(data)


def _hosted(**extra):
    base = {"id": "m", "name": "m", "provider": "p", "input_per_mtok": 1,
            "output_per_mtok": 2, "context_window": 1000, "regions": ["us"],
            "trains_on_data": False, "zero_retention": True, "source": "a page",
            "as_of": "2026-01-01"}
    return HostedModel.model_validate({**base, **extra})


def test_hosted_tiers_and_retirement_are_validated():
    assert _hosted(batch_input_per_mtok=0.5, batch_output_per_mtok=1).batch_input_per_mtok == 0.5
    with pytest.raises(ValidationError, match="together"):
        _hosted(batch_input_per_mtok=0.5)
    with pytest.raises(ValidationError, match="long"):
        _hosted(long_context_threshold=200000, long_input_per_mtok=2)
    with pytest.raises(ValidationError, match="successor"):
        _hosted(retired="2026-06-15")
    row = _hosted(retired="2026-06-15", successor="m2")
    assert row.retired_by(date(2026, 6, 15)) and not row.retired_by(date(2026, 6, 14))


def test_the_2025_26_models_are_there_by_hugging_face_id(cat):
    for hf, slug in HF_IDS.items():
        assert cat.model(hf).id == slug
        assert cat.model(hf.lower()).id == slug
        assert cat.quality(slug) is not None


def test_gpt_oss_120b_facts_match_its_config(cat):
    m = cat.model("openai/gpt-oss-120b")
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim, m.vocab) == (
        36, 2880, 64, 8, 64, 201088)
    assert m.moe is not None and (m.moe.experts, m.moe.experts_per_token) == (128, 4)
    assert m.native_format == "mxfp4" and m.sliding_window == 128
    assert m.sliding_window_layers == m.layers // 2
    assert m.params_b == pytest.approx(116.8, abs=0.1) and m.active_params_b < 5.2
    # MXFP4 experts (~4.25 bits) + bf16 attention: the weights fit in 80 GB with room to spare
    weights_gb = m.moe.expert_params_b * 4.25 / 8 + (m.params_b - m.moe.expert_params_b) * 2
    assert weights_gb < 70


def test_mla_and_moe_rows_are_consistent(cat):
    for m in cat.models:
        if m.mla is not None:
            assert m.kv_heads == 1 and m.head_dim == m.mla.kv_lora_rank + m.mla.qk_rope_head_dim
        if m.moe is not None:
            active = m.params_b - m.moe.expert_params_b * (1 - m.moe.experts_per_token
                                                           / m.moe.experts)
            # vendors count embeddings differently; the derived figure stays close
            assert active == pytest.approx(m.active_params_b, rel=0.3), m.id


def test_blackwell_and_mi355x_carry_fp4(cat):
    b200 = cat.gpu("b200")
    assert b200.fp4_tflops == 2 * b200.fp8_tflops == 9000
    assert {g.id for g in cat.gpus} >= NEW_GPUS
    for g in cat.gpus:
        if g.fp4_tflops is not None:
            assert g.fp8_tflops is not None and g.fp4_tflops >= g.fp8_tflops, g.id
    assert cat.gpu("mi355x").fp4_tflops and cat.gpu("b300").memory_gib > 250


def test_offers_are_unique_and_the_new_lineups_are_priced(cat):
    keys = collections.Counter((o.gpu, o.provider, o.region, o.pricing) for o in cat.offers)
    assert max(keys.values()) == 1
    for gpu in ("b200", "h200", "rtx-pro-6000", "mi325x"):
        assert cat.offers_for(gpu), gpu
    for hosted in ("gpt-5.5", "gpt-5.4-mini", "claude-opus-4-6", "claude-sonnet-4-6",
                   "gemini-3.1-pro-preview", "groq/gpt-oss-120b"):
        row = cat.hosted_model(hosted)
        assert row.as_of >= date(2026, 1, 1)
    for row in cat.hosted:
        if row.provider in ("anthropic", "openai") and row.batch_input_per_mtok is not None:
            assert row.batch_input_per_mtok == pytest.approx(row.input_per_mtok / 2)


def test_retired_models_name_their_successor(cat):
    retired = {h.id: h for h in cat.retired(date(2026, 12, 1))}
    assert {"claude-opus-4", "claude-sonnet-4", "claude-3-haiku", "gemini-3-pro-preview"} \
        <= set(retired)
    assert retired["claude-sonnet-4"].successor == "claude-sonnet-4-6"
    assert cat.has_hosted(retired["gemini-3-pro-preview"].successor)
    current = cat.current(date(2026, 12, 1))
    assert not current.has_hosted("claude-sonnet-4") and current.has_hosted("claude-sonnet-4-6")


def test_quality_follows_one_rule_across_open_and_closed(cat):
    rank = {t: i for i, t in enumerate(TIERS)}
    # the example: gpt-4o-mini scores above gemma-2-27b, so it cannot rank below it
    assert rank[cat.tier("gpt-4o-mini", "chat")] >= rank[cat.tier("gemma-2-27b", "chat")]
    for row in cat.quality_rows:
        assert row.basis and row.source
        if row.chat is not None and row.reasoning is not None:
            assert rank[row.reasoning] <= rank[row.chat], row.model


def test_size_and_plan_accept_hugging_face_ids(capsys, tmp_path: Path):
    code, out, err = run_main(capsys, "size", "--model", "Qwen/Qwen3-32B", "--gpu", "h200",
                          "--json")
    assert code == 0, err
    assert json.loads(out)["fits"]
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "traffic: {tokens_per_day: 50_000_000}\nquality: mid\n"
        "candidates:\n  open_models: [openai/gpt-oss-20b, meta-llama/Llama-4-Scout-17B-16E-"
        "Instruct]\n  gpus: [h100-sxm, h200]\n  hosted: [gpt-5.4-mini]\n")
    code, out, err = run_main(capsys, "plan", str(workload), "--json", "--as-of", "2026-12-01")
    assert code == 0, err
    models = {p["model"] for o in json.loads(out)["options"] for p in o["placements"]}
    assert models & {"gpt-oss-20b", "llama-4-scout"}


def test_model_rows_validate_sliding_window_pairs():
    base = load_catalog().model("gemma-3-27b").model_dump()
    with pytest.raises(ValidationError, match="together"):
        OpenModel.model_validate({**base, "sliding_window_layers": None})
    with pytest.raises(ValidationError, match="exceed"):
        OpenModel.model_validate({**base, "sliding_window_layers": 63})
    assert GPU.model_validate(load_catalog().gpu("b200").model_dump()).fp4_tflops == 9000
