"""``stream_wire.ResponsesWire``, pure: the wire the one relay writes a streamed
``/v1/responses`` in. Chat chunks in, typed events out, numbered in the order they are
encoded; the end built and the Response kept in ``settle``, sent by ``last``; a failure
told as ``response.failed``."""

from __future__ import annotations

import asyncio
import json

from breakeven.errors import ApiError
from breakeven.gateway import responses_wire as wire
from breakeven.gateway.stream_wire import ResponsesWire


def _chunk(delta, finish=None):
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _wire(kept):
    async def keep(final):
        kept.append(final)

    shell = wire.shell("resp_1", wire.request({"model": "m", "input": "hi"}), "m", 1.0)
    return ResponsesWire(shell, keep)


def _frames(data: bytes):
    return [json.loads(f.split("\n", 1)[1].removeprefix("data: "))
            for f in data.decode().split("\n\n")[:-1]]


def test_events_start_with_the_first_item_and_are_numbered_as_encoded():
    kept: list = []
    w = _wire(kept)
    w.begin()
    role = _chunk({"role": "assistant", "content": ""})
    assert not w.generated(role) and w.events(role) == []  # nothing to show yet
    text = _chunk({"content": "hel"})
    assert w.generated(text) and not w.generated(_chunk({"reasoning_content": "hm"}))
    out = b"".join(w.encode(e) for e in w.events(text) + w.events(_chunk({"content": "lo"})))
    assert w.events(_chunk({}, "stop")) == []  # the finish is kept for the end
    assert w.events({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}) \
        == []
    assert not w.tail({"type": "response.output_text.delta"}) and w.end(2, 3) == []
    asyncio.run(w.settle())
    assert len(kept) == 1 and kept[0]["status"] == "completed"
    assert kept[0]["usage"]["output_tokens"] == 3 and kept[0]["output"][0]["status"] == \
        "completed"  # the items closed before the Response was kept
    events = _frames(out + w.last())
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"] == kept[0]


def test_a_replaced_attempt_is_forgotten_and_an_empty_answer_still_starts():
    kept: list = []
    w = _wire(kept)
    w.begin()
    w.events(_chunk({"content": "from the failed backend"}))
    w.begin()  # the next attempt: the caller saw nothing of the last one
    asyncio.run(w.settle())
    events = _frames(w.last())
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.completed"]
    assert [e["sequence_number"] for e in events] == [0, 1, 2]
    assert kept[0]["output"] == []


def test_a_failure_is_response_failed_with_the_next_number():
    w = _wire([])
    w.begin()
    sent = _frames(b"".join(w.encode(e) for e in w.events(_chunk({"content": "a"}))))
    failed = _frames(w.error(ApiError(502, "upstream stream broke: reset")))
    assert [e["type"] for e in failed] == ["response.failed"]
    assert failed[0]["sequence_number"] == len(sent)
    assert failed[0]["response"]["error"]["message"] == "upstream stream broke: reset"
    assert failed[0]["response"]["status"] == "failed"
    fresh = _wire([])  # failed before any event: created and in_progress come first
    fresh.begin()
    assert [e["type"] for e in _frames(fresh.error(ApiError(503, "store down")))] == [
        "response.created", "response.in_progress", "response.failed"]
