"""What an upstream sends is not trusted: odd usage counts as nothing, odd choices are a
protocol error (the next backend is asked), never a 500 for the caller."""

from __future__ import annotations

import pytest

from breakeven.errors import UpstreamError
from breakeven.gateway.config import Backend
from breakeven.gateway.upstream.base import Answer, tokens
from breakeven.gateway.upstream.openai import OpenAIUpstream

B = Backend(name="b", url="http://127.0.0.1:9/v1", model="m", hosting="self",
            gpu={"gpu": "a10g", "usd_per_gpu_hour": 1, "capacity_tokens_per_s": 1})


@pytest.mark.parametrize("usage", [None, "12", [], {"prompt_tokens": "7"},
                                   {"prompt_tokens": True, "completion_tokens": -3},
                                   {"prompt_tokens": 1.5}, {"completion_tokens": [1]}])
def test_odd_usage_counts_as_no_tokens(usage):
    assert tokens(usage) == (0, 0)
    assert (Answer({"choices": [], "usage": usage}).tokens_in, 0) == (0, 0)


def test_usage_that_is_right_is_read():
    assert tokens({"prompt_tokens": 12, "completion_tokens": 3}) == (12, 3)


@pytest.mark.parametrize("choices", [{"0": {}}, [1], ["text"], [{"message": "hi"}],
                                     [{"delta": [1]}]])
def test_odd_choices_are_a_protocol_error(choices):
    api = OpenAIUpstream()
    with pytest.raises(UpstreamError) as err:
        api.answer(B, "chat/completions", {"choices": choices}, "alias")
    assert err.value.kind == "protocol" and err.value.retryable
    with pytest.raises(UpstreamError):
        api.decoder(B, "alias").feed({"choices": choices})


def test_well_formed_choices_pass():
    api = OpenAIUpstream()
    answer = api.answer(B, "chat/completions", {"choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}}]}, "alias")
    assert answer["model"] == "alias"
    assert api.decoder(B, "alias").feed({"choices": [{"delta": {"content": "x"}}]})


_KEY = "sk-live-SECRET123456789"


@pytest.mark.parametrize(("endpoint", "event"), [
    ("chat/completions", {"error": {"message": f"bad key {_KEY}"}}),
    ("chat/completions", {"error": f"bad key {_KEY}"}),
    ("responses", {"error": {"message": f"bad key {_KEY}"}}),
    ("responses", {"type": "error", "message": f"bad key {_KEY}"}),
    ("responses", {"type": "response.failed", "response": {"error": {
        "message": f"bad key {_KEY}"}}}),
])
def test_an_error_inside_a_stream_never_carries_the_backends_key(monkeypatch, endpoint, event):
    monkeypatch.setenv("UP_KEY", _KEY)
    b = B.model_copy(update={"api_key_env": "UP_KEY", "serves_responses": True})
    decoder = OpenAIUpstream().decoder(b, "alias", endpoint)
    with pytest.raises(UpstreamError) as raised:
        decoder.feed(dict(event))
    assert "SECRET" not in str(raised.value)
