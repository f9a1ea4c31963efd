"""Every upstream fault, streaming and not, on a route with a healthy fallback and on a
route without one: the caller gets a correct answer or a clear error within the deadline,
the ledger has one record per request with the true outcome, and a pii request never
reaches the hosted backend while its self-hosted one fails. ``FAULT_TABLE=FILE`` writes
the outcome table (``benchmarks/fault_matrix.py`` prints it)."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

from tests.support import upstreams
from tests.support.configs import KEYS, sha
from tests.support.servers import InProcessGateway, InProcessSim, free_port

FAULTS = ["500", "502", "503", "429", "429+retry-after", "hang", "slow_first_byte",
          "slow_stream", "garbage", "bad_json", "bad_sse", "cut", "no_done", "no_usage",
          "refused"]
MID_STREAM = {"slow_stream", "bad_sse", "cut", "no_done"}  # after the first chunk
DEADLINE_S = 5.0  # the faulty backend's total timeout is 2 s; one fallback after it
TABLE: list[dict] = []
GPU = "{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"
TIMEOUTS = "{connect_s: 1, first_byte_s: 0.5, total_s: 2}"


def config(flaky: str, refused: str, sim: str, hosted: str, store: str) -> str:
    return f"""
store: {store}
limits: {{circuit_failures: 1000, retry_after_cap_s: 1}}
backends:
  - {{name: flaky, url: "{flaky}", model: faulty, hosting: self, gpu: {GPU},
      timeouts: {TIMEOUTS}}}
  - {{name: refused, url: "{refused}", model: faulty, hosting: self, gpu: {GPU},
      timeouts: {TIMEOUTS}}}
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: api, url: "{hosted}", model: llama-3.1-8b, hosting: hosted,
      price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - {{alias: fb, backends: [flaky, llama]}}
  - {{alias: solo, backends: [flaky], max_attempts: 2}}
  - {{alias: fb-refused, backends: [refused, llama]}}
  - {{alias: solo-refused, backends: [refused]}}
  - {{alias: mixed, backends: [flaky, api]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: hr, sha256: {sha(KEYS['hr'])}, data_class: pii}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
"""


class Matrix:
    def __init__(self, tmp) -> None:
        self.faults = upstreams.Faults()
        self._flaky = upstreams.serving(upstreams.faulty_app(self.faults))
        flaky = self._flaky.__enter__()
        self.sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                "--time-scale", "0.01")
        self.hosted = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                   "--time-scale", "0.01", "--seed", "9")
        refused = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        self.gateway = InProcessGateway(config(flaky, refused, self.sim.url,
                                               self.hosted.url, f"sqlite:///{tmp}/l.db"), tmp)

    def stop(self) -> None:
        self.gateway.stop()
        self.sim.stop()
        self.hosted.stop()
        self._flaky.__exit__(None, None, None)

    def last_record(self) -> dict:
        req = urllib.request.Request(f"{self.gateway.base}/admin/ledger?limit=1",
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["data"][0]

    def ask(self, route: str, stream: bool, key: str = "app") -> dict:
        body = json.dumps({"model": route, "stream": stream, "max_tokens": 5,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        req = urllib.request.Request(f"{self.gateway.base}/v1/chat/completions", data=body,
                                     headers={"Authorization": f"Bearer {KEYS[key]}",
                                              "Content-Type": "application/json"})
        start = time.monotonic()
        out: dict = {"text": "", "error": None, "done": False}
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                out["status"] = resp.status
                if not stream:
                    answer = json.loads(resp.read())
                    out["text"] = answer["choices"][0]["message"]["content"]
                    out["done"] = True
                else:
                    for raw in resp:
                        line = raw.decode().strip()
                        if not line.startswith("data: "):
                            continue
                        if line == "data: [DONE]":
                            out["done"] = True
                            break
                        event = json.loads(line[6:])  # the gateway relays valid JSON only
                        if "error" in event:
                            out["error"] = event["error"]["message"]
                        for choice in event.get("choices") or []:
                            out["text"] += (choice.get("delta") or {}).get("content") or ""
        except urllib.error.HTTPError as err:
            out["status"] = err.code
            out["error"] = json.loads(err.read())["error"]["message"]
            out["retry_after"] = err.headers.get("Retry-After")
        out["seconds"] = time.monotonic() - start
        return out


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    m = Matrix(tmp_path_factory.mktemp("faults"))
    yield m
    m.stop()
    path = os.environ.get("FAULT_TABLE")
    if path:
        with open(path, "w") as f:
            json.dump(TABLE, f, indent=1)


def _set(m: Matrix, fault: str) -> str:
    """Put the upstream in ``fault``; the route suffix for the refused-connection case."""
    m.faults.mode = fault.split("+")[0]
    m.faults.retry_after = "1" if fault == "429+retry-after" else None
    m.faults.delay_s = 1.0
    return "-refused" if fault == "refused" else ""


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fault", FAULTS)
def test_fault(matrix, fault, stream):
    suffix = _set(matrix, fault)
    for route in (f"fb{suffix}", f"solo{suffix}"):
        got = matrix.ask(route, stream)
        record = matrix.last_record()
        healthy = got["text"] and "fine answer" not in got["text"]
        assert got["seconds"] < DEADLINE_S, (route, got)
        mid = stream and fault in MID_STREAM
        if fault == "no_usage" or (fault in MID_STREAM and not stream):
            # a correct answer without usage (served, counted as 0 tokens), or a stream
            # fault on a request that does not stream: served as usual
            assert got["status"] == 200 and got["done"] and "fine answer" in got["text"]
        elif route.startswith("fb") and not mid:
            assert got["status"] == 200 and got["done"] and healthy, (route, got)
            assert record["backend"] == "llama" and record["fallbacks"] >= 1
        elif mid:  # after the first chunk there is no going back: a clear error event
            assert got["error"] and got["done"], (route, got)
            assert record["status"] >= 500 and record["error"]
        else:
            assert got["status"] >= 400 and got["error"], (route, got)
            if got["status"] == 429:
                assert got["retry_after"]
            if fault == "429+retry-after":  # it waited as asked, then asked once more
                assert record["attempts"] == 2 and got["seconds"] >= 0.9, (route, got)
        # the ledger's record is this request's, with the status the caller saw
        if not mid:
            assert record["status"] == got["status"]
        TABLE.append({"fault": fault, "mode": "stream" if stream else "json", "route": route,
                      "status": got["status"],
                      "outcome": ("answer" if got["done"] and not got["error"] else
                                  "error event" if got["done"] else "error"),
                      "served_by": record["backend"], "seconds": round(got["seconds"], 2),
                      "ledger_status": record["status"], "attempts": record["attempts"]})


@pytest.mark.parametrize("fault", ["500", "hang", "garbage"])
def test_pii_never_falls_back_to_hosted(matrix, fault):
    _set(matrix, fault)
    got = matrix.ask("mixed", stream=False, key="hr")
    record = matrix.last_record()
    assert got["status"] >= 500 and "data class" in got["error"]
    assert record["backend"] in ("flaky", None) and record["hosting"] != "hosted"
