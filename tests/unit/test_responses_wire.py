"""The Responses API translation, pure: requests checked and turned into chat bodies, chat
answers and chunks turned into Response objects and typed events, a native backend's
Responses read back as chat."""

from __future__ import annotations

import json

import pytest

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import responses_native as native
from breakeven.gateway import responses_wire as wire
from breakeven.gateway.responses_events import Events


def _turn(**body):
    return wire.request({"model": "m", **body})


def test_items_become_chat_messages_in_order():
    turn = _turn(instructions="be brief", input=[
        {"role": "developer", "content": "house rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
        {"type": "message", "role": "assistant", "content": "let me look"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "two"}]},
        {"type": "reasoning", "summary": []}])
    chat = wire.to_chat(turn, [])
    assert chat["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "system", "content": "house rules"},
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "text", "text": "b"}]},  # never glued
        {"role": "assistant", "content": "let me look", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]}]


def test_fields_become_chat_fields():
    turn = _turn(input="x", max_output_tokens=9, temperature=0.5, top_p=0.9,
                 tools=[{"type": "function", "name": "f", "parameters": {"type": "object"}}],
                 tool_choice={"type": "function", "name": "f"},
                 text={"format": {"type": "json_schema", "name": "S", "strict": True,
                                  "schema": {"type": "object"}}})
    chat = wire.to_chat(turn, [])
    assert chat["max_tokens"] == 9 and chat["temperature"] == 0.5 and chat["top_p"] == 0.9
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object"}}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "S", "schema": {"type": "object"}, "strict": True}}
    assert wire.to_chat(_turn(input="x", text={"format": {"type": "json_object"}}), [])[
        "response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("body, param", [
    ({}, "input"),
    ({"model": 3, "input": "x"}, "model"),
    ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": [{"type": "function_call", "call_id": "c"}]}, "input[0].name"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
     "input[0].content[0].type"),
    ({"input": "x", "store": "yes"}, "store"),
    ({"input": "x", "top_p": 2}, "top_p"),
    ({"input": "x", "background": True}, "background"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "name": "s"}}},
     "text.format.schema"),
])
def test_a_malformed_field_names_itself(body, param):
    with pytest.raises(ApiError) as err:
        wire.request({"model": "m", **body})
    assert err.value.status == 400 and err.value.param == param


def test_a_chat_answer_is_a_response():
    turn = _turn(input="x", metadata={"a": "b"}, store=False)
    answer = {"choices": [{"message": {"content": "hi", "tool_calls": [
        {"id": "call_9", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
        "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2,
                  "prompt_tokens_details": {"cached_tokens": 3}}}
    out = wire.response("resp_abc", turn, "alias", 10.0, 11.0, answer)
    assert out["status"] == "completed" and out["model"] == "alias"
    assert out["metadata"] == {"a": "b"} and out["store"] is False
    assert [i["type"] for i in out["output"]] == ["message", "function_call"]
    assert out["output"][1]["call_id"] == "call_9"
    assert out["usage"] == {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 3},
                            "output_tokens": 2, "output_tokens_details": {
                                "reasoning_tokens": 0}, "total_tokens": 7}
    cut = wire.response("resp_abc", turn, "a", 1, 2, {"choices": [
        {"message": {"content": "par"}, "finish_reason": "length"}]})
    assert cut["status"] == "incomplete"
    assert cut["incomplete_details"] == {"reason": "max_output_tokens"}


def _chunk(delta, finish=None):
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_text_then_a_tool_call_streams_as_two_items():
    events = Events(wire.shell("resp_abc", _turn(input="x"), "m", 0))
    out = events.start()
    for chunk in (_chunk({"role": "assistant", "content": ""}), _chunk({"content": "hel"}),
                  _chunk({"content": "lo"}),
                  _chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {
                      "name": "f", "arguments": "{\"a\""}}]}),
                  _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
                  _chunk({}, "tool_calls"),
                  {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}):
        out += events.feed(chunk)
    out += events.closing()
    final = events.response(5.0)
    out += events.end(final)
    frames = events.emit(out).decode().split("\n\n")[:-1]
    assert [f.split("\n")[0] for f in frames] == [f"event: {e['type']}" for e in out]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert [e["type"] for e in out] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    assert out[0]["response"]["output"] == [] and out[0]["response"]["status"] == "in_progress"
    assert out[6]["text"] == "hello" and out[12]["arguments"] == "{\"a\":1}"
    assert {e["output_index"] for e in out[2:9]} == {0} and out[9]["output_index"] == 1
    assert final["usage"]["input_tokens"] == 4 and final["usage"]["output_tokens"] == 6
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    assert all(i["status"] == "completed" for i in final["output"])


def test_a_native_backend_gets_the_whole_conversation_unstored():
    chat = {"messages": [{"role": "system", "content": "rules"},
                         {"role": "user", "content": "q"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
                         {"role": "tool", "tool_call_id": "c1", "content": "r"}],
            "max_tokens": 7, "response_format": {"type": "json_schema", "json_schema": {
                "name": "S", "schema": {}}}}
    body = native.request(chat, "gpt-up", True)
    assert body["store"] is False and body["stream"] is True and body["model"] == "gpt-up"
    assert body["instructions"] == "rules" and body["max_output_tokens"] == 7
    assert [i["type"] for i in body["input"]] == ["message", "function_call",
                                                  "function_call_output"]
    assert body["text"] == {"format": {"type": "json_schema", "name": "S", "schema": {}}}


def test_a_native_stream_reads_back_as_chat_chunks():
    reader = native.EventChunks("alias", "up")
    chunks = []
    for event in ({"type": "response.created", "response": {}},
                  {"type": "response.output_text.delta", "delta": "hi"},
                  {"type": "response.output_item.added", "output_index": 1, "item": {
                      "type": "function_call", "call_id": "c", "name": "f"}},
                  {"type": "response.function_call_arguments.delta", "output_index": 1,
                   "delta": "{}"},
                  {"type": "response.completed", "response": {"usage": {
                      "input_tokens": 3, "output_tokens": 2}}}):
        chunks += reader.feed(event)
    assert reader.done
    assert chunks[0]["choices"][0]["delta"] == {"content": "hi"}
    assert chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2,
                                   "total_tokens": 5}
    with pytest.raises(UpstreamError):
        native.EventChunks("a", "up").feed({"type": "response.failed", "response": {
            "error": {"message": "boom"}}})
    with pytest.raises(UpstreamError):
        native.answer({"output": "nope"}, "a", "up")
    answer = native.answer({"status": "incomplete", "output": [{"type": "message", "content": [
        {"type": "output_text", "text": "pa"}]}]}, "a", "up")
    assert answer["choices"][0]["finish_reason"] == "length"
    assert json.dumps(answer)  # plain JSON, as the chat path expects


def _cfg(**extra):
    from breakeven.gateway.config import GatewayConfig

    return GatewayConfig.model_validate({
        "backends": [{"name": "claude", "kind": "anthropic", "url": "http://x/v1",
                      "model": "c", "hosting": "hosted",
                      "price": {"input_per_mtok": 1, "output_per_mtok": 1}, **extra}],
        "routes": [{"alias": "chat", "backends": ["claude"]}]})


def test_the_config_refuses_what_cannot_work_before_the_start():
    from breakeven.gateway.boundary import boundary

    assert not any("serves_responses" in p for p in boundary(_cfg(), {}).problems)
    assert any("serves_responses is for OpenAI-wire backends" in p
               for p in boundary(_cfg(serves_responses=True), {}).problems)
    cfg = _cfg().model_copy(update={"responses": _cfg().responses.model_copy(
        update={"never_store": ("secret", "sekret")})})
    assert any("unknown data class 'sekret'" in p for p in boundary(cfg, {}).problems)
    assert cfg.responses.storable("pii") and not cfg.responses.storable("pii+secret")
