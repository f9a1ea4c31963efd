"""The load generator: sends one level's requests and records what it sees (aiohttp).

A level is either an open loop (requests sent at precomputed offsets, whatever the server
does) or a closed loop (``concurrency`` callers, each sending its next request when the
previous one ends). Arrivals are dispatched against an absolute schedule on
``time.perf_counter``: the event loop's timers round sleeps to about a millisecond, so
every wake-up sends all requests that are due and the delivered rate never falls behind;
each record keeps both its due time and its real send time, and the difference is
reported as the client's own timing error. A ticker measures event-loop lag, and the
process's CPU time is kept, so a saturated client is detected instead of believed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from breakeven.bench.metrics import Record
from breakeven.bench.workload import RequestSpec

__all__ = ["Target", "Work", "WorkerResult", "run_work", "send_one"]


@dataclass(frozen=True)
class Target:
    url: str  # base URL ending in /v1
    model: str
    api_key: str | None = None
    stream: bool = True
    fixed_output: bool = True  # ignore_eos + min_tokens (vLLM extensions)
    timeout_s: float = 600.0

    def endpoint(self, spec: RequestSpec) -> str:
        path = "chat/completions" if spec.messages is not None else "completions"
        return f"{self.url.rstrip('/')}/{path}"

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers


@dataclass
class Work:
    """One worker's share of a level."""

    target: Target
    specs: list[RequestSpec]
    offsets: list[float] | None = None  # open loop: send times from the start
    concurrency: int = 1  # closed loop callers
    count: int | None = None  # closed loop: requests to send (warm-up included)
    duration_s: float | None = None  # closed loop: stop sending after this
    warmup: int = 0  # the first N sends are warm-up
    warmup_s: float = 0.0  # and so is whatever is due in the first seconds
    start_at: float = 0.0  # perf_counter time to begin (workers start together)
    stagger_s: float = 0.0  # closed loop: caller k first sends at k / concurrency of this


@dataclass
class WorkerResult:
    records: list[Record]
    cpu_s: float
    wall_s: float
    loop_lag_ms: list[float] = field(default_factory=list)


def _error_detail(status: int, raw: bytes) -> str:
    try:
        body = json.loads(raw)
        err = body.get("error", body) if isinstance(body, dict) else body
        message = err.get("message") if isinstance(err, dict) else None
        if message:
            return str(message)[:300]
    except ValueError:
        pass
    return raw[:200].decode("utf-8", "replace").strip() or f"HTTP {status}"


def _kind(status: int) -> str:
    return {401: "http_401", 403: "http_403", 404: "http_404", 429: "http_429"}.get(
        status, "http_4xx" if status < 500 else "http_5xx")


async def send_one(session: aiohttp.ClientSession, target: Target, spec: RequestSpec,
                   rec: Record) -> None:
    """Send ``spec`` and fill ``rec``; never raises for the server's faults."""
    payload = json.dumps(spec.body(target.model, target.stream, target.fixed_output)).encode()
    rec.start = time.perf_counter()
    try:
        async with session.post(target.endpoint(spec), data=payload,
                                headers=target.headers()) as resp:
            if resp.status != 200:
                rec.error, rec.detail = _kind(resp.status), _error_detail(resp.status,
                                                                          await resp.read())
                return
            if target.stream:
                await _read_stream(resp, rec)
            else:
                body = json.loads(await resp.read())
                rec.end = time.perf_counter()
                rec.ttft = rec.end - rec.start
                _take_usage(rec, body.get("usage"))
                if rec.output_tokens is None:
                    rec.error, rec.detail = "no_usage", "the response carries no usage"
    except TimeoutError:
        rec.error, rec.detail = "timeout", f"no complete answer within {target.timeout_s:g} s"
    except aiohttp.ClientConnectorError as exc:
        rec.error, rec.detail = "connect", str(exc.os_error or exc)
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
            aiohttp.ClientOSError) as exc:
        rec.error, rec.detail = "disconnected", str(exc) or type(exc).__name__
    except aiohttp.ClientError as exc:
        rec.error, rec.detail = "client", str(exc) or type(exc).__name__
    except (ValueError, AttributeError, TypeError) as exc:
        rec.error, rec.detail = "protocol", f"unexpected response: {exc}"[:300]
    if rec.error:
        rec.end = None


def _take_usage(rec: Record, usage: Any) -> None:
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        rec.output_tokens = usage["completion_tokens"]
        prompt = usage.get("prompt_tokens")
        rec.input_tokens = prompt if isinstance(prompt, int) else None


async def _read_stream(resp: aiohttp.ClientResponse, rec: Record) -> None:
    chunks, last, done = 0, 0.0, False
    async for line in resp.content:
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        event = json.loads(data)
        if "error" in event and "choices" not in event:
            err = event["error"]
            message = err.get("message") if isinstance(err, dict) else err
            rec.error, rec.detail = "stream_error", str(message)[:300]
            return
        if event.get("usage"):
            _take_usage(rec, event["usage"])
        choices = event.get("choices")
        if not choices:
            continue
        choice = choices[0]
        delta = choice.get("delta")
        text = (delta.get("content") or delta.get("reasoning_content")) if delta else (
            choice.get("text"))
        if text:
            now = time.perf_counter()
            if rec.ttft is None:
                rec.ttft = now - rec.start
            else:
                rec.gaps.append(now - last)
            last = now
            chunks += 1
    if not done:
        rec.error, rec.detail = "protocol", "the stream ended without 'data: [DONE]'"
        return
    rec.end = time.perf_counter()
    if rec.output_tokens is None:  # no usage from this server: count content chunks
        rec.output_tokens, rec.token_source = chunks, "chunks"


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    settle_at = time.perf_counter() + 1.0
    while not stop.is_set():
        due = time.perf_counter() + 0.01
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        lags.append(max(0.0, now - due) * 1e3)
        if now >= settle_at:  # once a second, however late the ticks run
            _settle()
            settle_at = now + 1.0


def _settle() -> None:
    """Keep the garbage collector's pauses short while records pile up: collect what the
    last second left (only objects made since the last freeze are looked at), then freeze
    the survivors, which the run keeps to its end anyway. Without it a full collection
    walks every record so far (~57 ms after 10 minutes at 300 requests/s, ~155 ms after
    30: benchmarks/bench_gc_pause.py), and the requests due meanwhile go out together: a
    burst the schedule never asked for, which is what made a gateway's memory climb in a
    long soak."""
    gc.collect()
    gc.freeze()


async def _open_loop(offsets: list[float], t0: float,
                     send: Callable[[int, float], Coroutine[Any, Any, None]]) -> None:
    """Send request i at ``t0 + offsets[i]`` whatever the server does; a finished request's
    task is let go (a run keeps only its records), a failed one kept to raise at the end."""
    running: set[asyncio.Task[None]] = set()
    failed: list[asyncio.Task[None]] = []

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failed.append(task)

    i, n = 0, len(offsets)
    while i < n:
        now = time.perf_counter() - t0
        while i < n and offsets[i] <= now:
            task = asyncio.create_task(send(i, t0 + offsets[i]))
            running.add(task)
            task.add_done_callback(finished)
            i += 1
        if i < n:
            await asyncio.sleep(max(0.0, offsets[i] - (time.perf_counter() - t0)))
    await asyncio.gather(*running, *failed)


async def run_work(work: Work, progress: Callable[[int], None] | None = None) -> WorkerResult:
    """Run one worker's share of a level to the end (bounded by count, duration, timeout)."""
    records: list[Record] = []
    lags: list[float] = []
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0, force_close=False, enable_cleanup_closed=True)
    timeout = aiohttp.ClientTimeout(total=work.target.timeout_s)
    cpu0 = time.process_time()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        delay = work.start_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        ticker = asyncio.create_task(_ticker(lags, stop))
        specs, n_specs = work.specs, len(work.specs)

        async def send(i: int, due: float) -> None:
            rec = Record(scheduled=due, warmup=i < work.warmup or due - t0 < work.warmup_s)
            records.append(rec)
            await send_one(session, work.target, specs[i % n_specs], rec)
            if progress is not None:
                progress(1)

        try:
            if work.offsets is not None:
                await _open_loop(work.offsets, t0, send)
            else:
                counter = iter(range(work.count if work.count is not None else 1 << 62))
                end = t0 + work.duration_s if work.duration_s is not None else float("inf")

                callers = max(1, work.concurrency)

                async def caller(k: int) -> None:
                    if work.stagger_s > 0 and k:  # no cohort: first sends spread out
                        await asyncio.sleep(work.stagger_s * k / callers)
                    for i in counter:
                        if time.perf_counter() >= end:
                            return
                        await send(i, time.perf_counter())

                await asyncio.gather(*(caller(k) for k in range(callers)))
        finally:  # a run that fails leaves no ticker behind and the collector as it was
            stop.set()
            await ticker
            gc.unfreeze()
        wall = time.perf_counter() - t0
    return WorkerResult(records, time.process_time() - cpu0, wall, lags)
