"""The one place errors become responses: each way a request can leave is answered and
recorded once, with the status it deserves (499 for a caller who left, however it left)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.test_utils import make_mocked_request

from breakeven.errors import ApiError
from breakeven.gateway import errors
from breakeven.gateway.call import new_call
from breakeven.gateway.config import Limits
from breakeven.gateway.metrics import Metrics
from breakeven.gateway.state import SERVICES


class _Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.records: list[tuple[str, int, str | None]] = []
        self.fail = fail

    async def record(self, call, status, error, task=None):
        call.logged = True
        self.records.append((call.id, status, error))
        if self.fail:
            raise ApiError(503, "the ledger store is unavailable", code="ledger_unavailable")


def _run(exc: BaseException, recorder: _Recorder | None = None):
    recorder = recorder or _Recorder()
    services = SimpleNamespace(metrics=Metrics(), recorder=recorder, cfg=SimpleNamespace(
        limits=Limits()))
    app = web.Application()
    app[SERVICES] = services  # type: ignore[assignment]
    request = make_mocked_request("POST", "/v1/chat/completions", app=app)
    call = new_call("chat/completions")

    async def handler(req: web.Request) -> web.StreamResponse:
        req[errors.CALL] = call
        raise exc

    async def go():
        return await errors.middleware(request, handler)

    return asyncio.run(go()), call, recorder, services.metrics


@pytest.mark.parametrize("gone", [ConnectionResetError("reset"),
                                  ClientConnectionResetError("Cannot write to closing "
                                                             "transport"),
                                  asyncio.CancelledError()])
def test_a_caller_who_left_is_499_however_the_loop_noticed(gone):
    with pytest.raises(type(gone)):
        _run(gone)
    recorder = _Recorder()
    with pytest.raises(type(gone)):
        _run(gone, recorder)
    assert [status for _, status, _ in recorder.records] == [499]


def test_an_api_error_is_answered_recorded_and_its_rule_counted():
    response, call, recorder, metrics = _run(ApiError(429, "rate limit", code="rate_limit",
                                                      retry_after=2, rules=("rate_limit",)))
    assert response.status == 429 and response.headers["Retry-After"] == "2"
    assert response.headers["x-request-id"] == call.id
    assert json.loads(response.body)["error"]["code"] == "rate_limit"
    assert recorder.records == [(call.id, 429, "rate limit")]
    assert metrics.rejections.values == {("rate_limit",): 1.0}


def test_a_body_too_large_is_recorded_as_413_not_500():
    response, _, recorder, metrics = _run(web.HTTPRequestEntityTooLarge(10, 20))
    assert response.status == 413 and recorder.records[0][1] == 413
    assert metrics.rejections.values == {("body_size",): 1.0}


def test_a_bug_is_a_500_without_a_traceback_and_is_recorded():
    response, call, recorder, _ = _run(KeyError("choices"))
    body = json.loads(response.body)
    assert response.status == 500 and "Traceback" not in response.body.decode()
    assert body["error"]["type"] == "server_error"
    assert recorder.records == [(call.id, 500, "internal error: KeyError")]


def test_a_ledger_that_cannot_record_turns_the_answer_into_its_503():
    response, _, recorder, _ = _run(ApiError(400, "bad field"), _Recorder(fail=True))
    assert response.status == 503 and len(recorder.records) == 1
    assert json.loads(response.body)["error"]["code"] == "ledger_unavailable"
