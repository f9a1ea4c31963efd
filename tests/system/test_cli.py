"""The console entry point as an operator meets it, each command in a subprocess: plan,
size and catalog output; bad input is one line naming the file and field, exit 2, never a
traceback; ``gateway check`` and a gateway that refuses to start; ``identity hash``."""

from __future__ import annotations

import asyncio
import json

import pytest

from breakeven.store import open_store
from tests.support.configs import rate_limited
from tests.support.paths import EXAMPLES
from tests.support.servers import SimProcess


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
     "--tokens-per-day: tokens_per_day: Input should be greater than 0"),
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


def test_identity_cli(run_cli, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.gguf").write_bytes(b"\x00" * 10)
    out = run_cli("identity", "hash", str(tmp_path / "m"))
    assert out.returncode == 0 and json.loads(out.stdout)["files"] == ["model.gguf"]
    (tmp_path / "empty").mkdir()
    empty = run_cli("identity", "hash", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no weights" in empty.stderr


def test_a_missing_fingerprint_stops_the_gateway_at_start(run_cli, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("""
backends:
  - {name: x, url: "http://127.0.0.1:9/v1", model: m, hosting: self,
     gpu: {gpu: a10g, usd_per_gpu_hour: 1, capacity_tokens_per_s: 100},
     identity: {fingerprint: /nonexistent/fp.json}}
routes: [{alias: a, backends: [x]}]
store: sqlite:///""" + str(tmp_path / "l.db") + "\n")
    result = run_cli("gateway", "--config", str(path), "--port", "0")
    assert result.returncode == 2 and "fingerprint" in result.stderr


def test_gateway_check(run_cli, tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text(rate_limited("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db") +
                    """  - {name: hr, sha256: """ + "a" * 64 + """, data_class: pii}\n""")
    out = run_cli("gateway", "check", "--config", str(good), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    row = next(r for r in report["boundary"] if r["data_class"] == "pii")
    assert row["allowed"] == ["llama"]
    bad = tmp_path / "b.yaml"
    bad.write_text(good.read_text().replace("backends: [llama]", "backends: [lama]"))
    out = run_cli("gateway", "check", "--config", str(bad))
    assert out.returncode == 2 and "unknown backend 'lama'" in out.stderr
    assert str(bad) in out.stderr
    keyed = tmp_path / "k.yaml"
    keyed.write_text(good.read_text().replace(
        "hosting: self,", "hosting: self, api_key_env: NOT_SET_ANYWHERE,"))
    out = run_cli("gateway", "check", "--config", str(keyed))
    assert out.returncode == 2 and "NOT_SET_ANYWHERE" in out.stdout
    typo = tmp_path / "t.yaml"
    typo.write_text(good.read_text().replace("hosting: self", "hostng: self"))
    out = run_cli("gateway", "check", "--config", str(typo))
    assert out.returncode == 2 and "hostng" in out.stderr and "Traceback" not in out.stderr
    ranked = tmp_path / "p.yaml"
    ranked.write_text(good.read_text().replace("hosting: self,", "hosting: self, "
                                               "batch_priority: 0,"))
    out = run_cli("gateway", "check", "--config", str(ranked))
    assert out.returncode == 2 and "batch_priority" in out.stderr


def test_plan_emits_a_gateway_config_that_checks(run_cli, tmp_path):
    out = tmp_path / "gw.yaml"
    plan = run_cli("plan", str(EXAMPLES / "hybrid-support-bot.yaml"), "--emit-gateway",
                   str(out), "--json")
    assert plan.returncode == 0, plan.stderr
    routing = {r["route"]: r for r in json.loads(plan.stdout)["routing"]}
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANTHROPIC_API_KEY": "x", "GEMINI_API_KEY": "x",
           "OPENAI_API_KEY": "x"}
    check = subprocess.run([sys.executable, "-c", "from breakeven.cli import main; main()",
                            "gateway", "check", "--config", str(out), "--json"],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    rows = json.loads(check.stdout)["boundary"]
    pii_route = routing["support-account"]
    assert pii_route["side"] == "self_hosted"
    allowed = next(r["allowed"] for r in rows
                   if r["route"] == "support-account" and r["data_class"] == "pii")
    assert allowed and all(name.startswith(pii_route["model"]) for name in allowed)
    hosted_only = next(r for r in rows
                       if r["route"] == "support-escalation" and r["data_class"] == "pii")
    assert hosted_only["allowed"] == []
    small = tmp_path / "small.yaml"
    assert run_cli("plan", str(EXAMPLES / "small-team-prototype.yaml"), "--emit-gateway",
                   str(small)).returncode == 0
    assert "hosting: self" not in small.read_text()


def test_gateway_refuses_to_start_without_its_signing_key(run_cli, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(rate_limited("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db")
                    + "audit: {signing_key_env: NO_SUCH_AUDIT_KEY, require_signing: true}\n")
    result = run_cli("gateway", "--config", str(path), "--port", "0")
    assert result.returncode == 2 and "NO_SUCH_AUDIT_KEY" in result.stderr
    assert "keygen" in result.stderr
    path.write_text(rate_limited("http://127.0.0.1:9/v1", "postgresql://nobody@127.0.0.1:1/x"))
    result = run_cli("gateway", "--config", str(path), "--port", "0")
    assert result.returncode == 2 and "cannot open PostgreSQL store" in result.stderr


def test_check_refuses_residency_no_backend_can_meet(run_cli, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(rate_limited("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db").replace(
        "routes: [{alias: open, backends: [llama]}]",
        "routes: [{alias: open, backends: [llama], regions: [eu-west]}]"))
    out = run_cli("gateway", "check", "--config", str(path))
    assert out.returncode == 2 and "requires regions eu-west" in out.stdout
    started = run_cli("gateway", "--config", str(path), "--port", "0")
    assert started.returncode == 2 and "requires regions eu-west" in started.stderr


def test_sim_refuses_a_deployment_that_does_not_fit(run_cli):
    result = run_cli("sim", "--model", "llama-3.1-70b", "--gpu", "a10g", "--gpus", "1")
    assert result.returncode == 2
    assert "cannot simulate" in result.stderr and "Traceback" not in result.stderr


def test_sim_says_and_charges_the_engines_front_end_latency(run_cli, tmp_path, catalog):
    """SGLang's front end (the catalog's, tens of ms a request) is on the start-up line and
    in every request's TTFT offline; vLLM's (none) is not mentioned."""
    front = catalog.engine("sglang").front_end_ms
    assert front > 0
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"prompt": "hello", "max_tokens": 8}\n' * 4, encoding="utf-8")
    runs = {}
    for engine in ("sglang", "vllm"):
        r = run_cli("sim", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--engine", engine,
                    "--offline", "--trace", str(trace), "--concurrency", "1", "--json")
        assert r.returncode == 0, r.stderr
        runs[engine] = json.loads(r.stdout)
    assert f"front end {front:g} ms a request" in runs["sglang"]["deployment"]
    assert "front end" not in runs["vllm"]["deployment"]
    ttft = {e: run["ttft_ms"]["p50"] for e, run in runs.items()}
    assert ttft["sglang"] > front > 4 * ttft["vllm"]  # a 1-token prompt: the rest is ~one step


def test_sim_counts_local_attention_windows_per_request(run_cli, tmp_path):
    """gpt-oss keeps only a 128-token window on half its layers; the simulator counts that
    per request, so the cache is the same whatever the trace and the start-up line says
    which layers keep what (the credit itself: test_sizing_windows)."""
    said = {}
    for name, (inp, out) in {"short": (60, 40), "long": (6000, 2000)}.items():
        trace = tmp_path / f"{name}.jsonl"
        trace.write_text((json.dumps({"input_tokens": inp, "max_tokens": out}) + "\n") * 64,
                         encoding="utf-8")
        r = run_cli("sim", "--model", "gpt-oss-120b", "--gpu", "h100-sxm", "--offline",
                    "--trace", str(trace), "--concurrency", "64", "--json")
        assert r.returncode == 0, r.stderr
        said[name] = json.loads(r.stdout)
    assert said["long"]["kv_cache_tokens"] == said["short"]["kv_cache_tokens"]
    assert "18 of 36 layers keep only each sequence's last 128 tokens" in said["long"][
        "deployment"]
    assert said["long"]["requests"] == 64 and said["long"]["preemptions"] < 64
    sim = SimProcess("--model", "gpt-oss-120b", "--gpu", "h100-sxm", "--time-scale", "0.01")
    try:
        assert "18 of 36 layers keep only each sequence's last 128 tokens" in sim.banner
    finally:
        sim.stop()


def test_report_bad_input_is_one_line_and_exit_2(run_cli, tmp_path):
    missing = run_cli("report", "--store", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 2 and "no such SQLite store" in missing.stderr
    assert not (tmp_path / "none.db").exists()  # a report never creates a store
    asyncio.run(open_store(f"sqlite:///{tmp_path}/empty.db").close())
    store = f"sqlite:///{tmp_path}/empty.db"
    for args, text in ((("--since", "yesterday"), "--since"),
                       (("--since", "1h", "--until", "2h"), "must be after"),
                       (("--emit-workload", str(tmp_path / "w.yaml")), "no served traffic"),
                       ((), "")):
        out = run_cli("report", "--store", store, *args)
        if text:
            assert out.returncode == 2, out.stdout
            assert text in out.stderr and "Traceback" not in out.stderr
            assert len(out.stderr.strip().splitlines()) == 1
        else:  # an empty store is a report that says so
            assert out.returncode == 0, out.stderr
            assert "no traffic" in out.stdout
    assert run_cli("report").returncode == 2
    empty = json.loads(run_cli("report", "--store", store, "--json").stdout)
    assert empty["verdict"]["verdict"] == "no_data"


def test_calibration_needs_a_known_deployment(run_cli, tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"schema": "breakeven.bench/v1", "levels": [],
                               "deployment": None}))
    result = run_cli("plan", str(EXAMPLES / "seed-worked-example.yaml"), "--calibrate",
                     str(bad))
    assert result.returncode == 2 and "--deployment" in result.stderr
    other = tmp_path / "o.json"
    other.write_text("{}")
    result = run_cli("plan", "x.yaml", "--calibrate", str(other))
    assert result.returncode == 2


@pytest.mark.parametrize(("args", "message"), [
    (("--slo", "ttft=5"), "--slo"),
    (("--concurrency", "0"), "--concurrency"),
    (("--input-len", "weird:1"), "--input-len"),
    (("--url", "ftp://x"), "--url"),
])
def test_bad_options_exit_2(run_cli, args, message):
    result = run_cli("bench", "--url", "http://127.0.0.1:9/v1", "--model", "m", *args)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
