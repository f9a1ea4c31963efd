"""The Batch API through the official openai SDK against a gateway with sim backends (all
in this process): submit, poll, download, cancel, bad input, on SQLite and PostgreSQL;
batch priority on the engine; yielding capacity to interactive traffic; spilling to a
hosted backend when the window cannot be met, with pii lines kept self-hosted; exclusive
claims on a PostgreSQL queue. (A gateway killed mid-batch: system/test_batch_crash.py.)"""

from __future__ import annotations

import json
import time

import openai
import pytest

from breakeven.store import open_store
from tests.support import upstreams
from tests.support.batches import GPU, Stack, jsonl, line, submit, wait_final
from tests.support.configs import KEYS, sha
from tests.support.ledgers import ledger
from tests.support.servers import InProcessGateway, InProcessSim


@pytest.mark.slow
def test_submit_poll_download(store_url, tmp_path, run_cli):
    stack = Stack(tmp_path, store_url)
    try:
        client = stack.client()
        good = [line(f"ok-{i}", content=f"question {i} " * (1 + i % 5)) for i in range(30)]
        good.append(line("pii-1", content="reach me at jane.doe@example.com"))
        bad = ['{"custom_id": "broken", "method": "POST",',  # line 32: not JSON
               line("ok-1"),  # a repeated custom_id
               line("wrong-url", url="/v1/embeddings"),
               line("nope", model="no-such-route")]
        content = "\n".join(good + bad) + "\n"
        f = client.files.create(file=("in.jsonl", content.encode()), purpose="batch")
        assert f.purpose == "batch" and f.bytes == len(content.encode())
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h", metadata={"job": "t1"})
        assert batch.status in ("validating", "in_progress")
        done = wait_final(client, batch.id)
        assert done.status == "completed", done
        assert done.request_counts.total == 35
        assert done.request_counts.completed == 31 and done.request_counts.failed == 4
        assert done.metadata == {"job": "t1"}
        out = jsonl(client, done.output_file_id)
        assert sorted(o["custom_id"] for o in out) == sorted(
            [f"ok-{i}" for i in range(30)] + ["pii-1"])  # each exactly once
        assert all(o["response"]["status_code"] == 200 and
                   o["response"]["body"]["choices"][0]["message"]["content"] for o in out)
        errors = {e["error"]["line"]: e for e in jsonl(client, done.error_file_id)}
        assert sorted(errors) == [32, 33, 34, 35]  # every bad line, by its line number
        assert errors[32]["error"]["code"] == "invalid_json"
        assert "repeated" in errors[33]["error"]["message"]
        assert "no-such-route" in errors[35]["error"]["message"]
        # listed, and invisible to another key
        assert batch.id in [b.id for b in client.batches.list(limit=5).data]
        other = stack.client("narrow")
        with pytest.raises(openai.NotFoundError):
            other.batches.retrieve(batch.id)
        with pytest.raises(openai.NotFoundError):
            other.files.content(done.output_file_id)
        # the ledger: one batch record per line run, all on the self-hosted backend
        rows = [r for r in ledger(store_url) if r["batch"]]
        assert len(rows) == 31
        assert {r["hosting"] for r in rows} == {"self"}
        assert [r["data_class"] for r in rows].count("pii") == 1
        assert all(json.loads(r["decision"])["rules"][0].startswith(f"batch {batch.id} line")
                   for r in rows)
        # the report separates batch work and prices it on the hosted side
        config = tmp_path / "gw0.yaml"
        out = run_cli("report", "--config", str(config), "--since", "1h", "--json")
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
        assert report["batch"]["requests"] == 31
        assert report["batch"]["hosted_equivalent_usd"] == pytest.approx(
            sum(r["usd_other_side"] for r in rows))
        util = report["utilisation"]
        assert util["mean_without_batch"] < util["mean"]
        assert any("batch work" in reason for reason in report["verdict"]["reasons"])
    finally:
        stack.stop()


def test_batch_lines_go_to_the_engine_at_a_lower_priority(tmp_path):
    """A backend with ``batch_priority`` gets batch lines at that priority and every other
    request at 0, whatever the caller put in ``priority``; a sim scheduling by priority
    runs them (one scheduling first come first served refuses the field, as vLLM does)."""
    faults = upstreams.Faults()  # a self-hosted engine that logs the bodies it gets
    ranked = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale",
                          "0.01", "--scheduling-policy", "priority")
    with upstreams.serving(upstreams.faulty_app(faults)) as logged:
        gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/ledger.db
backends:
  - {{name: sim, url: "{ranked.url}", model: llama-3.1-8b, hosting: self, gpu: {GPU},
      batch_priority: 9}}
  - {{name: rec, url: "{logged}", model: llama-3.1-8b, hosting: self, gpu: {GPU},
      batch_priority: 4}}
routes: [{{alias: chat, backends: [sim]}}, {{alias: logged, backends: [rec]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
batch: {{lease_s: 2, scrape_s: 0.2}}
""", tmp_path)
        try:
            with openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0) as client:
                for alias in ("chat", "logged"):
                    client.chat.completions.create(
                        model=alias, max_tokens=4, extra_body={"priority": -5},
                        messages=[{"role": "user", "content": "jump the queue"}])
                rows = [line(f"{alias}-{i}", model=alias) for alias in ("chat", "logged")
                        for i in range(3)]
                f = client.files.create(file=("in.jsonl", "\n".join(rows).encode()),
                                        purpose="batch")
                batch = client.batches.create(input_file_id=f.id, completion_window="24h",
                                              endpoint="/v1/chat/completions")
                done = wait_final(client, batch.id)
                assert done.status == "completed" and done.request_counts.completed == 6, done
        finally:
            gw.stop()
            ranked.stop()
    assert [body.get("priority") for body in faults.log] == [0, 4, 4, 4]


@pytest.mark.slow
def test_batch_yields_the_capacity_interactive_traffic_takes(tmp_path):
    """``fill_to`` x capacity: while interactive requests use all of it, the batch limit
    falls to zero and lines wait (without it, 40 short lines finish in a few seconds);
    once they stop, the batch finishes."""
    import threading
    import urllib.request

    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.01")
    gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/ledger.db
backends:
  - {{name: llama-1, url: "{sim.url}", model: llama-3.1-8b, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 300}}}}
routes: [{{alias: chat, backends: [llama-1]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
batch: {{scrape_s: 0.2, fill_to: 0.9}}
""", tmp_path)
    stop = threading.Event()

    def chatter() -> None:  # ~20 tokens a request, far more than 270 tokens/s in all
        with openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0) as c:
            while not stop.is_set():
                c.chat.completions.create(model="chat", max_tokens=8,
                                          messages=[{"role": "user", "content": "hi"}])

    def gauges() -> dict[str, float]:
        req = urllib.request.Request(gw.url.removesuffix("/v1") + "/metrics",
                                     headers={"Authorization": f"Bearer {KEYS['app']}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
        return {x.rsplit(" ", 1)[0]: float(x.rsplit(" ", 1)[1]) for x in text.splitlines()
                if x.startswith("breakeven_gateway_batch_")}

    threads = [threading.Thread(target=chatter) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(1)
        with openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0) as client:
            batch_id = submit(client, 40, max_tokens=8)
            time.sleep(4)
            during = client.batches.retrieve(batch_id).request_counts.completed
            held = gauges()
            stop.set()
            for t in threads:
                t.join()
            done = wait_final(client, batch_id, timeout=60)
        assert held['breakeven_gateway_batch_limit{backend="llama-1"}'] == 0, held
        assert held['breakeven_gateway_batch_signal{backend="llama-1",signal="room_lines"}'] == 0
        assert during <= 5, (held, during)
        assert done.status == "completed" and done.request_counts.completed == 40
    finally:
        stop.set()
        gw.stop()
        sim.stop()


def test_bad_input(tmp_path):
    stack = Stack(tmp_path, f"sqlite:///{tmp_path}/l.db", batch=", max_file_bytes: 4096")
    try:
        client = stack.client()
        with pytest.raises(openai.BadRequestError, match="purpose"):
            client.files.create(file=("a.jsonl", b"{}"), purpose="fine-tune")
        with pytest.raises(openai.APIStatusError) as big:
            client.files.create(file=("big.jsonl", b"x" * 5000), purpose="batch")
        assert big.value.status_code == 413
        f = client.files.create(file=("in.jsonl", line("a").encode()), purpose="batch")
        with pytest.raises(openai.BadRequestError, match="endpoint"):
            client.batches.create(input_file_id=f.id, endpoint="/v1/responses",
                                  completion_window="24h")
        with pytest.raises(openai.BadRequestError, match="completion_window"):
            client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="soon")
        with pytest.raises(openai.BadRequestError, match="input_file_id"):
            client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions",
                                  completion_window="24h")
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_nope")
        # not JSONL at all: the batch fails with a reason, nothing runs
        text = client.files.create(file=("notes.txt", b"hello\nworld\n"), purpose="batch")
        failed = wait_final(client, client.batches.create(
            input_file_id=text.id, endpoint="/v1/chat/completions",
            completion_window="24h").id)
        assert failed.status == "failed"
        assert "not JSONL" in failed.errors.data[0].message
        # a route this key may not use: the line fails, named, the batch completes
        narrow = stack.client("narrow")
        nf = narrow.files.create(file=("n.jsonl", (line("x") + "\n" + line(
            "y", model="open")).encode()), purpose="batch")
        done = wait_final(narrow, narrow.batches.create(
            input_file_id=nf.id, endpoint="/v1/chat/completions", completion_window="1h").id)
        assert (done.request_counts.completed, done.request_counts.failed) == (1, 1)
        # the gateway's own error shape for a cancel of a finished batch
        with pytest.raises(openai.BadRequestError, match="cannot cancel"):
            narrow.batches.cancel(done.id)
    finally:
        stack.stop()


def test_cancel(tmp_path):
    stack = Stack(tmp_path, f"sqlite:///{tmp_path}/l.db", scale="1",
                  batch=", max_per_backend: 2")
    try:
        client = stack.client()
        content = "\n".join(line(f"c{i}", max_tokens=40) for i in range(200))
        f = client.files.create(file=("in.jsonl", content.encode()), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        while client.batches.retrieve(batch.id).request_counts.completed < 2:
            time.sleep(0.1)
        assert client.batches.cancel(batch.id).status in ("cancelling", "cancelled")
        done = wait_final(client, batch.id)
        assert done.status == "cancelled"
        out, err = jsonl(client, done.output_file_id), jsonl(client, done.error_file_id)
        assert len(out) == done.request_counts.completed < 200
        assert len(out) + len(err) == 200  # every line accounted for
        assert {e["error"]["code"] for e in err} == {"batch_cancelled"}
    finally:
        stack.stop()


@pytest.mark.slow
def test_spills_to_hosted_when_the_window_cannot_be_met(tmp_path):
    """A slow self-hosted backend and a 1-minute window: the batch spills, but lines that
    carry personal data still run only self-hosted."""
    stack = Stack(tmp_path, f"sqlite:///{tmp_path}/l.db", scale="10", spill=True,
                  batch=", max_per_backend: 1")
    try:
        client = stack.client()
        batch_id = submit(client, 60, max_tokens=20, window="1m", pii_every=10)
        done = wait_final(client, batch_id, timeout=90)
        rows = [r for r in ledger(stack.store) if r["batch"] and r["status"] == 200]
        hosted = [r for r in rows if r["hosting"] == "hosted"]
        assert hosted, "nothing spilled"
        assert all(r["data_class"] == "general" for r in hosted)
        assert any("spilled" in json.loads(r["decision"])["rules"][1] for r in hosted)
        out = jsonl(client, done.output_file_id)
        err = jsonl(client, done.error_file_id)
        assert len(out) + len(err) == 60
        assert len({o["custom_id"] for o in out}) == len(out)
    finally:
        stack.stop()


@pytest.mark.postgres
def test_queue_claims_are_exclusive(pg_url):
    """Two claimers on PostgreSQL never lease the same line (SKIP LOCKED)."""
    import asyncio
    import threading

    from breakeven.store.batches import Queue

    store = open_store(pg_url)
    try:
        q = Queue(store)
        now = time.time()
        q.create({"id": "batch_x", "key_name": "k", "endpoint": "/v1/chat/completions",
                  "input_file_id": "f", "completion_window": "24h", "status": "in_progress",
                  "created_at": now, "expires_at": now + 60})
        q.add_lines("batch_x", [(i, f"c{i}", "chat", "general", "{}", "queued", None)
                                for i in range(1, 501)])
        got: dict[str, list[int]] = {"a": [], "b": []}

        def claimer(name: str) -> None:
            while lines := q.claim(name, ["chat"], 7, 60):
                got[name] += [x["line_no"] for x in lines]

        threads = [threading.Thread(target=claimer, args=(n,)) for n in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got["a"] + got["b"]) == list(range(1, 501))  # all, once
        assert got["a"] and got["b"]  # both worked
        # a lease that runs out is claimable again; the late finisher's result is refused
        assert q.claim("c", ["chat"], 1, 60) == []
    finally:
        asyncio.run(store.close())


def test_a_batch_keeps_the_class_its_creator_declared(tmp_path):
    """x-data-class on POST /v1/batches holds for every line (it may raise the class,
    never lower it): lines without a finding of their own are pii, so none may spill to
    the hosted backend; the header twice is a 400."""
    import sqlite3

    stack = Stack(tmp_path, f"sqlite:///{tmp_path}/l.db", spill=True)
    try:
        client = stack.client()
        content = "\n".join(line(f"d{i}", content="summarise the meeting") for i in range(6))
        f = client.files.create(file=("in.jsonl", content.encode()), purpose="batch")
        with pytest.raises(openai.BadRequestError, match=r"must name one class; got 2"):
            client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h",
                                  extra_headers={"x-data-class": "pii, general"})
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h",
                                      extra_headers={"x-data-class": "pii"})
        done = wait_final(client, batch.id)
        assert done.request_counts.completed == 6
        with sqlite3.connect(f"{tmp_path}/l.db") as conn:
            classes = {c for (c,) in conn.execute(
                "SELECT data_class FROM batch_lines WHERE batch_id = ?", (batch.id,))}
        assert classes == {"pii"}
        rows = [r for r in ledger(stack.store) if r["batch"]]
        assert len(rows) == 6 and {r["hosting"] for r in rows} == {"self"}
        assert {r["data_class"] for r in rows} == {"pii"}
    finally:
        stack.stop()
