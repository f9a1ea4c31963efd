"""Chat completion chunks -> the Responses API's typed stream events. Pure.

The order is the one OpenAI sends and openai-python's ``ResponseStream`` accumulates
(``lib/streaming/responses/_responses.py``; event types in ``types/responses/``):
``response.created``, ``response.in_progress``; per text answer
``response.output_item.added`` (a ``message``), ``response.content_part.added``,
``response.output_text.delta`` ..., ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``; per tool call
``response.output_item.added`` (a ``function_call``),
``response.function_call_arguments.delta`` ..., ``.done``, ``response.output_item.done``;
then ``response.completed`` (or ``response.incomplete`` when the output was cut at
``max_output_tokens``) carrying the whole Response with its usage. Every event has a
``sequence_number``, counted from 0 as the events go out (``emit``). A failure after the
stream began is ``response.failed``. Each event goes out as ``event: TYPE`` plus
``data: JSON``.
"""

from __future__ import annotations

from typing import Any

import orjson

from breakeven.gateway import responses_wire as wire

__all__ = ["Events", "frame"]


def frame(event: dict[str, Any]) -> bytes:
    """One server-sent event, named by its type."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class Events:
    """The events of one streamed Response, fed chat chunks in order."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.base = base  # wire.shell(): the Response before its output
        self.seq = 0  # numbered as they go out (``emit``): a replaced attempt sent nothing
        self.output: list[dict[str, Any]] = []
        self._text: dict[str, Any] | None = None  # the open message item
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> open item
        self._open_call: dict[str, Any] | None = None
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None

    @staticmethod
    def _event(kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, **fields}

    def emit(self, events: list[dict[str, Any]]) -> bytes:
        """The events as server-sent events, each given the next ``sequence_number``."""
        out = []
        for event in events:
            event["sequence_number"] = self.seq
            self.seq += 1
            out.append(frame(event))
        return b"".join(out)

    def _snapshot(self) -> dict[str, Any]:
        # shallow: an event is serialised before the next chunk changes anything, and a
        # change replaces an item's key (status, content, arguments), never edits inside
        return {**self.base, "output": [dict(i) for i in self.output]}

    def start(self) -> list[dict[str, Any]]:
        """created and in_progress: the Response with no output yet (they go out just
        before the first item's events, which the first chunk may have made already)."""
        return [self._event("response.created", response={**self.base, "output": []}),
                self._event("response.in_progress", response={**self.base, "output": []})]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chunk stands for (its finish is kept for ``end``)."""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not choices:
            return []
        choice = choices[0]
        delta = choice.get("delta") or {}
        events: list[dict[str, Any]] = []
        text = delta.get("content")
        if isinstance(text, str) and text:
            events += self._text_delta(text)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and isinstance(call.get("index", 0), int):
                events += self._call_delta(call)
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
        return events

    def _text_delta(self, text: str) -> list[dict[str, Any]]:
        events = self._close_call()
        if self._text is None:
            rid = self.base["id"]
            item = {"id": f"msg_{rid[5:]}_{len(self.output)}", "type": "message",
                    "status": "in_progress", "role": "assistant", "content": []}
            self._text = {"item": item, "index": len(self.output), "text": []}
            self.output.append(item)
            events.append(self._event("response.output_item.added",
                                      output_index=self._text["index"],
                                      item=dict(item)))
            events.append(self._event("response.content_part.added", item_id=item["id"],
                                      output_index=self._text["index"], content_index=0,
                                      part=_part("")))
        self._text["text"].append(text)
        events.append(self._event("response.output_text.delta",
                                  item_id=self._text["item"]["id"],
                                  output_index=self._text["index"], content_index=0,
                                  delta=text, logprobs=[]))
        return events

    def _close_text(self) -> list[dict[str, Any]]:
        if self._text is None:
            return []
        t, self._text = self._text, None
        item, index, text = t["item"], t["index"], "".join(t["text"])
        item["content"] = [_part(text)]
        item["status"] = "completed"
        return [self._event("response.output_text.done", item_id=item["id"],
                            output_index=index, content_index=0, text=text, logprobs=[]),
                self._event("response.content_part.done", item_id=item["id"],
                            output_index=index, content_index=0, part=_part(text)),
                self._event("response.output_item.done", output_index=index,
                            item=dict(item))]

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        index = call.get("index", 0)
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        events: list[dict[str, Any]] = []
        item = self._calls.get(index)
        if item is None:
            events += self._close_text() + self._close_call()
            rid = self.base["id"]
            item = {"id": f"fc_{rid[5:]}_{len(self.output)}", "type": "function_call",
                    "status": "in_progress", "arguments": "",
                    "call_id": call.get("id") or f"call_{index}", "name": fn.get("name") or ""}
            self._calls[index] = item
            self._open_call = {"item": item, "index": len(self.output)}
            self.output.append(item)
            events.append(self._event("response.output_item.added",
                                      output_index=len(self.output) - 1,
                                      item=dict(item)))
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            item["arguments"] += args
            assert self._open_call is not None
            events.append(self._event("response.function_call_arguments.delta",
                                      item_id=item["id"], output_index=self._open_call["index"],
                                      delta=args))
        return events

    def _close_call(self) -> list[dict[str, Any]]:
        if self._open_call is None:
            return []
        c, self._open_call = self._open_call, None
        item, index = c["item"], c["index"]
        item["status"] = "completed"
        return [self._event("response.function_call_arguments.done", item_id=item["id"],
                            output_index=index, arguments=item["arguments"]),
                self._event("response.output_item.done", output_index=index,
                            item=dict(item))]

    def closing(self) -> list[dict[str, Any]]:
        """The items' done events: sent once the record is committed, with ``end``."""
        return self._close_text() + self._close_call()

    def response(self, done: float) -> dict[str, Any]:
        """The finished Response (status, usage, output)."""
        return wire.finished(self._snapshot(), self.finish, done, self.usage)

    def end(self, final: dict[str, Any]) -> list[dict[str, Any]]:
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return [self._event(kind, response=final)]

    def failed(self, message: str) -> list[dict[str, Any]]:
        """``response.failed``: the stream broke after it began."""
        out = self._snapshot()
        out.update(status="failed", error={"code": "server_error", "message": message})
        return [self._event("response.failed", response=out)]


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
