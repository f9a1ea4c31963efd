from __future__ import annotations

import json

import pytest

from .conftest import EXAMPLES


def test_plan_json_on_the_seed_example(run_cli):
    r = run_cli("plan", str(EXAMPLES / "seed-worked-example.yaml"), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["verdict"], d["hosted"]["monthly_usd"], d["self_hosted"]["monthly_usd"]) == (
        "hosted", 750.0, 2520.0)


def test_plan_tokens_per_day_override_flips_the_verdict(run_cli):
    r = run_cli("plan", str(EXAMPLES / "seed-worked-example.yaml"), "--json",
                "--tokens-per-day", "100000000")
    assert json.loads(r.stdout)["verdict"] == "self_host"


def test_plan_terminal_report_puts_the_verdict_first(run_cli):
    r = run_cli("plan", str(EXAMPLES / "seed-worked-example.yaml"))
    assert r.returncode == 0
    assert r.stdout.index("HOSTED") < r.stdout.index("Options") < r.stdout.index("Why")


def test_plan_html_is_self_contained(run_cli, tmp_path):
    out = tmp_path / "report.html"
    r = run_cli("plan", str(EXAMPLES / "seed-worked-example.yaml"), "--html", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert page.count("<svg") == 3
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert "Monthly cost" in page and "break-even" in page


def test_size_json_fields(run_cli):
    r = run_cli("size", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--quant", "fp8",
                "--concurrency", "8", "--json")
    d = json.loads(r.stdout)
    for key in ("fits", "gpus", "weights_gib", "kv_bytes_per_token", "max_concurrency",
                "ttft_ms", "tpot_ms", "output_tok_s"):
        assert key in d
    assert d["fits"] and d["gpus"] == 1 and d["concurrency"] == 8


def test_size_that_does_not_fit_explains_and_suggests(run_cli):
    r = run_cli("size", "--model", "llama-3.1-70b", "--gpu", "h100-sxm", "--gpus", "1",
                "--json")
    d = json.loads(r.stdout)
    assert not d["fits"] and "141 GB" in d["reason"] and d["suggestions"]


def test_catalog_lists_every_row_with_source_and_date(run_cli):
    r = run_cli("catalog", "--json")
    d = json.loads(r.stdout)
    assert set(d) == {"gpus", "offers", "models", "hosted", "engines", "quality"}
    for rows in d.values():
        for row in rows:
            assert row["source"] and row["as_of"]
    r = run_cli("catalog", "gpus")
    assert "h100-sxm" in r.stdout


BAD_WORKLOADS = [
    ("traffic: {requests_per_day: 10}\ncandidates: {open_models: [llama-9]}\n",
     "candidates.open_models[0]: unknown open model 'llama-9'"),
    ("traffic: {requests_per_day: 10}\ncandidates: {gpus: [h900]}\n",
     "candidates.gpus[0]: unknown GPU 'h900'"),
    ("traffic: {requests_per_day: -5}\n", "traffic.requests_per_day: Input should be greater"),
    ("traffic: {requests_per_day: 10}\ntrafic: {}\n", "trafic: unknown field"),
    ("traffic: {requests_per_day: 10}\nquality: superb\n", "quality: Input should be"),
    ("traffic: {requests_per_day: 10}\ncompliance: {residency: [mars]}\n",
     "compliance.residency[0]: no GPU offer or hosted model serves region 'mars'"),
    ("traffic: {requests_per_day: 10, tokens_per_day: 5}\n",
     "traffic: give exactly one of requests_per_day or tokens_per_day"),
    ("traffic: [1, 2\n", "not valid YAML at line"),
    ("traffic: {requests_per_day: 10}\nsegments: [{name: a, share: 0.5}]\n",
     "segments: segment shares must add up to 1"),
    ("traffic: {requests_per_day: 10}\nprices: {gpus: {h100: 2}}\n",
     "prices.gpus.h100: unknown GPU 'h100'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_WORKLOADS)
def test_bad_workload_is_one_line_naming_file_and_field_exit_2(run_cli, tmp_path, text,
                                                               message):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    r = run_cli("plan", str(f))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert lines[0].startswith(f"breakeven: error: {f}: ")
    assert message in lines[0]


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "missing.yaml"], "missing.yaml: file not found"),
    (["size", "--model", "llama-3.1-8x", "--gpu", "a10g"], "unknown open model 'llama-3.1-8x'"),
    (["size", "--model", "llama-3.1-8b", "--gpu", "a10"], "unknown GPU 'a10'"),
    (["size", "--model", "llama-3.1-8b", "--gpu", "a10g", "--concurrency", "lots"],
     "--concurrency: expected a whole number"),
    (["plan", str(EXAMPLES / "seed-worked-example.yaml"), "--tokens-per-day", "-1"],
     "--tokens-per-day: must be >= 0"),
    (["catalog", "--catalog", "/nonexistent"], "catalog directory not found"),
])
def test_bad_arguments_exit_2_without_traceback(run_cli, args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_user_catalog_copy_with_an_error_names_the_file_and_row(run_cli, tmp_path):
    import shutil

    from breakeven.loaders import default_catalog_dir

    copy = tmp_path / "cat"
    shutil.copytree(default_catalog_dir(), copy)
    text = (copy / "gpus.yaml").read_text().replace("bandwidth_gbs: 600", "bandwidth_gbs: -600")
    (copy / "gpus.yaml").write_text(text)
    r = run_cli("catalog", "--catalog", str(copy))
    assert r.returncode == 2
    assert "gpus.yaml: gpus[0].bandwidth_gbs: Input should be greater than 0" in r.stderr
