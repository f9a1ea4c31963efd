"""No 500 for odd shapes: the Anthropic translation answers a malformed request field with
a 400 naming it and treats a malformed answer as a protocol error (the next backend is
asked); the cascade judge refuses a ``response_format`` that is not an object and judges an
answer of an odd shape empty."""

from __future__ import annotations

import pytest

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway.anthropic_wire import StreamTranslator, to_anthropic, to_openai
from breakeven.gateway.cascade import judge
from breakeven.gateway.config import Cascade

USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": "hi"}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": {"text": "hi"}}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
     "messages[0].content[0].text"),
    ({"messages": [{"role": "assistant", "tool_calls": {"id": "a"}}]},
     "messages[0].tool_calls"),
    ({"messages": [{"role": "assistant", "tool_calls": ["x"]}]},
     "messages[0].tool_calls[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [
        {"id": "a", "function": {"name": "f", "arguments": 3}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"messages": [USER], "tools": {"type": "function"}}, "tools"),
    ({"messages": [USER], "tools": [{"type": "function", "function": "f"}]},
     "tools[0].function"),
    ({"messages": [USER], "tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"function": {"name": 3}}}, "tool_choice.function.name"),
    ({"messages": [USER], "stop": 3}, "stop"),
    ({"messages": [USER], "stop": ["a", 1]}, "stop"),
    ({"messages": [USER], "max_tokens": "100"}, "max_tokens"),
    ({"messages": [USER], "max_tokens": 1.5}, "max_tokens"),
])
def test_a_malformed_request_field_is_a_400_naming_it(body, param):
    with pytest.raises(ApiError) as err:
        to_anthropic(body, "claude")
    assert err.value.status == 400 and err.value.param == param


def test_tool_call_arguments_given_as_an_object_are_used_as_input():
    out = to_anthropic({"messages": [USER, {"role": "assistant", "tool_calls": [
        {"id": "c1", "function": {"name": "f", "arguments": {"city": "Oslo"}}}]}]}, "claude")
    assert out["messages"][1]["content"][0]["input"] == {"city": "Oslo"}


@pytest.mark.parametrize("resp", [
    {"content": "text"}, {"content": {"type": "text"}},
    {"content": [{"type": "text", "text": 3}]},
])
def test_a_malformed_answer_is_a_protocol_error(resp):
    with pytest.raises(UpstreamError) as err:
        to_openai(resp, "chat")
    assert err.value.kind == "protocol" and err.value.retryable


@pytest.mark.parametrize("usage", [None, "x", [1], {"input_tokens": "many",
                                                    "output_tokens": [2]}])
def test_odd_usage_reads_as_zero(usage):
    out = to_openai({"content": ["junk", {"type": "text", "text": "ok"}], "usage": usage,
                     "stop_reason": ["odd"]}, "chat")
    assert out["choices"][0]["message"]["content"] == "ok"
    assert out["usage"]["prompt_tokens"] == 0 and out["usage"]["completion_tokens"] == 0


def test_odd_stream_events_do_not_break_the_translator():
    t = StreamTranslator("chat", True)
    for event in ({"type": "message_start", "message": "x"},
                  {"type": "content_block_start", "index": [1], "content_block": 3},
                  {"type": "content_block_delta", "index": {}, "delta": "x"},
                  {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 5}},
                  {"type": "message_delta", "usage": "x", "delta": []},
                  {"type": "error", "error": "boom"}):
        assert isinstance(t.feed(event), list)
    assert t.tokens == (0, 0)
    with pytest.raises(UpstreamError):
        t.feed(["not", "an", "event"])


RULE = Cascade(first=("a",), then=("b",))


@pytest.mark.parametrize("fmt", ["json_object", ["json_object"], {"type": 3},
                                 {"type": "json_schema", "json_schema": "s"}])
def test_a_response_format_that_is_not_an_object_is_a_400(fmt):
    answer = {"choices": [{"message": {"content": "{}"}}]}
    with pytest.raises(ApiError) as err:
        judge(answer, {"response_format": fmt}, RULE)
    assert err.value.status == 400 and err.value.param.startswith("response_format")


@pytest.mark.parametrize("answer", [
    {}, {"choices": "x"}, {"choices": []}, {"choices": ["x"]}, {"choices": [{"message": "m"}]},
    {"choices": [{"message": {"content": ["parts"]}}]},
])
def test_an_answer_of_odd_shape_is_judged_empty(answer):
    assert judge(answer, {}, RULE) == "empty answer"


def test_odd_schema_and_logprobs_shapes_are_tolerated():
    fmt = {"type": "json_schema", "json_schema": {"schema": {
        "type": "object", "required": "name", "properties": ["x"]}}}
    answer = {"choices": [{"message": {"content": '{"a": 1}'},
                           "logprobs": {"content": ["x", {"logprob": True}]}}]}
    assert judge(answer, {"response_format": fmt}, RULE) is None
