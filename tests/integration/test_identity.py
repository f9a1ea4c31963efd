"""Pinned identity end to end: fingerprints made by the CLI from a sim, a gateway that
probes its backends against them, drift caught (a sim serving another variant) and the same
model not flagged."""

from __future__ import annotations

import json
import time
import urllib.request

import openai

from breakeven.gateway.identity import similarity
from tests.support.configs import KEYS, sha
from tests.support.servers import InProcessGateway, InProcessSim


def _metrics(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_drift_is_detected_and_the_same_model_is_not(run_cli, tmp_path):
    same = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.001")
    other = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.001",
                       "--variant", "int4-requant")
    gateway = None
    try:
        pin = tmp_path / "llama.json"
        made = run_cli("identity", "fingerprint", "--url", same.url, "--model", "llama-3.1-8b",
                       "--out", str(pin))
        assert made.returncode == 0, made.stderr
        again = tmp_path / "again.json"
        run_cli("identity", "fingerprint", "--url", same.url, "--model", "llama-3.1-8b",
                "--out", str(again))
        assert similarity(json.loads(pin.read_text()), json.loads(again.read_text())) == 1.0
        gpu = "{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"
        config = f"""
store: sqlite:///{tmp_path}/ledger.db
backends:
  - {{name: swapped, url: "{other.url}", model: llama-3.1-8b, hosting: self, gpu: {gpu},
      identity: {{fingerprint: "{pin}", tolerance: 0.9, interval_s: 60}}}}
  - {{name: genuine, url: "{same.url}", model: llama-3.1-8b, hosting: self, gpu: {gpu},
      identity: {{fingerprint: "{pin}", weights_digest: "{'a' * 64}", interval_s: 60}}}}
routes: [{{alias: open, backends: [swapped, genuine]}}]
keys:
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
"""
        gateway = InProcessGateway(config, tmp_path)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = _metrics(gateway.base)
            if 'identity_drift{backend="swapped"}' in text and \
                    'identity_drift{backend="genuine"}' in text:
                break
            time.sleep(0.2)
        assert 'breakeven_gateway_identity_drift{backend="swapped"} 1' in text
        assert 'breakeven_gateway_identity_drift{backend="genuine"} 0' in text
        with openai.OpenAI(base_url=gateway.url, api_key=KEYS["admin"], max_retries=0) as c:
            raw = c.chat.completions.with_raw_response.create(
                model="open", max_tokens=3, messages=[{"role": "user", "content": "hi"}])
        assert raw.headers["x-breakeven-backend"] == "genuine"
        req = urllib.request.Request(f"{gateway.base}/admin/ledger?limit=20",
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            rows = json.loads(resp.read())["data"]
        probes = {r["backend"]: r for r in rows if r["task"] == "identity"}
        assert probes["swapped"]["status"] == 409 and "similarity" in probes["swapped"]["error"]
        assert probes["genuine"]["status"] == 200
        served = next(r for r in rows if r["id"] == raw.headers["x-request-id"])
        assert served["decision"]["identity"]["fingerprint"] == json.loads(
            pin.read_text())["digest"][:16]
        assert served["decision"]["identity"]["weights"] == "a" * 16
        assert any(s["rule"] == "identity" for s in served["decision"]["skipped"])
    finally:
        if gateway is not None:
            gateway.stop()
        same.stop()
        other.stop()
