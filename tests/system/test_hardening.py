"""The gateway under crashes, a database restart, drains and overload: every response a
client saw complete has its ledger record, the audit chain verifies, nothing is recorded
twice, excess load is refused quickly with Retry-After, and the gateway comes back. The
gateway is a real process here (killed, signalled, its memory read); the sims run in this
process except under the overload test, whose latencies they must not share a GIL with."""

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

from tests.support.configs import KEYS
from tests.support.configs import one_backend as config
from tests.support.ledgers import ledger
from tests.support.servers import GatewayProcess, InProcessSim, SimProcess

pytestmark = pytest.mark.slow


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


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql",
                                                         marks=pytest.mark.postgres)])
def test_sigkill_under_load_keeps_every_completed_record(kind, request, tmp_path, run_cli):
    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.01")
    store = (f"sqlite:///{tmp_path}/ledger.db" if kind == "sqlite"
             else request.getfixturevalue("pg_url"))
    rng = random.Random(7)
    seen: list[str] = []
    first = 0.0
    try:
        for round_ in range(3):
            started = time.monotonic()
            gateway = GatewayProcess(config(sim.url, store), tmp_path, name=f"gw{round_}")
            back = _serving_again(gateway, started)
            first = first or back  # round 0: a first start, on an empty store
            print(f"{kind} round {round_}: serving {back:.2f} s after the restart")
            # back as fast as a first start (nothing the dead one held makes it wait): 10 s,
            # or 3 first starts where this machine starts processes slower than that
            assert back < max(10.0, 3 * first)
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

    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "1")
    gateway = GatewayProcess(config(sim.url, f"sqlite:///{tmp_path}/l.db"), tmp_path)
    client = openai.OpenAI(base_url=gateway.url, api_key=KEYS["app"], max_retries=0)
    texts: list[str] = []
    under_way = threading.Semaphore(0)

    def stream() -> None:
        parts: list[str] = []
        for c in client.chat.completions.create(
                model="chat", max_tokens=120, stream=True,
                messages=[{"role": "user", "content": "tell me"}]):
            if c.choices and c.choices[0].delta.content:
                if not parts:
                    under_way.release()  # its first token is here
                parts.append(c.choices[0].delta.content)
        texts.append("".join(parts))

    try:
        threads = [threading.Thread(target=stream) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in threads:  # every stream under way (120 tokens take ~1 s here), none done
            assert under_way.acquire(timeout=30), "a stream did not start"
        assert texts == []
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
    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.01")
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
    Retry-After at once (before the wave's first answer: not after queueing for a slot),
    the accepted requests keep their latency, every request has its record, memory stays
    put. The sim is a process of its own: the 40 client threads here must not slow it."""
    limit, waves = 8, 3
    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "1")
    store = f"sqlite:///{tmp_path}/l.db"
    gateway = GatewayProcess(config(sim.url, store, f", max_in_flight: {limit}"), tmp_path)
    try:
        results: list[tuple[int, dict[str, str], float, int, float]] = []

        def one(wave: int) -> None:
            start = time.monotonic()
            status, headers = call(gateway.base, max_tokens=60)
            end = time.monotonic()
            results.append((status, headers, end - start, wave, end))

        alone = []
        for _ in range(3):
            start = time.monotonic()
            assert call(gateway.base, max_tokens=60)[0] == 200
            alone.append(time.monotonic() - start)
        rss = _rss_mib(gateway.proc.pid)
        offered = times * limit
        for wave in range(waves):
            threads = [threading.Thread(target=one, args=(wave,)) for _ in range(offered)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        refused = [r for r in results if r[0] == 503]
        served = [r for r in results if r[0] == 200]
        assert len(refused) + len(served) == len(results) == offered * waves
        assert len(served) >= limit * waves and len(refused) >= (offered - 2 * limit) * waves
        assert all(r[1].get("Retry-After") for r in refused)
        for wave in range(waves):  # refused at once, not after queueing for a slot
            answered = min(r[4] for r in served if r[3] == wave)
            assert all(r[4] < answered for r in refused if r[3] == wave), wave
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
