"""The report's idle-replica finding and its route moves, over a real ledger: traffic through
a gateway (in this process) to sims, two self-hosted replicas of which the traffic needs
one, a route (`batchy`) with no hosted backend and one (`chat`) with one. The report must
say "1 idle replica: $709/month" and price no move for `batchy`, in JSON, the terminal and
the HTML page alike. (The figures' edge cases: unit/test_report_idle.py.)"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

import openai
import pytest

from tests.support.configs import KEYS, sha
from tests.support.ledgers import ledger
from tests.support.servers import InProcessGateway, two_sims

GPU_HOUR = 0.985  # a replica's GPU-hour: $709.20 in a 30-day month


def _config(self_url: str, hosted_url: str, store: str, replicas: int = 2,
            capacity: float = 1e6) -> str:
    gpu = (f"{{gpu: h100-sxm, count: 1, usd_per_gpu_hour: {GPU_HOUR}, "
           f"capacity_tokens_per_s: {capacity}}}")  # 1e6: one replica serves it many times
    names = [f"llama-{i + 1}" for i in range(replicas)]
    selfs = "".join(f"""
  - {{name: {n}, url: "{self_url}", model: llama-3.1-8b, hosting: self, gpu: {gpu}}}"""
                    for n in names)
    return f"""
store: {store}
backends:{selfs}
  - {{name: api, url: "{hosted_url}", model: llama-3.1-8b, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - {{alias: batchy, backends: [{", ".join(names)}]}}
  - {{alias: chat, backends: [{", ".join(names)}, api]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
"""


@pytest.fixture
def sims():
    yield from two_sims("0.001")


@pytest.fixture
def gateway(sims, tmp_path):
    gw = InProcessGateway(_config(sims[0].url, sims[1].url,
                                  f"sqlite:///{tmp_path}/ledger.db"), tmp_path)
    yield gw
    gw.stop()


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


def test_a_move_frees_only_needed_replicas_and_pii_traffic_is_a_note(sims, run_cli, tmp_path):
    """Three replicas, of which the busiest hour needs two; moving `chat` (half the
    tokens) leaves work for one: the move frees one replica, the idle one is its own
    finding, and `chat`'s pii requests (kept self-hosted by the rules) are a note."""
    store = f"sqlite:///{tmp_path}/ledger.db"
    gw = InProcessGateway(_config(sims[0].url, sims[1].url, store, replicas=3), tmp_path)
    try:
        with openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0) as client:
            for i in range(10):
                for route in ("batchy", "chat"):
                    client.chat.completions.create(
                        model=route, max_tokens=6,
                        messages=[{"role": "user", "content": "sum up " * (4 + i % 3)}])
            for i in range(2):  # found by the PII scan: kept on the self-hosted side
                client.chat.completions.create(
                    model="chat", max_tokens=4,
                    messages=[{"role": "user", "content": f"mail jane.doe{i}@example.com"}])
    finally:
        gw.stop()
    records = ledger(store)
    start, last = min(r["ts"] for r in records), max(r["ts"] for r in records)
    until = last + 1.0
    if int(start // 3600) != int(until // 3600):
        pytest.skip("the traffic straddles a clock hour: the busiest hour is not all of it")
    # capacity for this traffic (an independent computation of the replica step): the
    # rate needs 1.5 replicas at the 85% target, and the rest after `chat` leaves < 1
    tokens = {a: sum(r["tokens_in"] + r["tokens_out"] for r in records if r["alias"] == a)
              for a in ("batchy", "chat")}
    rate = sum(tokens.values()) / (until - start)
    capacity = rate / (1.5 * 0.85)
    general_chat = sum(r["tokens_in"] + r["tokens_out"] for r in records
                       if r["alias"] == "chat" and r["data_class"] == "general")
    assert math.ceil((rate - general_chat / (until - start)) / (capacity * 0.85)) == 1
    config = tmp_path / "report.yaml"
    config.write_text(_config(sims[0].url, sims[1].url, store, replicas=3,
                              capacity=capacity))
    out = run_cli("report", "--config", str(config), "--since", "1h", "--until",
                  datetime.fromtimestamp(until, UTC).isoformat(), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    (idle,) = report["idle"]
    assert (idle["replicas"], idle["needed_replicas"], idle["idle_replicas"]) == (3, 2, 1)
    (move,) = report["moves"]
    assert (move["route"], move["replicas_freed"]) == ("chat", 1)
    assert move["monthly_saving_usd"] == pytest.approx(
        GPU_HOUR * 720 - move["hosted_monthly_usd"], abs=0.02)
    notes = report["notes"]
    assert any(n.startswith("2 requests of route `chat` cannot move to the hosted API "
                            "(data class 'pii'") for n in notes)
    assert any(n.startswith("route `batchy` cannot move to the hosted API: the route lists "
                            "no hosted backend") for n in notes)
