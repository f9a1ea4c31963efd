"""``plan --emit-gateway`` for an EU-resident workload: the emitted config passes
``gateway check`` with the boundary the plan assumed, and a real gateway built from it (the
URLs pointed at sims, the placeholder keys filled in) serves in the EU and refuses a caller
whose traffic may only leave for the US."""

from __future__ import annotations

import openai
import pytest
import yaml
from click.testing import CliRunner

from breakeven.cli.gateway_cmd import command as gateway_command
from breakeven.loaders import parse_workload
from breakeven.planner.emit_gateway import AUDIT_KEY_ENV, gateway_config, placeholder_sha256
from breakeven.planner.search import plan
from tests.support.configs import sha
from tests.support.paths import TODAY
from tests.support.servers import InProcessGateway

EU = {"name": "eu chat", "task": "chat", "quality": "mid",
      "traffic": {"tokens_per_day": 2_000_000, "input_tokens": 800, "output_tokens": 200},
      "compliance": {"residency": ["eu"]},
      "candidates": {"hosted": ["gemini-2.5-flash"]},
      "segments": [{"name": "chat", "share": 0.6, "route": "assistant"},
                   {"name": "summaries", "share": 0.4, "mode": "batch", "route": "nightly"}]}


def _emitted(catalog, workload=EU) -> dict:
    result = plan(parse_workload(workload, "w.yaml"), catalog, today=TODAY)
    assert result.verdict == "hosted"
    return gateway_config(result, catalog)


def test_the_emitted_config_carries_the_plans_boundary(catalog):
    cfg = _emitted(catalog)
    [backend] = cfg["backends"]
    row = catalog.hosted_model("gemini-2.5-flash")
    assert backend["region"] == "eu" and "europe-west4" in backend["url"]
    assert backend["no_train"] is (not row.trains_on_data)
    assert backend["retention_days"] == (0 if row.zero_retention else 30)
    routes = {r["alias"]: r for r in cfg["routes"]}
    assert routes["assistant"]["regions"] == ["eu"] and routes["assistant"]["task"] == "chat"
    assert routes["nightly"]["task"] == "batch"
    assert [k["sha256"] for k in cfg["keys"]] == [placeholder_sha256(0)]
    assert "audit" not in cfg


def test_audit_emits_required_signing_and_identity_pins(catalog):
    w = EU | {"compliance": {"residency": ["eu"], "audit": True}, "candidates": {},
              "traffic": {"tokens_per_day": 500_000_000, "input_tokens": 800,
                          "output_tokens": 200}}
    result = plan(parse_workload(w, "w.yaml"), catalog, today=TODAY)
    cfg = gateway_config(result, catalog)
    assert cfg["audit"] == {"signing_key_env": AUDIT_KEY_ENV, "require_signing": True}
    selfish = [b for b in cfg["backends"] if b["hosting"] == "self"]
    assert selfish and all(b["identity"]["fingerprint"].endswith(".json") for b in selfish)
    assert all(b["region"] == "eu" for b in cfg["backends"])


def test_gateway_check_passes_and_prints_the_boundary(catalog, tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(_emitted(catalog)))
    out = CliRunner().invoke(gateway_command, ["check", "--config", str(path)],
                             env={"GOOGLE_VERTEX_TOKEN": "x"})
    assert out.exit_code == 0, out.output
    assert "assistant general  -> gemini-2.5-flash" in out.output
    assert out.output.strip().endswith("ok")


@pytest.fixture
def sims():
    from tests.support.servers import InProcessSim

    started = [InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale",
                            "0.02", "--served-model-name", name)
               for name in ("google/gemini-2.5-flash", "us-model")]
    yield started
    for sim in started:
        sim.stop()


def test_a_real_gateway_from_it_keeps_traffic_in_the_eu(catalog, tmp_path, sims):
    cfg = _emitted(catalog)
    eu_sim, us_sim = sims
    cfg["backends"][0]["url"] = eu_sim.url
    # someone later adds a US backend to the route: the route's regions still hold
    cfg["backends"].append({"name": "us-extra", "url": us_sim.url, "model": "us-model",
                            "hosting": "hosted", "region": "us",
                            "price": {"input_per_mtok": 0.01, "output_per_mtok": 0.01}})
    route = next(r for r in cfg["routes"] if r["alias"] == "assistant")
    route["backends"].insert(0, "us-extra")
    general = next(k for k in cfg["keys"] if k["data_class"] == "general")
    general["sha256"] = sha("k-eu")
    cfg["keys"].append({"name": "us-only", "sha256": sha("k-us"), "regions": ["us"]})
    cfg["store"] = f"sqlite:///{tmp_path}/ledger.db"
    gateway = InProcessGateway(yaml.safe_dump(cfg), tmp_path,
                               env={"GOOGLE_VERTEX_TOKEN": "x"})
    try:
        anonymous_attempt = openai.OpenAI(base_url=gateway.url, api_key="anything",
                                          max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            anonymous_attempt.chat.completions.create(
                model="assistant", messages=[{"role": "user", "content": "hi"}])
        eu = openai.OpenAI(base_url=gateway.url, api_key="k-eu", max_retries=0)
        for _ in range(3):
            answer = eu.chat.completions.with_raw_response.create(
                model="assistant", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            assert answer.headers["x-breakeven-backend"] == "gemini-2.5-flash"
        us = openai.OpenAI(base_url=gateway.url, api_key="k-us", max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            us.chat.completions.create(model="assistant", max_tokens=5,
                                       messages=[{"role": "user", "content": "hi"}])
        assert refused.value.status_code in (403, 503)
        assert "region" in str(refused.value).lower() or "residency" in str(
            refused.value).lower()
    finally:
        gateway.stop()
