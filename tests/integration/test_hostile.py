"""Hostile and malformed input against a live gateway (in this process): schemathesis over
the gateway's own OpenAPI document, hypothesis over raw bodies (any JSON, invalid UTF-8,
deep nesting, huge and negative numbers, wrong types, unknown fields), oversized bodies,
keys and scopes, and no upstream key in anything a caller, the logs or the ledger can see.
Zero 5xx."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakeven.gateway.openapi import document
from tests.support import upstreams
from tests.support.configs import KEYS, sha
from tests.support.ledgers import ledger
from tests.support.servers import InProcessGateway, InProcessSim

UPSTREAM_KEY = "sk-upstream-SECRET-0123456789"
GPU = "{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"


class Hostile:
    def __init__(self, tmp) -> None:
        self.sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                "--time-scale", "0.001")
        self.faults = upstreams.Faults()
        self._echo = upstreams.serving(upstreams.faulty_app(self.faults))
        echo = self._echo.__enter__()
        self.store = f"sqlite:///{tmp}/l.db"
        self.gateway = InProcessGateway(f"""
store: {self.store}
limits: {{max_body_bytes: 65536, circuit_failures: 1000}}
backends:
  - {{name: llama, url: "{self.sim.url}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: echo, url: "{echo}", model: faulty, hosting: hosted, api_key_env: UPSTREAM_KEY,
      price: {{input_per_mtok: 1, output_per_mtok: 1}}}}
routes:
  - {{alias: chat, backends: [llama]}}
  - {{alias: embed, task: embeddings, backends: [echo]}}
  - {{alias: leaky, backends: [echo]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}, aliases: [chat, embed]}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
""", tmp, env={"UPSTREAM_KEY": UPSTREAM_KEY})
        self.base = self.gateway.base
        import requests

        self.session = requests.Session()  # schemathesis's calls, closed with the stack

    def post(self, path: str, data: bytes, key: str | None = "app",
             content_type: str = "application/json") -> tuple[int, bytes]:
        headers = {"Content-Type": content_type}
        if key:
            headers["Authorization"] = f"Bearer {KEYS[key]}"
        req = urllib.request.Request(f"{self.base}{path}", data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            with err:
                return err.code, err.read()

    def stop(self) -> None:
        self.session.close()
        self.gateway.stop()
        self.sim.stop()
        self._echo.__exit__(None, None, None)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    h = Hostile(tmp_path_factory.mktemp("hostile"))
    yield h
    h.stop()


schema = schemathesis.openapi.from_dict(document(["chat", "embed"]))


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_server_error(case, hostile):
    response = case.call(base_url=hostile.base, session=hostile.session,
                         headers={"Authorization": f"Bearer {KEYS['admin']}"}, timeout=30)
    assert response.status_code < 500, (case.method, case.path, response.status_code,
                                        response.text[:300])
    if response.status_code >= 400:
        assert "error" in response.json()  # OpenAI's error shape, always


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_fields = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["chat", "embed", "", "nope"]) | _json,
    "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(
        ["user", "system", "tool", "x"]) | _json, "content": st.text(max_size=50) | _json}),
        max_size=3) | _json,
    "max_tokens": st.integers(min_value=-10, max_value=10**15) | _json,
    "temperature": st.floats(allow_nan=True, allow_infinity=False) | _json,
    "stream": st.booleans() | _json, "n": st.integers(-2, 5),
    "unknown_field": _json, "stream_options": _json, "logprobs": _json,
})


_blocks = st.lists(st.fixed_dictionaries({"type": st.sampled_from(
    ["text", "image", "tool_use", "tool_result", "document", "x"]) | _json}, optional={
    "text": _json, "source": _json, "id": _json, "name": _json, "input": _json,
    "tool_use_id": _json, "content": _json, "is_error": _json}), max_size=3)
_message_fields = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["chat", "embed", "nope"]) | _json,
    "messages": st.lists(st.fixed_dictionaries({
        "role": st.sampled_from(["user", "assistant", "system"]) | _json,
        "content": st.text(max_size=30) | _blocks | _json}), max_size=3) | _json,
    "max_tokens": st.integers(min_value=-2, max_value=10**15) | _json,
    "system": st.text(max_size=20) | _blocks | _json, "tools": _json,
    "tool_choice": st.fixed_dictionaries({"type": st.sampled_from(
        ["auto", "any", "tool", "none"]) | _json}, optional={"name": _json}) | _json,
    "stop_sequences": _json, "metadata": _json, "top_k": _json, "stream": _json,
    "thinking": _json,
})


@given(body=_message_fields | _json.map(lambda v: v))
@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_hypothesis_bodies_on_messages_never_cause_a_5xx(hostile, body):
    status, raw = hostile.post("/v1/messages", json.dumps(body).encode())
    assert status < 500, (body, raw[:300])
    if status >= 400:
        answer = json.loads(raw)
        assert answer["type"] == "error" and answer["error"]["message"]  # Anthropic's shape


@given(body=_fields | _json.map(lambda v: v))
@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_hypothesis_bodies_never_cause_a_5xx(hostile, body):
    status, raw = hostile.post("/v1/chat/completions", json.dumps(body).encode())
    assert status < 500, (body, raw[:300])
    if status >= 400:
        assert json.loads(raw)["error"]["message"]


_responses_fields = st.fixed_dictionaries({}, optional={
    "model": st.sampled_from(["chat", "embed", "nope"]) | _json,
    "input": st.text(max_size=30) | st.lists(st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["message", "function_call", "function_call_output",
                                 "reasoning", "web_search_call"]) | _json,
        "role": st.sampled_from(["user", "assistant", "developer", "x"]) | _json,
        "content": st.text(max_size=20) | _json, "call_id": _json, "name": _json,
        "arguments": _json, "output": _json}), max_size=3) | _json,
    "instructions": _json, "tools": _json, "tool_choice": _json, "text": _json,
    "max_output_tokens": _json, "temperature": _json, "store": _json, "stream": _json,
    "previous_response_id": _json, "metadata": _json, "unknown_field": _json,
})


@given(body=_responses_fields)
@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_hypothesis_responses_bodies_never_cause_a_5xx(hostile, body):
    status, raw = hostile.post("/v1/responses", json.dumps(body).encode())
    assert status < 500, (body, raw[:300])
    if status >= 400:
        assert json.loads(raw)["error"]["message"]


@pytest.mark.parametrize("data", [
    b"\xff\xfe not utf-8", b"{" * 5000, b"[" * 100000 + b"]" * 100000, b"", b"null",
    json.dumps({"model": "chat", "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 10**18}).encode(),
    json.dumps({"model": "chat", "messages": [{"role": "user", "content": "x"}],
                "max_tokens": -1}).encode(),
    json.dumps({"model": "chat", "messages": "hello"}).encode(),
    json.dumps({"model": ["chat"], "messages": []}).encode(),
], ids=["invalid-utf8", "open-braces", "deep-nesting", "empty", "null", "huge-max-tokens",
        "negative-max-tokens", "messages-string", "model-list"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages",
                                  "/v1/messages/count_tokens"])
def test_malformed_bodies_are_4xx(hostile, data, path):
    status, raw = hostile.post(path, data)
    assert 400 <= status < 500, raw[:300]
    assert json.loads(raw)["error"]["message"]


def test_oversized_body_is_413(hostile):
    status, raw = hostile.post("/v1/chat/completions", b'{"model": "chat", "x": "'
                               + b"a" * 70000 + b'"}')
    assert status == 413 and json.loads(raw)["error"]["code"] == "request_too_large"
    status, raw = hostile.post("/v1/messages", b'{"model": "chat", "x": "'
                               + b"a" * 70000 + b'"}')
    assert status == 413 and json.loads(raw)["error"]["type"] == "request_too_large"


def test_scopes(hostile):
    body = json.dumps({"model": "leaky", "messages": [{"role": "user", "content": "x"}]})
    status, raw = hostile.post("/v1/chat/completions", body.encode())
    assert status == 404  # an alias the key lacks looks like one that does not exist
    assert "leaky" in json.loads(raw)["error"]["message"]
    for path in ("/admin/ledger", "/admin/report"):
        req = urllib.request.Request(f"{hostile.base}{path}",
                                     headers={"Authorization": f"Bearer {KEYS['app']}"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        err.value.close()
        assert err.value.code == 403


def test_upstream_keys_never_leak(hostile):
    """An upstream that echoes the key in its error (as providers do on a bad key): the
    caller's error, the metrics, the gateway's logs and the ledger never contain it (a
    gateway process's stderr: system/test_gateway_logs.py)."""
    hostile.faults.mode = "401-echo"
    try:
        body = {"model": "leaky", "messages": [{"role": "user", "content": "x"}]}
        status, raw = hostile.post("/v1/chat/completions", json.dumps(body).encode(),
                                   key="admin")
    finally:
        hostile.faults.mode = "ok"
    # the gateway's key was refused: the gateway's fault (502), never the caller's 401
    assert status == 502 and "[redacted]" in raw.decode()
    assert json.loads(raw)["error"]["code"] == "upstream_error"
    assert hostile.faults.log, "the echoing upstream was not reached"
    with urllib.request.urlopen(f"{hostile.base}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert 'breakeven_gateway_backend_unready{backend="echo"} 1' in metrics
    probes = {}
    for _ in range(100):  # the echo backend is unready until /readyz's re-probe finds it
        try:
            with urllib.request.urlopen(f"{hostile.base}/readyz", timeout=10) as resp:
                probes = json.loads(resp.read())["probes"]
        except urllib.error.HTTPError as exc:
            probes = json.loads(exc.read())["probes"]
            exc.close()
        if probes["echo"]["unready"] is None:
            break
        time.sleep(0.1)
    assert probes["echo"]["unready"] is None and probes["echo"]["outcome"] == "ok"
    for text in (raw.decode(), metrics, hostile.gateway.logs, json.dumps(probes),
                 json.dumps(ledger(hostile.store), default=str)):
        assert UPSTREAM_KEY not in text and "SECRET-0123" not in text
