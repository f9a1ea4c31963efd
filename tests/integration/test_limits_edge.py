"""The edge bounds what a caller can hold: stalled request bodies are dropped after
``limits.body_timeout_s`` without taking in-flight slots, idle keep-alive connections are
closed after ``limits.keepalive_s``, failed authentication is throttled per address (and
not chained into the ledger at line rate), a body over the limit is recorded as 413,
``/readyz`` answers from a cached probe, and ``/metrics`` can require a key."""

from __future__ import annotations

import json
import socket

import openai

from tests.support import upstreams
from tests.support.limits import KEYS, gateway, http, priced_upstream, sha


def config(hosted: str, self_url: str, limits: str = "") -> str:
    return f"""
store: {{store}}
backends:
  - {{name: api, url: "{hosted}", model: m, hosting: hosted,
      price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
  - {{name: local, url: "{self_url}", model: m, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 1000}}}}
routes:
  - {{alias: chat, backends: [local, api]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
limits: {{max_in_flight: 8, max_body_bytes: 4096{limits}}}
"""


def _stall(port: int) -> socket.socket:
    """A request whose body never comes: headers promise 1,000 bytes, one is sent."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(20)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nAuthorization: Bearer " + KEYS["app"].encode()
              + b"\r\nContent-Length: 1000\r\n\r\n{")
    return s


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_stalled_bodies_hold_no_slot_and_are_dropped(tmp_path):
    self_app, _ = priced_upstream()
    hosted_app, _ = priced_upstream()
    with upstreams.serving(self_app) as local, upstreams.serving(hosted_app) as hosted, \
            gateway(config(hosted, local, ", body_timeout_s: 0.5"), tmp_path) as gw:
        stalled = [_stall(gw.port) for _ in range(16)]  # twice max_in_flight
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            answer = client.chat.completions.create(
                model="chat", max_tokens=4, messages=[{"role": "user", "content": "hi"}])
            assert answer.choices[0].message.content == "ok"
        finally:
            client.close()
        for s in stalled:  # each is answered 408 and closed (recv returns b"")
            reply = _read_all(s)
            s.close()
            assert reply.startswith(b"HTTP/1.1 408"), reply[:80]
            assert b"body_timeout" in reply


def test_idle_keep_alive_connections_are_closed(tmp_path):
    self_app, _ = priced_upstream()
    with upstreams.serving(self_app) as local, \
            gateway(config(local, local, ", keepalive_s: 0.3"), tmp_path) as gw:
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.settimeout(20)  # far longer than keepalive_s: a timeout here means never closed
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        reply = _read_all(s)
        s.close()
        assert reply.startswith(b"HTTP/1.1 200") and b'"ok"' in reply


def test_failed_authentication_is_throttled_counted_and_not_chained(tmp_path):
    self_app, _ = priced_upstream()
    limits = ", auth_failures_per_s: 0.01, auth_failure_burst: 5"
    with upstreams.serving(self_app) as local, \
            gateway(config(local, local, limits), tmp_path) as gw:
        statuses, retry = [], []
        for i in range(30):
            status, headers, _ = http(gw.base, "POST", "/v1/chat/completions",
                                      {"Authorization": f"Bearer x{i}"},
                                      {"model": "chat", "messages": []})
            statuses.append(status)
            retry.append(headers.get("Retry-After"))
        # the address is throttled now: even the right key waits
        status, _, text = http(gw.base, "POST", "/v1/chat/completions",
                               {"Authorization": f"Bearer {KEYS['app']}"},
                               {"model": "chat", "messages": [{"role": "user",
                                                               "content": "hi"}]})
        metrics = http(gw.base, "GET", "/metrics")[2]
        rows = gw.ledger("SELECT status, COUNT(*) FROM ledger GROUP BY status")
    assert statuses[:5] == [401] * 5
    assert set(statuses[5:]) == {429} and all(r is not None and int(r) >= 1
                                               for r in retry[5:])
    assert status == 429 and json.loads(text)["error"]["code"] == "auth_throttled"
    assert dict(rows) == {401: 1}  # one chained row per address per window
    assert 'breakeven_gateway_auth_failures_total{outcome="recorded"} 1' in metrics
    assert 'breakeven_gateway_auth_failures_total{outcome="counted"} 4' in metrics
    assert 'breakeven_gateway_auth_failures_total{outcome="throttled"} 26' in metrics


def test_a_body_over_the_limit_is_recorded_as_413(tmp_path):
    self_app, _ = priced_upstream()
    with upstreams.serving(self_app) as local, gateway(config(local, local), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "x" * 10_000}])
            raise AssertionError("a body over max_body_bytes was accepted")
        except openai.APIStatusError as exc:
            assert exc.status_code == 413
        finally:
            client.close()
        rows = gw.ledger("SELECT status, key_name FROM ledger")
    assert rows == [(413, "app")]


def test_readyz_answers_from_the_cached_probe_and_never_asks_hosted(tmp_path):
    self_app, self_calls = priced_upstream()
    hosted_app, hosted_calls = priced_upstream()
    limits = ", ready_probe_s: 3600, metrics_auth: key"
    with upstreams.serving(self_app) as local, upstreams.serving(hosted_app) as hosted, \
            gateway(config(hosted, local, limits), tmp_path) as gw:
        answers = [http(gw.base, "GET", "/readyz") for _ in range(20)]
        assert http(gw.base, "GET", "/metrics")[0] == 401
        auth = {"Authorization": f"Bearer {KEYS['app']}"}
        assert http(gw.base, "GET", "/metrics", auth)[0] == 200
    status, _, text = answers[-1]
    assert status == 200 and json.loads(text)["backends"] == {"api": True, "local": True}
    assert hosted_calls["models"] == 0
    assert self_calls["models"] == 1  # the background probe, once (every 3600 s)


def test_bodies_being_read_are_a_bounded_pool_of_their_own(tmp_path):
    self_app, _ = priced_upstream()
    limits = ", max_reading: 2, body_timeout_s: 30"
    with upstreams.serving(self_app) as local, \
            gateway(config(local, local, limits), tmp_path) as gw:
        stalled = [_stall(gw.port) for _ in range(2)]
        try:
            for _ in range(100):  # until both stalled bodies are being read
                status, _, text = http(gw.base, "POST", "/v1/chat/completions",
                                       {"Authorization": f"Bearer {KEYS['app']}"},
                                       {"model": "chat", "max_tokens": 2,
                                        "messages": [{"role": "user", "content": "hi"}]})
                if status == 503:
                    break
            assert status == 503 and json.loads(text)["error"]["code"] == "overloaded"
        finally:
            for s in stalled:
                s.close()
