"""The gateway under crashes, a database restart, drains and overload: every response a
client saw complete has its ledger record, the audit chain verifies, nothing is recorded
twice, excess load is refused quickly with Retry-After, and the gateway comes back."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import GatewayProcess, SimProcess
from .test_gateway import KEYS, _sha
from .test_report import ledger

GPU = "{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"


def config(sim: str, store: str, limits: str = "") -> str:
    return f"""
store: {store}
limits: {{circuit_failures: 100{limits}}}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
routes: [{{alias: chat, backends: [llama]}}]
keys: [{{name: app, sha256: {_sha(KEYS['app'])}}}]
"""


def call(base: str, max_tokens: int = 4, timeout: float = 30) -> tuple[int, dict[str, str]]:
    """One chat request; (status, headers), the body read to its end."""
    body = json.dumps({"model": "chat", "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={
        "Authorization": f"Bearer {KEYS['app']}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            json.loads(resp.read())
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        err.read()
        return err.code, dict(err.headers)


class Load:
    """Client threads sending requests until stopped; the ids of completed responses."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.completed: list[str] = []
        self.failed = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                status, headers = call(self.base, timeout=5)
            except OSError:
                self.failed += 1
                time.sleep(0.01)
                continue
            if status == 200:
                self.completed.append(headers["x-request-id"])

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)


def _verify(run_cli, store: str) -> dict:
    out = run_cli("audit", "verify", "--store", store, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def _serving_again(gateway: GatewayProcess, started: float) -> float:
    while call(gateway.base)[0] != 200:
        assert time.monotonic() - started < 15, "not serving after a restart"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigkill_under_load_keeps_every_completed_record(kind, request, tmp_path, run_cli):
    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.01")
    store = (f"sqlite:///{tmp_path}/ledger.db" if kind == "sqlite"
             else request.getfixturevalue("pg_url"))
    rng = random.Random(7)
    seen: list[str] = []
    try:
        for round_ in range(3):
            started = time.monotonic()
            gateway = GatewayProcess(config(sim.url, store), tmp_path, name=f"gw{round_}")
            back = _serving_again(gateway, started)
            print(f"{kind} round {round_}: serving {back:.2f} s after the restart")
            assert back < 10
            load = Load(gateway.base)
            time.sleep(rng.uniform(0.5, 1.5))
            os.kill(gateway.proc.pid, signal.SIGKILL)
            gateway.proc.wait(10)
            load.end()
            gateway.stop()
            assert load.completed, "no request completed before the kill"
            print(f"{kind} round {round_}: {len(load.completed)} completed before the kill")
            seen += load.completed
        ids = [r["id"] for r in ledger(store)]
        assert len(ids) == len(set(ids))  # nothing recorded twice
        missing = set(seen) - set(ids)
        assert not missing, f"{len(missing)} completed responses have no ledger record"
        report = _verify(run_cli, store)
        assert report["records"] == len(ids)
    finally:
        sim.stop()


def test_sigterm_drains_streams_in_flight(tmp_path):
    import openai

    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "1")
    gateway = GatewayProcess(config(sim.url, f"sqlite:///{tmp_path}/l.db"), tmp_path)
    client = openai.OpenAI(base_url=gateway.url, api_key=KEYS["app"], max_retries=0)
    texts: list[str] = []

    def stream() -> None:
        parts = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="chat", max_tokens=120, stream=True,
            messages=[{"role": "user", "content": "tell me"}]) if c.choices]
        texts.append("".join(parts))

    try:
        threads = [threading.Thread(target=stream) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the streams are under way (120 tokens take ~1 s here)
        gateway.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert len(texts) == 4 and all(texts)  # every stream finished, none cut
        assert gateway.proc.wait(30) == 0
        assert len([r for r in ledger(f"sqlite:///{tmp_path}/l.db") if r["status"] == 200]) == 4
    finally:
        client.close()
        gateway.stop()
        sim.stop()


def test_postgres_restart_under_the_gateway(tmp_path, pg_url, postgres_server, run_cli):
    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.01")
    gateway = GatewayProcess(config(sim.url, pg_url), tmp_path)
    try:
        assert call(gateway.base)[0] == 200
        load = Load(gateway.base, threads=2)
        time.sleep(0.5)
        postgres_server.restart()
        started = time.monotonic()
        # requests during the outage are refused (503 + Retry-After), never answered
        # without their record; after it the gateway reconnects by itself
        _serving_again(gateway, started)
        time.sleep(0.5)
        load.end()
        assert call(gateway.base)[0] == 200
        ids = {r["id"] for r in ledger(pg_url)}
        assert set(load.completed) <= ids
        _verify(run_cli, pg_url)
    finally:
        gateway.stop()
        sim.stop()


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("times", [2, 5])
def test_overload_is_refused_quickly_with_retry_after(tmp_path, times):
    """2x and 5x the in-flight limit at once, three waves: the excess gets 503 +
    Retry-After at once, the accepted requests keep their latency, every request has its
    record, memory stays put."""
    limit, waves = 8, 3
    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "1")
    store = f"sqlite:///{tmp_path}/l.db"
    gateway = GatewayProcess(config(sim.url, store, f", max_in_flight: {limit}"), tmp_path)
    try:
        results: list[tuple[int, dict[str, str], float]] = []

        def one() -> None:
            start = time.monotonic()
            status, headers = call(gateway.base, max_tokens=60)
            results.append((status, headers, time.monotonic() - start))

        alone = []
        for _ in range(3):
            start = time.monotonic()
            assert call(gateway.base, max_tokens=60)[0] == 200
            alone.append(time.monotonic() - start)
        rss = _rss_mib(gateway.proc.pid)
        offered = times * limit
        for _ in range(waves):
            threads = [threading.Thread(target=one) for _ in range(offered)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        refused = [r for r in results if r[0] == 503]
        served = [r for r in results if r[0] == 200]
        assert len(refused) + len(served) == len(results) == offered * waves
        assert len(served) >= limit * waves and len(refused) >= (offered - 2 * limit) * waves
        assert all(r[1].get("Retry-After") for r in refused)
        assert max(r[2] for r in refused) < 1.0  # refused at once, not after queueing
        kept = sorted(r[2] for r in served)[len(served) // 2]
        print(f"overload {times}x: {len(refused)} of {len(results)} refused in at most "
              f"{max(r[2] for r in refused):.3f} s; served median {kept:.3f} s vs "
              f"{min(alone):.3f} s alone")
        assert kept < 2 * min(alone)  # the accepted requests keep their latency
        assert _rss_mib(gateway.proc.pid) - rss < 30
        rows = ledger(store)
        assert len(rows) == len(results) + len(alone)  # the refusals are recorded too
        assert sum(1 for r in rows if r["status"] == 503) == len(refused)
    finally:
        gateway.stop()
        sim.stop()


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer wrong",
                                    "bearer k-app-revoked"])
def test_bad_keys_are_refused(stack_for_auth, header):
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    req = urllib.request.Request(f"{stack_for_auth.base}/v1/chat/completions",
                                 data=b'{"model": "chat", "messages": []}', headers=headers)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 401
    body = json.loads(err.value.read())
    assert body["error"]["type"] == "authentication_error"


@pytest.fixture(scope="module")
def stack_for_auth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    text = config("http://127.0.0.1:9/v1", f"sqlite:///{tmp}/l.db").replace(
        "keys: [", f"keys: [{{name: old, sha256: {_sha('k-app-revoked')}, revoked: true}}, ")
    gateway = GatewayProcess(text, tmp)
    yield gateway
    gateway.stop()
