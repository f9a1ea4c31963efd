"""What an upstream's refusal means, without a server: a 401/403/404 is the gateway's own
config (retried elsewhere, the backend unready), a 400/422 the caller's (relayed with its
param and code, not retried); what an Anthropic backend cannot honour; the policy skipping
an unready backend."""

from __future__ import annotations

import pytest

from breakeven.errors import UpstreamError
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.dispatch import relayed
from breakeven.gateway.policy import BackendState, choose
from breakeven.gateway.upstream.anthropic import AnthropicUpstream
from breakeven.gateway.upstream.base import _said
from breakeven.gateway.upstream.openai import OpenAIUpstream

GPU = {"gpu": "a10g", "usd_per_gpu_hour": 1, "capacity_tokens_per_s": 1}


@pytest.mark.parametrize(("status", "misconfigured", "retryable"), [
    (401, True, True), (403, True, True), (404, True, True), (400, False, False),
    (422, False, False), (413, False, False), (429, False, True), (503, False, True)])
def test_what_a_status_means(status, misconfigured, retryable):
    exc = UpstreamError("http", "b answered", status)
    assert (exc.misconfigured, exc.retryable) == (misconfigured, retryable)


def test_a_timeout_is_not_a_config_fault():
    assert not UpstreamError("timeout", "slow").misconfigured


def test_a_caller_error_is_relayed_as_the_upstream_gave_it():
    said = {"message": "too long", "type": "invalid_request_error", "param": "messages",
            "code": "context_length_exceeded"}
    err = relayed(UpstreamError("http", "b answered 400: too long", 400, said=said))
    assert err.status == 400 and err.body() == {"error": said}
    bare = relayed(UpstreamError("http", "b answered 400: <html>", 400))
    assert bare.message == "b answered 400: <html>" and bare.param is None


def test_error_bodies_of_each_wire_are_read():
    from breakeven.gateway.config import Backend

    b = Backend(name="b", url="http://127.0.0.1:9/v1", model="m", hosting="self", gpu=GPU)
    openai_body = b'{"error": {"message": "bad", "type": "t", "param": "n", "code": "c"}}'
    assert _said(b, openai_body) == {"message": "bad", "type": "t", "param": "n", "code": "c"}
    anthropic_body = b'{"type": "error", "error": {"type": "not_found_error", "message": "m"}}'
    assert _said(b, anthropic_body) == {"type": "not_found_error", "message": "m"}
    vllm_old = b'{"object": "error", "message": "x", "type": "BadRequestError", "code": 400}'
    assert _said(b, vllm_old) == {"message": "x", "type": "BadRequestError", "code": "400"}
    tgi = b'{"error": "Input validation error: `temperature` must be positive", ' \
          b'"error_type": "validation"}'
    assert _said(b, tgi) == {"message": "Input validation error: `temperature` must be "
                                        "positive", "type": "validation"}
    assert _said(b, b'{"error": "model \'x\' not found"}') == {"message": "model 'x' not found"}
    assert _said(b, b"<html>") == {} and _said(b, b"[1]") == {}
    leaked = b'{"error": {"message": "Incorrect API key provided: sk-abcdef123456"}}'
    assert "sk-abcdef" not in _said(b, leaked)["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"top_logprobs": 3}, "top_logprobs"),
    ({"n": "2"}, "n"), ({"n": 0}, "n"), ({"n": True}, "n"), ({"logprobs": "yes"}, "logprobs"),
    ({"top_logprobs": False}, "top_logprobs"), ({"n": 1}, None), ({"n": None}, None),
    ({"logprobs": False, "top_logprobs": 0}, None), ({"logprobs": None}, None), ({}, None)])
def test_what_an_anthropic_backend_cannot_honour(body, field):
    lacks = AnthropicUpstream().cannot(body)
    assert (lacks[0] if lacks else None) == field
    assert OpenAIUpstream().cannot(body) is None


def test_an_unready_backend_is_skipped_with_why():
    cfg = GatewayConfig.model_validate({
        "backends": [{"name": n, "url": "http://a/v1", "model": "x", "hosting": "self",
                      "gpu": GPU} for n in ("a", "b")],
        "routes": [{"alias": "r", "backends": ["a", "b"]}]})
    states = {"a": BackendState(unready="a answered 401: bad key"), "b": BackendState()}
    choice = choose(cfg, cfg.routes[0], "general", (), states, 0.0)
    assert choice.candidates == ("b",)
    assert choice.skipped == (("a", "unready",
                               "unready until a probe succeeds: a answered 401: bad key"),)


def _probe(status, listed=None):
    from breakeven.gateway.probe import Probe

    return Probe(at=0.0, up=status < 500, latency_ms=1.0, status=status, listed=listed)


def test_what_a_probe_decides():
    from breakeven.gateway.config import Backend
    from breakeven.gateway.probe import _judge

    b = Backend(name="b", url="http://127.0.0.1:9/v1", model="m", hosting="self", gpu=GPU)
    state = BackendState()
    assert _judge(b, state, _probe(401)).status == 401 and "401" in state.unready
    _judge(b, state, _probe(503))  # not a 200: still unready
    assert state.unready is not None
    _judge(b, state, _probe(200, ("other",)))  # a key fault: any 200 clears it
    assert state.unready is None
    state.unready = "b answered 404: no such model"
    seen = _judge(b, state, _probe(200, ("other",)))
    assert state.unready is not None and "'m' is not among the 1" in seen.error
    assert seen.json()["outcome"] == "error"
    assert _judge(b, state, _probe(200, ("other", "m"))).json()["outcome"] == "ok"
    assert state.unready is None
    state.unready = "b answered 404: no such path"
    _judge(b, state, _probe(200))  # lists nothing to check against: right again
    assert state.unready is None
