"""The Messages API on the gateway, pure parts: the body check, the translation to and from
chat completions, the stream of events built from chat chunks, the error shape, the
restoring of placeholders in events, and the keys a request may present."""

from __future__ import annotations

import json

import pytest

from breakeven.errors import ApiError
from breakeven.gateway import error_shapes, messages_body, messages_wire, pseudonym
from breakeven.gateway.auth import presented
from breakeven.gateway.stream_wire import ChatWire, MessagesWire

BASE = {"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def _with(**fields):
    return {**BASE, **fields}


# every field, malformed: (body, the param the 400 must name)
MALFORMED = [
    ({"model": "m", "messages": BASE["messages"]}, "max_tokens"),
    (_with(max_tokens=-1), "max_tokens"),
    (_with(max_tokens="16"), "max_tokens"),
    (_with(max_tokens=True), "max_tokens"),
    (_with(messages="hi"), "messages"),
    (_with(messages=[]), "messages"),
    (_with(messages=["hi"]), "messages[0]"),
    (_with(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    (_with(messages=[{"role": "user"}]), "messages[0].content"),
    (_with(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (_with(messages=[{"role": "user", "content": [5]}]), "messages[0].content[0]"),
    (_with(messages=[{"role": "user", "content": [{"text": "x"}]}]), "messages[0].content[0]"),
    (_with(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}]),
     "messages[0].content[0].text"),
    (_with(messages=[{"role": "user", "content": [{"type": "image", "source": "x"}]}]),
     "messages[0].content[0].source"),
    (_with(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}]),
     "messages[0].content[0].input"),
    (_with(messages=[{"role": "assistant", "content": [
        {"type": "tool_use", "id": 1, "name": "f", "input": {}}]}]),
     "messages[0].content[0].id"),
    (_with(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": 7}]}]),
     "messages[0].content[0].content"),
    (_with(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}]}]),
     "messages[0].content[0].content[0].text"),
    (_with(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "is_error": "no"}]}]),
     "messages[0].content[0].is_error"),
    (_with(system=5), "system"),
    (_with(system=[{"type": "image"}]), "system[0]"),
    (_with(tools={"name": "f"}), "tools"),
    (_with(tools=[{"description": "d", "input_schema": {}}]), "tools[0].name"),
    (_with(tools=[{"name": "f", "input_schema": "object"}]), "tools[0].input_schema"),
    (_with(tool_choice="auto"), "tool_choice"),
    (_with(tool_choice={"type": "tool"}), "tool_choice.name"),
    (_with(tool_choice={"type": "auto", "disable_parallel_tool_use": 1}),
     "tool_choice.disable_parallel_tool_use"),
    (_with(stop_sequences="END"), "stop_sequences"),
    (_with(stop_sequences=[""]), "stop_sequences"),
    (_with(metadata=[]), "metadata"),
    (_with(metadata={"user_id": 5}), "metadata.user_id"),
    (_with(temperature=3), "temperature"),
    (_with(temperature="hot"), "temperature"),
    (_with(top_p=-1), "top_p"),
    (_with(top_k=1.5), "top_k"),
    (_with(stream="yes"), "stream"),
    (_with(thinking=True), "thinking"),
    (_with(n=2), "n"),
    (_with(inference_geo="us"), "inference_geo"),  # residency is the gateway's
    (_with(output_config=[]), "output_config"),
    (_with(output_config={"format": {"type": "json_schema"}}), "output_config.format"),
    (_with(output_config={"effort": 3}), "output_config.effort"),
]


@pytest.mark.parametrize(("body", "param"), MALFORMED)
def test_a_malformed_field_is_a_400_naming_it(body, param):
    with pytest.raises(ApiError) as err:
        messages_body.check(body)
    assert err.value.status == 400 and err.value.param == param
    assert err.value.message.startswith(param)


def test_a_well_formed_body_passes_and_count_tokens_needs_no_max_tokens():
    messages_body.check(_with(system=[{"type": "text", "text": "s"}], stop_sequences=["X"],
                              tools=[{"name": "f", "input_schema": {"type": "object"}}],
                              tool_choice={"type": "any"}, metadata={"user_id": "u"},
                              temperature=0.5, top_p=0.9, top_k=40, stream=True))
    messages_body.check({"model": "m", "messages": BASE["messages"]}, count=True)
    with pytest.raises(ApiError) as err:
        messages_body.check({**BASE}, count=True)  # count_tokens takes no max_tokens
    assert err.value.param == "max_tokens"


def test_to_chat_translates_every_field():
    body = _with(
        system=[{"type": "text", "text": "be brief"}, {"type": "text", "text": " always"}],
        messages=[
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "AAA"}}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "text", "text": "42"}]},
                {"type": "text", "text": "and?"}]}],
        tools=[{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        stop_sequences=["END"], temperature=0.2, top_p=0.5, top_k=3,
        metadata={"user_id": "u-1"})
    chat = messages_wire.to_chat(body, "llama")
    assert chat["model"] == "llama" and chat["max_tokens"] == 16
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]  # tool result first
    assert chat["messages"][0]["content"] == "be brief always"
    assert chat["messages"][1]["content"][1] == {
        "type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}
    call = chat["messages"][2]["tool_calls"][0]
    assert call["id"] == "toolu_1" and json.loads(call["function"]["arguments"]) == {"a": 1}
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "42"}
    assert chat["tools"] == [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object"}, "description": "d"}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["parallel_tool_calls"] is False
    assert (chat["stop"], chat["temperature"], chat["top_p"], chat["top_k"], chat["user"]) \
        == (["END"], 0.2, 0.5, 3, "u-1")


@pytest.mark.parametrize(("choice", "chat"), [("auto", "auto"), ("any", "required"),
                                              ("none", "none")])
def test_tool_choice_kinds(choice, chat):
    body = _with(tools=[{"name": "f", "input_schema": {}}], tool_choice={"type": choice})
    assert messages_wire.to_chat(body, "m")["tool_choice"] == chat


@pytest.mark.parametrize(("body", "param"), [
    (_with(messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "data": "x"}}]}]),
     "messages[0].content[0]"),
    (_with(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0]"),
    (_with(container="c1"), "container"),
    (_with(messages=[{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]}]}]),
     "messages[0].content[0].content[1]"),
    (_with(max_tokens=0), "max_tokens"),  # Anthropic's cache warming
])
def test_what_chat_cannot_carry_is_refused_not_dropped(body, param):
    messages_body.check(body)
    with pytest.raises(ApiError) as err:
        messages_wire.to_chat(body, "m")
    assert err.value.status == 400 and err.value.param == param


def _answer(finish, **message):
    return {"id": "c1", "choices": [{"index": 0, "finish_reason": finish,
                                     "message": {"role": "assistant", **message}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4}}


def test_from_chat_text_tools_stop_reasons_and_usage():
    out = messages_wire.from_chat(_answer("stop", content="hello"), "alias")
    assert out["type"] == "message" and out["model"] == "alias" and out["id"] == "msg_c1"
    assert out["content"] == [{"type": "text", "text": "hello"}]
    assert out["stop_reason"] == "end_turn" and out["stop_sequence"] is None
    assert out["usage"]["input_tokens"] == 9 and out["usage"]["output_tokens"] == 4
    tool = messages_wire.from_chat(_answer("tool_calls", content=None, tool_calls=[
        {"id": "call_1", "type": "function",
         "function": {"name": "f", "arguments": '{"city": "Paris"}'}}]), "a")
    assert tool["content"] == [{"type": "tool_use", "id": "call_1", "name": "f",
                                "input": {"city": "Paris"}}]
    assert tool["stop_reason"] == "tool_use"
    assert messages_wire.from_chat(_answer("length", content="x"), "a")["stop_reason"] == \
        "max_tokens"
    met = _answer("stop", content="x")
    met["choices"][0]["stop_reason"] = "END"  # vLLM names the stop string it met
    out = messages_wire.from_chat(met, "a")
    assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")


def _chunk(delta=None, finish=None, usage=None):
    out = {"id": "c9", "choices": [{"index": 0, "delta": delta or {},
                                    "finish_reason": finish}]}
    if usage is not None:
        out["usage"] = usage
    return out


def _run(chunks):
    events = messages_wire.ChatEvents("alias")
    out = [e for c in chunks for e in events.feed(c)]
    return out + events.end()


def test_a_text_then_two_tool_calls_stream_with_anthropics_indices():
    u = {"prompt_tokens": 12, "completion_tokens": 0}
    events = _run([
        _chunk({"role": "assistant", "content": ""}, usage=u),
        _chunk({"content": "Hel"}, usage=u), _chunk({"content": "lo"}, usage=u),
        _chunk({"tool_calls": [{"index": 0, "id": "a", "function": {
            "name": "f", "arguments": '{"x"'}}]}, usage=u),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, usage=u),
        _chunk({"tool_calls": [{"index": 1, "id": "b", "function": {
            "name": "g", "arguments": "{}"}}]}, usage=u),
        _chunk(finish="tool_calls", usage={"prompt_tokens": 12, "completion_tokens": 7})])
    kinds = [(e["type"], e.get("index")) for e in events]
    assert kinds == [
        ("message_start", None), ("ping", None),
        ("content_block_start", 0), ("content_block_delta", 0), ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2), ("content_block_delta", 2), ("content_block_stop", 2),
        ("message_delta", None), ("message_stop", None)]
    assert events[0]["message"]["usage"]["input_tokens"] == 12
    assert events[0]["message"]["id"] == "msg_c9"
    assert events[6]["content_block"] == {"type": "tool_use", "id": "a", "name": "f",
                                          "input": {}}
    assert "".join(e["delta"]["partial_json"] for e in events[7:9]) == '{"x": 1}'
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {"input_tokens": 12, "output_tokens": 7}


def test_message_start_waits_for_the_prompt_count_when_usage_comes_last():
    events = messages_wire.ChatEvents("alias")
    assert events.feed(_chunk({"content": "a"})) == []  # no count yet: held
    assert events.feed(_chunk(finish="stop")) == []
    held = events.feed({"id": "c9", "choices": [], "usage": {"prompt_tokens": 5,
                                                             "completion_tokens": 1}})
    out = held + events.end()
    assert out[0]["type"] == "message_start"
    assert out[0]["message"]["usage"]["input_tokens"] == 5
    assert [e["type"] for e in out[1:]] == ["ping", "content_block_start",
                                            "content_block_delta", "content_block_stop",
                                            "message_delta", "message_stop"]


def test_error_shapes_per_status():
    def kind(status, **kw):
        return error_shapes.anthropic(ApiError(status, "m", **kw))["error"]["type"]

    assert [kind(s) for s in (400, 401, 403, 404, 413, 429, 500, 502, 504)] == [
        "invalid_request_error", "authentication_error", "permission_error",
        "not_found_error", "request_too_large", "rate_limit_error", "api_error",
        "api_error", "timeout_error"]
    assert kind(503, code="overloaded") == "overloaded_error"
    assert kind(422) == "invalid_request_error"
    body = error_shapes.anthropic(ApiError(400, "bad"), "req1")
    assert body == {"type": "error", "error": {"type": "invalid_request_error",
                                               "message": "bad"}, "request_id": "req1"}
    assert error_shapes.anthropic_style("/v1/messages/count_tokens")
    assert not error_shapes.anthropic_style("/v1/messagesx")


def test_the_wires_bytes():
    wire = MessagesWire()
    assert wire.encode({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'
    assert wire.done == b"" and wire.tail({"type": "message_stop"})
    assert wire.error(ApiError(502, "broke")).startswith(b"event: error\ndata: ")
    assert not wire.generated({"type": "content_block_start",
                               "content_block": {"type": "text", "text": ""}})
    chat = ChatWire(include_usage=False)
    assert chat.events({"choices": [], "usage": {}}) == [] and chat.done == b"data: [DONE]\n\n"


def test_a_placeholder_split_over_events_is_restored_before_the_block_stops():
    restore = pseudonym.EventRestorer({"[EMAIL_1]": "jane@example.com"}).event

    def delta(text):
        return {"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}}

    out = [*restore(delta("mail [EMA")), *restore(delta("IL_1] now [EM")),
           *restore({"type": "content_block_stop", "index": 0})]
    text = "".join(e["delta"]["text"] for e in out if e["type"] == "content_block_delta")
    assert text == "mail jane@example.com now [EM"
    assert out[-1]["type"] == "content_block_stop"


@pytest.mark.parametrize(("headers", "key"), [
    ({"Authorization": "Bearer k1"}, "k1"), ({"x-api-key": "k2"}, "k2"),
    ({"api-key": " k3 "}, "k3"), ({"Authorization": "Basic zz", "x-api-key": "k4"}, "k4"),
    ({"Authorization": "Bearer k5", "x-api-key": "other"}, "k5"), ({}, "")])
def test_the_key_a_request_presents(headers, key):
    assert presented(headers) == key


def test_prepare_puts_system_first_as_the_model_reads_it():
    body = {**BASE, "system": "s"}
    assert list(messages_body.prepare(body)) == ["system", "model", "max_tokens", "messages"]
    assert messages_body.prepare(BASE) is BASE


def test_structured_output_becomes_a_json_schema_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = _with(output_config={"format": {"type": "json_schema", "schema": schema},
                                "effort": "low"}, speed="fast", cache_control={
        "type": "ephemeral"})
    messages_body.check(body)
    chat = messages_wire.to_chat(body, "m")
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "output", "schema": schema}}
    assert not {"output_config", "speed", "cache_control"} & set(chat)  # hints only


@pytest.mark.parametrize("odd", [{"tool_calls": 7}, {"tool_calls": "x"}, {"content": 5},
                                 {"tool_calls": [None, 3]}])
def test_an_odd_answer_or_chunk_from_an_engine_does_not_crash(odd):
    out = messages_wire.from_chat({"choices": [{"message": odd, "finish_reason": "stop"}],
                                   "usage": "n/a"}, "a")
    assert out["type"] == "message" and out["usage"]["input_tokens"] == 0
    events = _run([{"choices": [{"delta": odd, "finish_reason": "stop"}]}])
    assert events[-1] == {"type": "message_stop"}


def test_an_engines_reasoning_becomes_thinking_blocks():
    body = _with(thinking={"type": "enabled", "budget_tokens": 1024},
                 context_management={"edits": []})
    messages_body.check(body)
    assert not {"thinking", "context_management"} & set(messages_wire.to_chat(body, "m"))
    answer = _answer("stop", content="42", reasoning_content="six times seven")
    out = messages_wire.from_chat(answer, "a")
    assert out["content"] == [{"type": "thinking", "thinking": "six times seven",
                               "signature": ""}, {"type": "text", "text": "42"}]
    u = {"prompt_tokens": 3, "completion_tokens": 1}
    events = _run([_chunk({"reasoning_content": "six "}, usage=u),
                   _chunk({"reasoning": "times seven"}, usage=u),
                   _chunk({"content": "42"}, usage=u), _chunk(finish="stop", usage=u)])
    kinds = [(e["type"], e.get("index"), (e.get("delta") or {}).get("type")) for e in events]
    assert kinds[2:9] == [
        ("content_block_start", 0, None), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"), ("content_block_stop", 0, None),
        ("content_block_start", 1, None), ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None)]
    assert events[2]["content_block"]["type"] == "thinking"


def test_only_a_well_formed_anthropic_beta_is_passed_and_only_to_anthropic_backends():
    from breakeven.gateway.upstream import KINDS

    assert messages_body.betas({}) == {}
    assert messages_body.betas({"anthropic-beta": "a-1, b.2"}) == {"anthropic-beta": "a-1, b.2"}
    for bad in ("a b", "x\r\ny", "a;b", "," * 3):
        with pytest.raises(ApiError) as err:
            messages_body.betas({"anthropic-beta": bad})
        assert err.value.param == "anthropic-beta"
    forward = {"anthropic-beta": "a"}
    assert KINDS["anthropic"].forwarded("messages", forward) == forward
    assert KINDS["anthropic"].forwarded("chat/completions", forward) == {}
    assert KINDS["openai"].forwarded("messages", forward) == {}
