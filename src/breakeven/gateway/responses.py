"""``/v1/responses``: OpenAI's Responses API on the gateway's one pipeline.

``POST /v1/responses`` checks the request (``responses_wire.request``), continues the
conversation of ``previous_response_id`` from the store (this key's, unexpired, stored),
and classifies everything: the chat body exactly as a backend will get it (this turn's
items, the stored history, ``instructions``, tool outputs) and every field not sent on
(the ``scan`` walk), with the stored turn's data class in force too. The chat body goes
through the same ``dispatch`` (boundary, pseudonymisation, fallback, cascade) and
``recorder`` (ledger row, endpoint ``responses``) as a chat completion; a stream through
the same ``streaming`` relay, in ``stream_wire.ResponsesWire``. The answer is stored
before the caller gets it, unless ``store`` is false or the data class may not be kept
(``responses.never_store``): then a row says why, and continuing from it is a 400.
``GET``/``DELETE /v1/responses/{id}`` and ``GET .../input_items`` read the caller's own
rows only: another key's id does not exist (404).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway import responses_wire as wire
from breakeven.gateway import streaming
from breakeven.gateway.call import Call
from breakeven.gateway.classify import header_class
from breakeven.gateway.config import Key
from breakeven.gateway.inference import admit, read_json, serving
from breakeven.gateway.state import Services
from breakeven.gateway.stream_wire import ResponsesWire
from breakeven.store.responses import Conversations

__all__ = ["ResponsesApi"]



class ResponsesApi:
    def __init__(self, services: Services) -> None:
        self.s = services  # the config's problems (boundary._responses) refused the start
        self.conversations = Conversations(services.store)
        self.retention_s = services.cfg.responses.retention_days * 86400

    async def create(self, request: web.Request) -> web.StreamResponse:
        with serving(self.s, request, "responses") as call:
            call.trace.endpoint = "responses"  # the ledger row says which API was called
            return await self._create(request, call)

    async def _create(self, request: web.Request, call: Call) -> web.StreamResponse:
        s, key = self.s, call.key
        assert key is not None
        body, raw = await read_json(request)
        turn = wire.request(body)
        history, prior = ([], None) if turn.previous is None else \
            await self._history(key, turn.previous)
        chat = wire.to_chat(turn, history)
        # what is scanned: the chat body exactly as a backend gets it (the stored history
        # in it), and every field that is not sent on (metadata, user, ...)
        unsent = {k: v for k, v in body.items() if k not in wire.SENT}
        seen = {**unsent, **chat} if unsent else chat
        await self._admit(call, request, seen, chat, prior, len(raw))
        route = call.route
        assert route is not None
        rid, created = f"resp_{call.id}", time.time()
        if call.stream:
            return await self._stream(request, call, turn, history, chat, rid, created)
        answer = await s.dispatch.answer(call, chat)
        out = wire.response(rid, turn, route.alias, created, time.time(), answer)
        await self._keep(call, turn, history, out)
        await s.recorder.record(call, 200, None)
        return web.Response(body=orjson.dumps(out), content_type="application/json",
                            headers=call.headers())

    async def _stream(self, request: web.Request, call: Call, turn: wire.Turn,
                      history: list[dict[str, Any]], chat: dict[str, Any], rid: str,
                      created: float) -> web.StreamResponse:
        """The Response streamed as typed events; stored (``_keep``) before the record."""
        s, route = self.s, call.route
        assert route is not None

        async def keep(out: dict[str, Any]) -> None:
            await self._keep(call, turn, history, out)

        events = ResponsesWire(wire.shell(rid, turn, route.alias, created), keep)
        if route.cascade is None:
            return await streaming.relay(request, call, chat, s.dispatch, s.load,
                                         s.recorder, events)
        answer = await s.dispatch.answer(call, chat)  # a cascade buffers, then streams
        return await streaming.replay(request, call, chat, answer, s.recorder, events)

    async def _history(self, key: Key, previous: str | None
                       ) -> tuple[list[dict[str, Any]], str | None]:
        """The items before this turn and the class they were sent under."""
        if previous is None:
            return [], None
        stored = await self.conversations.find(previous, key.name)
        if stored is None:
            raise ApiError(404, f"Previous response with id '{previous}' not found (it "
                                "expired, was deleted, was created with store: false, or "
                                "belongs to another key)",
                           "previous_response_id", code="previous_response_not_found")
        if stored.content is None:
            raise ApiError(400, f"previous response '{previous}' was not stored "
                                f"({stored.withheld}); send the whole conversation in "
                                "'input' instead", "previous_response_id",
                           code="previous_response_not_stored")
        c = stored.content
        return [*c["context"], *c["input"], *c["response"]["output"]], stored.data_class

    async def _admit(self, call: Call, request: web.Request, seen: dict[str, Any],
                     chat: dict[str, Any], prior: str | None, size: int) -> None:
        cfg, key = self.s.cfg, call.key
        assert key is not None
        if prior is not None:  # the stored history is scanned too
            size += len(orjson.dumps(seen["messages"]))

        def declared() -> str:
            said = header_class(cfg, key, request.headers)
            return cfg.combine(said, prior) if prior and cfg.rule(prior) else said

        await admit(self.s, call, seen, chat, declared, size)

    async def _keep(self, call: Call, turn: wire.Turn, history: list[dict[str, Any]],
                    out: dict[str, Any]) -> None:
        """The Response stored (as OpenAI: with ``store`` false it is not, so it is not
        found later, and nothing is written now); then the content the route keeps."""
        if turn.store:
            await self._store(call, turn, history, out)
        assert call.route is not None
        if call.route.store_content:
            call.content = {"request": turn.body, "response": out["output"]}

    async def _store(self, call: Call, turn: wire.Turn, history: list[dict[str, Any]],
                     out: dict[str, Any]) -> None:
        key = call.key
        assert key is not None
        withheld = None
        if not self.s.cfg.responses.storable(call.data_class):
            withheld = (f"its data class '{call.data_class}' is never stored "
                        "(responses.never_store)")
        content = None if withheld else {"response": out, "input": turn.items,
                                         "context": history}
        try:
            await self.conversations.keep(out["id"], key.name, call.data_class,
                                          self.retention_s, content, withheld,
                                          alone=self.s.metrics.in_flight <= 1)
        except Exception as exc:  # any store failure: the caller hears it, never a 500
            raise ApiError(503, f"the response store is unavailable ({type(exc).__name__}); "
                                "the response was not stored", type_="server_error",
                           code="store_unavailable", retry_after=1) from None

    async def _own(self, request: web.Request) -> tuple[str, dict[str, Any]]:
        key = self.s.auth.caller(request.headers)
        rid = request.match_info["response_id"]
        stored = await self.conversations.find(rid, key.name)
        if stored is None or stored.content is None:
            raise ApiError(404, f"No response found with id '{rid}'.", "response_id",
                           code="not_found")
        return rid, stored.content

    async def get(self, request: web.Request) -> web.Response:
        _, content = await self._own(request)
        return web.json_response(content["response"], dumps=_dumps)

    async def input_items(self, request: web.Request) -> web.Response:
        rid, content = await self._own(request)
        items = [{"id": f"in_{rid[5:]}_{i}", **item} for i, item in enumerate(content["input"])]
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"'order' must be asc or desc (got {order!r})", "order")
        if order == "desc":
            items.reverse()
        return web.json_response({"object": "list", "data": items, "has_more": False,
                                  "first_id": items[0]["id"] if items else None,
                                  "last_id": items[-1]["id"] if items else None}, dumps=_dumps)

    async def delete(self, request: web.Request) -> web.Response:
        key = self.s.auth.caller(request.headers)
        rid = request.match_info["response_id"]
        if not await self.conversations.drop(rid, key.name):
            raise ApiError(404, f"No response found with id '{rid}'.", "response_id",
                           code="not_found")
        return web.json_response({"id": rid, "object": "response.deleted", "deleted": True})


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
