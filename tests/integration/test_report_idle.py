"""The report's idle-replica finding and its route moves, over a real ledger: traffic through
a gateway (in this process) to sims, two self-hosted replicas of which the traffic needs
one, a route (`batchy`) with no hosted backend and one (`chat`) with one. The report must
say "1 idle replica: $709/month" and price no move for `batchy`, in JSON, the terminal and
the HTML page alike. (The figures' edge cases: unit/test_report_idle.py.)"""

from __future__ import annotations

import json
import re

import openai
import pytest

from tests.support.configs import KEYS, sha
from tests.support.servers import InProcessGateway, InProcessSim

GPU_HOUR = 0.985  # a replica's GPU-hour: $709.20 in a 30-day month


def _config(self_url: str, hosted_url: str, store: str) -> str:
    gpu = (f"{{gpu: h100-sxm, count: 1, usd_per_gpu_hour: {GPU_HOUR}, "
           "capacity_tokens_per_s: 1000000}")  # one replica serves this traffic many times
    return f"""
store: {store}
backends:
  - {{name: llama-1, url: "{self_url}", model: llama-3.1-8b, hosting: self, gpu: {gpu}}}
  - {{name: llama-2, url: "{self_url}", model: llama-3.1-8b, hosting: self, gpu: {gpu}}}
  - {{name: api, url: "{hosted_url}", model: llama-3.1-8b, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - {{alias: batchy, backends: [llama-1, llama-2]}}
  - {{alias: chat, backends: [llama-1, llama-2, api]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
"""


@pytest.fixture
def gateway(tmp_path):
    self_sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                            "--time-scale", "0.001", "--seed", "1")
    hosted_sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                              "--time-scale", "0.001", "--seed", "2")
    gw = InProcessGateway(_config(self_sim.url, hosted_sim.url,
                                  f"sqlite:///{tmp_path}/ledger.db"), tmp_path)
    yield gw
    gw.stop()
    self_sim.stop()
    hosted_sim.stop()


def test_one_idle_replica_and_no_move_for_a_route_without_a_hosted_backend(
        gateway, run_cli, tmp_path):
    with openai.OpenAI(base_url=gateway.url, api_key=KEYS["app"], max_retries=0) as client:
        for i in range(8):
            for route in ("batchy", "chat"):
                client.chat.completions.create(
                    model=route, max_tokens=4 + i % 3,
                    messages=[{"role": "user", "content": "sum up " * (2 + i)}])
    out = run_cli("report", "--config", str(gateway.path), "--since", "1h", "--json",
                  "--html", str(tmp_path / "report.html"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["idle"] == [{"pool": "openai:llama-3.1-8b", "replicas": 2,
                               "needed_replicas": 1, "idle_replicas": 1,
                               "monthly_saving_usd": 709.2, "ops_saved": False}]
    verdict = report["verdict"]
    assert verdict["verdict"] == "remove_idle"
    assert "1 idle replica: $709/month" in verdict["headline"]
    assert "batchy" not in verdict["headline"]
    moves = {m["route"]: m for m in report["moves"]}
    assert set(moves) == {"chat"}  # batchy cannot reach the hosted API
    assert moves["chat"]["replicas_freed"] == 0  # the needed replica still serves batchy
    assert ("route `batchy` cannot move to the hosted API: the route lists no hosted "
            "backend (8 requests); no move is priced for it") in report["notes"]
    html = (tmp_path / "report.html").read_text()
    assert 'id="findings"' in html and '"idle_replicas": 1' in html  # drawn from its data

    terminal = run_cli("report", "--config", str(gateway.path), "--since", "1h")
    assert terminal.returncode == 0, terminal.stderr
    text = re.sub(r"\s+", " ", terminal.stdout)
    assert "remove 1 idle replica of openai:llama-3.1-8b (2 provisioned, 1 needed): " \
           "$709.20/month" in text
    assert "move `batchy`" not in text
