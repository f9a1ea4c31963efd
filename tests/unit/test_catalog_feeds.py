"""`breakeven catalog import` round-trips a small LiteLLM file and a small OpenRouter file
(written here) into an overlay that --catalog and plans use; `catalog diff` shows it."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import pytest

from breakeven.catalog.feeds import from_feed, which_feed
from breakeven.errors import InputError
from breakeven.loaders import load_catalog, load_workload
from breakeven.planner.search import plan
from breakeven.render.data import plan_dict
from tests.support.cli import run_main

LITELLM = {
    "sample_spec": {"max_tokens": "LEGACY", "input_cost_per_token": 0.0,
                    "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
    "gpt-5.4": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 272000,
                "max_tokens": 128000, "input_cost_per_token": 2.0e-06,
                "output_cost_per_token": 1.2e-05, "cache_read_input_token_cost": 2.0e-07,
                "input_cost_per_token_batches": 1.0e-06,
                "output_cost_per_token_batches": 6.0e-06},
    "claude-sonnet-4-5-20250929": {
        "litellm_provider": "anthropic", "mode": "chat", "max_input_tokens": 200000,
        "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
        "input_cost_per_token_above_200k_tokens": 6e-06,
        "output_cost_per_token_above_200k_tokens": 2.25e-05},
    "together_ai/Qwen/Qwen3-235B-A22B-fp8-tput": {
        "litellm_provider": "together_ai", "mode": "chat", "max_input_tokens": 40960,
        "input_cost_per_token": 2e-07, "output_cost_per_token": 6e-07},
    "mystery/old-model": {"litellm_provider": "mystery", "mode": "chat", "max_tokens": 4096,
                          "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
                          "deprecation_date": "2026-02-01"},
    "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation",
                 "output_cost_per_image": 0.04},
    "no-price": {"litellm_provider": "openai", "mode": "chat", "max_input_tokens": 8000},
}
OPENROUTER = {"data": [
    {"id": "anthropic/claude-sonnet-4.5", "name": "Anthropic: Claude Sonnet 4.5",
     "created": 1759161676, "context_length": 1000000,
     "architecture": {"modality": "text+image->text"},
     "pricing": {"prompt": "0.000003", "completion": "0.000015",
                 "input_cache_read": "0.0000003"}},
    {"id": "openai/gpt-oss-120b", "name": "OpenAI: gpt-oss-120b", "created": 1754414231,
     "context_length": 131072, "hugging_face_id": "openai/gpt-oss-120b",
     "architecture": {"modality": "text->text"},
     "pricing": {"prompt": "0.00000005", "completion": "0.00000025"}},
    {"id": "openai/gpt-oss-120b:free", "context_length": 131072,
     "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "openrouter/auto", "context_length": 2000000,
     "pricing": {"prompt": "-1", "completion": "-1"}},
]}
FEED_DAY = date(2026, 11, 30)


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    stamp = datetime(2026, 11, 30, 12, 0).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_the_feeds_are_told_apart_by_shape():
    assert which_feed(LITELLM) == "litellm"
    assert which_feed(OPENROUTER) == "openrouter"
    assert which_feed({"models": []}) is None and which_feed([1, 2]) is None


def test_litellm_rows_become_per_million_with_batch_cache_and_long_tiers():
    cat = load_catalog()
    got = from_feed("litellm", LITELLM, cat, file_name="prices.json", as_of=FEED_DAY)
    rows = {r.id: r for r in got.rows}
    assert got.skipped == 2  # the image model and the row without a price
    gpt = rows["gpt-5.4"]  # already in the catalog: prices from the feed, terms kept
    assert (gpt.input_per_mtok, gpt.output_per_mtok, gpt.cached_input_per_mtok) == (2, 12, 0.2)
    assert (gpt.batch_input_per_mtok, gpt.batch_output_per_mtok) == (1, 6)
    assert gpt.context_window == 272000 and gpt.regions == cat.hosted_model("gpt-5.4").regions
    assert "prices.json" in gpt.source and gpt.as_of == FEED_DAY
    sonnet = rows["litellm/claude-sonnet-4-5-20250929"]
    assert sonnet.same_model_as == "claude-sonnet-4-5" and sonnet.provider == "anthropic"
    assert (sonnet.long_context_threshold, sonnet.long_input_per_mtok,
            sonnet.long_output_per_mtok) == (200000, 6, 22.5)
    assert not sonnet.trains_on_data  # the catalog's Anthropic terms
    qwen = rows["litellm/together-ai/qwen/qwen3-235b-a22b-fp8-tput"]
    assert qwen.provider == "together" and qwen.input_per_mtok == pytest.approx(0.2)
    mystery = rows["litellm/mystery/old-model"]
    assert mystery.trains_on_data and not mystery.zero_retention  # unknown: least protective
    assert mystery.retired == date(2026, 2, 1)


def test_openrouter_rows_carry_cache_prices_release_dates_and_open_models():
    got = from_feed("openrouter", OPENROUTER, load_catalog(), file_name="models.json",
                    as_of=FEED_DAY)
    rows = {r.id: r for r in got.rows}
    assert got.skipped == 2  # the :free variant and the varying price
    sonnet = rows["openrouter/anthropic/claude-sonnet-4.5"]
    assert (sonnet.input_per_mtok, sonnet.output_per_mtok, sonnet.cached_input_per_mtok) == (
        3, 15, 0.3)
    assert sonnet.same_model_as == "claude-sonnet-4-5" and sonnet.released == date(2025, 9, 29)
    oss = rows["openrouter/openai/gpt-oss-120b"]
    assert oss.open_model == "gpt-oss-120b" and oss.input_per_mtok == pytest.approx(0.05)


def test_a_file_of_the_wrong_feed_is_refused_in_one_line(capsys, tmp_path):
    path = _write(tmp_path, "models.json", OPENROUTER)
    code, out, err = run_main(capsys, "catalog", "import", "--from", "litellm", str(path),
                          "--out", str(tmp_path / "overlay"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "OpenRouter" in err and "--from litellm" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_main(capsys, "catalog", "import", "--from", "openrouter", str(bad),
                        "--out", str(tmp_path / "overlay"))
    assert code == 2 and "not valid JSON" in err and err.count("\n") == 1
    with pytest.raises(InputError):
        from_feed("openrouter", LITELLM, load_catalog(), file_name="x", as_of=FEED_DAY)


def test_import_round_trips_into_an_overlay_that_catalog_and_plan_use(capsys, tmp_path):
    overlay = tmp_path / "overlay"
    path = _write(tmp_path, "model_prices_and_context_window.json", LITELLM)
    code, out, err = run_main(capsys, "catalog", "import", "--from", "litellm", str(path),
                          "--out", str(overlay))
    assert code == 0, err
    assert "imported 4 hosted rows" in out and "skipped 2" in out
    assert sorted(p.name for p in overlay.iterdir()) == ["hosted.yaml"]
    packaged, merged = load_catalog(), load_catalog(overlay)
    assert len(merged.hosted) == len(packaged.hosted) + 3  # gpt-5.4 replaced, 3 added
    assert merged.hosted_model("gpt-5.4").input_per_mtok == 2
    assert merged.hosted_model("gpt-5.4").as_of == FEED_DAY  # the file's date
    assert len(merged.models) == len(packaged.models)  # the rest is the packaged catalog
    again = from_feed("litellm", LITELLM, packaged, file_name=path.name, as_of=FEED_DAY)
    assert {r.id: r for r in again.rows} == {
        r.id: r for r in merged.hosted if r.id in {x.id for x in again.rows}}

    workload = tmp_path / "w.yaml"
    workload.write_text("traffic: {tokens_per_day: 1_000_000}\n"
                        "candidates: {hosted: [litellm/claude-sonnet-4-5-20250929]}\n"
                        "team: {can_operate_gpus: false}\n")
    w, cat = load_workload(workload, merged, today=date(2026, 12, 1))
    d = plan_dict(plan(w, cat, today=date(2026, 12, 1)))
    assert d["chosen"]["label"] == "litellm/claude-sonnet-4-5-20250929"
    code, out, err = run_main(capsys, "plan", str(workload), "--catalog", str(overlay), "--json",
                          "--as-of", "2026-12-01")
    assert code == 0, err and json.loads(out)["verdict"] == "hosted"


def test_a_second_import_replaces_the_overlay_but_never_a_full_copy(capsys, tmp_path):
    overlay = tmp_path / "overlay"
    path = _write(tmp_path, "models.json", OPENROUTER)
    for _ in range(2):
        code, _, err = run_main(capsys, "catalog", "import", "--from", "openrouter", str(path),
                            "--out", str(overlay))
        assert code == 0, err
    assert load_catalog(overlay).has_hosted("openrouter/openai/gpt-oss-120b")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "hosted.yaml").write_text("hosted: []\n")
    code, _, err = run_main(capsys, "catalog", "import", "--from", "openrouter", str(path),
                        "--out", str(copy))
    assert code == 2 and "not an overlay" in err


def test_diff_shows_prices_and_lineups(capsys, tmp_path):
    overlay = tmp_path / "overlay"
    path = _write(tmp_path, "prices.json", LITELLM)
    assert run_main(capsys, "catalog", "import", "--from", "litellm", str(path), "--out",
                str(overlay))[0] == 0
    code, out, _ = run_main(capsys, "catalog", "diff", "packaged", str(overlay))
    assert code == 0
    assert "~ hosted gpt-5.4: input_per_mtok 2.5 -> 2" in out
    assert "+ hosted litellm/claude-sonnet-4-5-20250929" in out
    code, out, _ = run_main(capsys, "catalog", "diff", str(overlay), "packaged", "--json")
    changes = json.loads(out)
    assert {"table": "hosted", "what": "removed", "row": "litellm/mystery/old-model",
            "detail": ""} in changes
