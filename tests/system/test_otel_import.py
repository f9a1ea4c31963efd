"""Telemetry off costs nothing: a gateway process without ``telemetry.otlp_endpoint``
serves requests (answered, refused, failed upstream) and never imports OpenTelemetry; the
same process with an endpoint set does (the check can fail)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.configs import GPU, KEYS, sha
from tests.support.paths import ROOT
from tests.support.servers import free_port

# the process: an upstream, the gateway (as `breakeven gateway` builds it), three requests
# through it, then the names of the OpenTelemetry modules it has loaded
SCRIPT = """
import asyncio, json, sys
import aiohttp
from breakeven.gateway.server import Server
from breakeven.loaders import load_gateway_config
from tests.support import upstreams

async def main(config):
    server = Server(load_gateway_config(config))
    url = await server.start()
    statuses = []
    async with aiohttp.ClientSession() as session:
        for key, alias in (("k-app", "ok"), ("k-wrong", "ok"), ("k-app", "down")):
            async with session.post(url + "/chat/completions", json={
                    "model": alias, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": "Bearer " + key,
                             "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) as r:
                statuses.append(r.status)
    await server.stop()
    return statuses

faults = upstreams.Faults()
with upstreams.serving(upstreams.faulty_app(faults)) as upstream:
    path = sys.argv[1]
    text = open(path).read().replace("UPSTREAM", upstream)
    open(path, "w").write(text)
    statuses = asyncio.run(main(path))
print(json.dumps({"statuses": statuses,
                  "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry"))}))
"""


def _config(store: str, telemetry: str) -> str:
    return f"""
store: {store}
backends:
  - {{name: up, url: "UPSTREAM", model: faulty, hosting: self, gpu: {GPU}}}
  - {{name: gone, url: "http://127.0.0.1:9/v1", model: faulty, hosting: self, gpu: {GPU}}}
routes: [{{alias: ok, backends: [up]}}, {{alias: down, backends: [gone]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
{telemetry}
"""


def _run(tmp_path: Path, telemetry: str) -> dict:
    path = tmp_path / "gw.yaml"
    path.write_text(_config(f"sqlite:///{tmp_path}/l.db", telemetry))
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_gateway_without_telemetry_never_imports_opentelemetry(tmp_path):
    off = _run(tmp_path, "")
    assert off["statuses"] == [200, 401, 502]
    assert off["otel"] == []
    on = _run(tmp_path, f"telemetry: {{otlp_endpoint: 'http://127.0.0.1:{free_port()}', "
                           "export_timeout_s: 1}")
    assert on["statuses"] == [200, 401, 502]
    assert "opentelemetry.sdk.trace" in on["otel"]
