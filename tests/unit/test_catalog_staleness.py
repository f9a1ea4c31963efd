"""Staleness that works: ages from today (or --as-of), a warning for every compared row
over decision.max_price_age_days, retired models refused, and `catalog check`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from breakeven.catalog.age import check
from breakeven.errors import WorkloadError
from breakeven.loaders import load_catalog, load_workload
from breakeven.planner.search import plan
from breakeven.render.data import plan_dict
from tests.support.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
TWO_HOSTED = """
name: two hosted rows
as_of: {as_of}
traffic: {{tokens_per_day: 1_000_000}}
quality: high
decision: {{max_price_age_days: {age}}}
hosted_models:
  - {{id: cheap-api, input_per_mtok: 1, output_per_mtok: 1, quality: {{chat: high}}}}
  - {{id: dear-api, input_per_mtok: 9, output_per_mtok: 9, quality: {{chat: high}}}}
candidates: {{hosted: [cheap-api, dear-api], open_models: [llama-3.1-8b], gpus: [l4]}}
team: {{can_operate_gpus: false}}
"""


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _plan(cat, tmp_path, text, today):
    f = tmp_path / "w.yaml"
    f.write_text(text)
    w, merged = load_workload(f, cat, today=today)
    return plan_dict(plan(w, merged, today=today))


def test_every_compared_row_over_the_limit_warns_not_only_the_chosen(cat, tmp_path):
    d = _plan(cat, tmp_path, TWO_HOSTED.format(as_of="2026-01-10", age=120), date(2026, 12, 1))
    assert d["chosen"]["label"] == "cheap-api"
    stale = [w for w in d["warnings"] if "max_price_age_days 120" in w]
    assert any("cheap-api" in w for w in stale) and any("dear-api" in w for w in stale)
    assert all("325 days old" in w for w in stale if "api" in w)


def test_rows_within_the_limit_do_not_warn(cat, tmp_path):
    d = _plan(cat, tmp_path, TWO_HOSTED.format(as_of="2026-11-20", age=120), date(2026, 12, 1))
    assert not [w for w in d["warnings"] if "max_price_age_days" in w]
    d = _plan(cat, tmp_path, TWO_HOSTED.format(as_of="2026-01-10", age=400), date(2026, 12, 1))
    assert not [w for w in d["warnings"] if "max_price_age_days" in w]


def test_age_is_measured_from_today_not_from_the_workload(cat):
    text = (ROOT / "examples" / "seed-worked-example.yaml").read_text()
    assert "as_of: 2026-11-24" in text
    later = date(2027, 6, 1)
    w, merged = load_workload(ROOT / "examples" / "seed-worked-example.yaml", cat, today=later)
    d = plan_dict(plan(w, merged, today=later))
    assert any("balanced-closed dates from 2026-11-24 (189 days old" in x for x in d["warnings"])


def test_many_stale_rows_become_one_warning_naming_them_all(cat, tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("traffic: {tokens_per_day: 5_000_000}\nquality: mid\n")
    today = date(2026, 12, 1)
    w, merged = load_workload(f, cat, today=today)
    d = plan_dict(plan(w, merged, today=today))
    stale = [x for x in d["warnings"] if "compared prices are over" in x]
    assert len(stale) == 1
    assert "gpt-4o-mini (2024-07-18)" in stale[0]


def test_a_retired_model_in_a_workload_is_refused_naming_its_successor(cat, tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("traffic: {tokens_per_day: 1_000_000}\ncandidates: {hosted: [claude-sonnet-4]}\n")
    with pytest.raises(WorkloadError) as info:
        load_workload(f, cat, today=date(2026, 12, 1))
    message = str(info.value)
    assert "candidates.hosted[0]" in message and "claude-sonnet-4-6" in message
    assert "\n" not in message
    # before its retirement date it is an ordinary candidate
    _, merged = load_workload(f, cat, today=date(2026, 6, 1))
    assert merged.has_hosted("claude-sonnet-4")


def test_retired_rows_are_not_compared(cat, tmp_path):
    f = tmp_path / "w.yaml"
    f.write_text("traffic: {tokens_per_day: 1_000_000}\nquality: mid\n")
    today = date(2026, 12, 1)
    w, merged = load_workload(f, cat, today=today)
    d = plan_dict(plan(w, merged, today=today))
    used = {p["model"] for o in d["options"] for p in o["placements"]}
    assert not used & {"claude-3-haiku", "claude-sonnet-4", "claude-opus-4",
                       "gemini-3-pro-preview"}


def test_check_finds_stale_and_retired_rows(cat):
    findings = check(cat, date(2026, 12, 1), 120)
    problems = {(f.problem, f.row) for f in findings}
    assert ("retired", "claude-opus-4") in problems
    assert ("stale", "gpt-4o-mini") in problems
    assert not check(cat, date(2026, 1, 1), 100_000)


def test_catalog_check_exits_1_when_rows_are_stale_or_retired(capsys):
    code, out, _ = run_main(capsys, "catalog", "check", "--as-of", "2026-12-01")
    assert code == 1
    assert "retired: hosted claude-sonnet-4" in out and "stale price row(s)" in out
    code, out, _ = run_main(capsys, "catalog", "check", "--as-of", "2026-01-01",
                        "--max-age-days", "100000")
    assert code == 0, out
    code, out, _ = run_main(capsys, "catalog", "check", "--json", "--as-of", "2026-12-01")
    assert code == 1 and json.loads(out)["findings"]


def test_catalog_tables_fit_80_columns_with_whole_ids_and_ages(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    cat = load_catalog()
    tables = {"gpus": cat.gpus, "offers": cat.offers, "models": cat.models,
              "hosted": cat.hosted, "engines": cat.engines, "quality": cat.quality_rows}
    for table, rows in tables.items():
        code, out, err = run_main(capsys, "catalog", table, "--as-of", "2026-12-01")
        assert code == 0, err
        assert max(len(line) for line in out.splitlines()) <= 80, table
        assert "age" in out and "as_of" in out and "…" not in out
        for row in rows:  # every date whole, every id whole
            assert row.as_of.isoformat() in out, (table, row)
            assert getattr(row, "id", getattr(row, "model", getattr(row, "gpu", ""))) in out
    code, out, _ = run_main(capsys, "catalog", "hosted", "--as-of", "2026-12-01")
    for row_id in ("claude-sonnet-4-5-bedrock-eu", "gemini-3.1-flash-lite-preview",
                   "together/llama-3.1-405b"):
        assert row_id in out
    assert "claude-sonnet-4 x" in out and "x: retired" in out


def test_catalog_shows_one_row_and_a_wide_view(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run_main(capsys, "catalog", "hosted", "gpt-5.4", "--as-of", "2026-12-01")
    assert code == 0 and "batch_input_per_mtok" in out and "180 days" in out
    assert "tokenmix.ai" in out
    code, out, _ = run_main(capsys, "catalog", "hosted", "gpt-5.4", "--json")
    assert json.loads(out)["batch_output_per_mtok"] == 7.5
    code, out, _ = run_main(capsys, "catalog", "gpus", "--wide")
    assert "fp4_tflops" in out
    code, _, err = run_main(capsys, "catalog", "hosted", "gpt-9")
    assert code == 2 and "unknown hosted model 'gpt-9'" in err


def test_plan_options_never_cut_an_id_at_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    example = str(ROOT / "examples" / "hybrid-support-bot.yaml")
    code, out, err = run_main(capsys, "plan", example, "--as-of", "2026-12-01")
    assert code == 0, err
    table = out.split("Options (cheapest first)")[1].split("Why")[0]
    assert max(len(line) for line in table.splitlines()) <= 80  # (the launch line is not)
    code, data, _ = run_main(capsys, "plan", example, "--json", "--as-of", "2026-12-01")
    ids = {p["model"] for o in json.loads(data)["options"][:12] for p in o["placements"]}
    assert ids and "…" not in table
    for model_id in ids:
        assert model_id in table, model_id
