"""The Batch API's scheduler: it runs batch lines on self-hosted backends when, and only
when, there is room (the HTTP side, OpenAI's ``/v1/files`` and ``/v1/batches``, is
``batch_api``).

Every gateway process runs the scheduler over the shared queue (``store.batches``):

- every 0.1 s it claims, per self-hosted backend, as many lines as that backend's batch
  limit leaves room for (``admission.Limit``: cut under pressure from the engine's
  queue, KV cache or interactive TTFT, grown while nothing pushes back), started at the
  pace lines finish (limit x tick / a line's mean duration) rather than in bursts whose
  prompts would be prefilled all at once, and runs them
  through the gateway's own path (data class and residency rules, fallback limited to the
  backend chosen, a ledger record marked ``batch`` per attempt);
- every ``scrape_s`` it reads each engine's ``/metrics`` (vLLM's
  ``vllm:num_requests_waiting`` and ``vllm:kv_cache_usage_perc``), the interactive
  TTFT the gateway measured and the interactive load it sent (requests of the last 2 s x
  their mean tokens, against ``fill_to`` x the backend's capacity), and updates the limits;
- every second it sweeps: validates batches left ``validating`` by a dead process,
  expires batches past their window, marks a batch to spill to hosted backends when its
  route allows and its completion rate cannot meet the window, cancels, and finalizes
  (output and error files in line order) once no line is open.

A line whose attempt fails with a retryable error (5xx, 429, no eligible backend) goes
back to the queue until ``max_line_attempts``; a process that dies leaves leased lines
that return to the queue when their lease ends; SIGTERM hands its lines back at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import secrets
import socket
import time
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from breakeven.errors import ApiError
from breakeven.gateway.batch import files as batchfile
from breakeven.gateway.batch.admission import Limit, Signals, p95, room
from breakeven.gateway.config import Key
from breakeven.store.batches import FINAL, Queue

if TYPE_CHECKING:
    from breakeven.gateway.app import Gateway

__all__ = ["Batches"]

log = logging.getLogger("breakeven.gateway.batch.scheduler")
_OPEN = ("queued", "leased")
_TICK_S = 0.1


def _engine_gauges(text: str) -> tuple[float | None, float | None]:
    """(waiting, kv usage) summed over label sets, from Prometheus text."""
    waiting = kv = None
    for line in text.splitlines():
        if line.startswith("vllm:num_requests_waiting"):
            waiting = (waiting or 0.0) + float(line.rsplit(" ", 1)[1])
        elif line.startswith(("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")):
            kv = max(kv or 0.0, float(line.rsplit(" ", 1)[1]))
    return waiting, kv


def _ewma(averages: dict[str, float], key: str, value: float) -> None:
    """Fold ``value`` into a moving average (the first value starts it)."""
    was = averages.get(key)
    averages[key] = value if was is None else 0.9 * was + 0.1 * value


class Batches:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.cfg = gw.cfg.batch
        self.queue = Queue(gw.store)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        cfg = gw.cfg
        self.self_backends = [b.name for b in cfg.backends if b.hosting == "self"]
        self.aliases = {name: [r.alias for r in cfg.routes if name in r.backends]
                        for name in self.self_backends}
        self.spill_aliases = [r.alias for r in cfg.routes if r.batch_spill]
        self.spill_classes = [c for c, rule in cfg.classes.items()
                              if "hosted" in rule.hosting and rule.action != "block"]
        self.limits = {n: Limit(self.cfg.max_per_backend, self.cfg.queue_limit,
                                self.cfg.kv_limit, self.cfg.ttft_slo_ms)
                       for n in self.self_backends}
        self.running: dict[str, int] = defaultdict(int)  # backend (or "spill") -> lines
        self.ttft: dict[str, deque[tuple[float, float]]] = defaultdict(
            lambda: deque(maxlen=500))  # backend -> (monotonic, interactive TTFT ms)
        self.pressure: dict[str, str | None] = {}
        self.signals: dict[str, Signals] = {}  # backend -> what admission last read
        self.done_history: dict[str, deque[tuple[float, int]]] = defaultdict(
            lambda: deque(maxlen=120))
        self.validating: set[str] = set()
        self.has_work = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self.loop_task: asyncio.Task[None] | None = None
        self.lines_done = 0
        # EWMA of a line's seconds; 2 s until measured (pacing reads it before any line ran)
        self.line_s: dict[str, float] = defaultdict(lambda: 2.0)
        self.line_tokens: dict[str, float] = {}  # EWMA of a line's tokens, in + out
        self.arrivals: dict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=20_000))  # backend -> interactive requests sent (monotonic)
        self.request_tokens: dict[str, float] = {}  # EWMA of an interactive request's tokens

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop claiming; lines in flight are handed back to the queue for others."""
        if self.loop_task is not None:
            self.loop_task.cancel()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10)

    def io(self, fn: Any, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Run a blocking store call on the store's reader threads (and connections), so
        the scheduler adds no connection, and no page cache, per worker thread."""
        return asyncio.ensure_future(self.gw.store.in_reader(functools.partial(fn, *args,
                                                                             **kwargs)))

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def observe_ttft(self, backend: str, ttft_ms: float) -> None:
        self.ttft[backend].append((time.monotonic(), ttft_ms))

    def observe_request(self, backend: str) -> None:
        """An interactive request sent to a self-hosted backend."""
        self.arrivals[backend].append(time.monotonic())

    def observe_tokens(self, backend: str, tokens: int) -> None:
        """An interactive request's tokens (in + out), once known."""
        _ewma(self.request_tokens, backend, tokens)

    def _room(self, name: str, now: float) -> float | None:
        """Lines in flight the backend's capacity leaves beside its interactive load."""
        gpu = self.gw.cfg.backend(name).gpu
        if self.cfg.fill_to is None or gpu is None or name not in self.line_tokens:
            return None
        arrivals = self.arrivals[name]
        while arrivals and arrivals[0] < now - 2.0:
            arrivals.popleft()
        demand = len(arrivals) / 2.0 * self.request_tokens.get(name, 0.0)
        return room(gpu.capacity_tokens_per_s, self.cfg.fill_to, demand,
                    self.line_tokens[name], self.line_s[name])

    async def _loop(self) -> None:
        last_scrape = last_sweep = 0.0
        while True:
            try:
                now = time.monotonic()
                if now - last_sweep >= 1.0:
                    last_sweep = now
                    await self._sweep()
                if now - last_scrape >= self.cfg.scrape_s:
                    last_scrape = now
                    await self._scrape()
                if self.has_work:
                    await self._admit()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down, a bug: keep the scheduler alive
                log.exception("batch scheduler tick failed")
                await asyncio.sleep(1.0)
            await asyncio.sleep(_TICK_S)

    # -- admission ---------------------------------------------------------------------------
    async def _scrape(self) -> None:
        session = self.gw.session
        if session is None:
            return

        async def gauges(name: str) -> tuple[float | None, float | None]:
            b = self.gw.cfg.backend(name)
            base = b.url.rstrip("/").removesuffix("/v1")
            try:
                async with session.get(f"{base}/metrics",
                                       timeout=aiohttp.ClientTimeout(total=1)) as resp:
                    if resp.status != 200:
                        return None, None
                    return _engine_gauges(await resp.text())
            except (TimeoutError, aiohttp.ClientError, ValueError):
                return None, None

        found = await asyncio.gather(*(gauges(n) for n in self.self_backends))
        now = time.monotonic()
        for name, (waiting, kv) in zip(self.self_backends, found, strict=True):
            # 5 s: a p95 over fewer samples jumps with every slow request (a step in load
            # is caught sooner by the capacity room and the engine queue)
            recent = [ms for t, ms in self.ttft[name] if t >= now - 5.0]
            signals = Signals(waiting, kv, p95(recent), self.running[name],
                              self._room(name, now))
            self.signals[name] = signals
            why = self.limits[name].update(signals)
            if why != self.pressure.get(name):
                log.info("batch admission on %s: %s", name, why or "no pressure")
            self.pressure[name] = why

    async def _admit(self) -> None:
        lease = self.cfg.lease_s
        for name in self.self_backends:
            state = self.gw.states[name]
            if state.drifted or state.open_until > time.monotonic():
                continue
            room = self.limits[name].allowed - self.running[name]
            # start lines at the pace they finish: a burst of prompts to prefill at once
            # is what hurts interactive latency, more than the lines themselves
            pace = math.ceil(self.limits[name].allowed * _TICK_S / self.line_s[name])
            room = min(room, max(1, pace))
            if room <= 0:
                continue
            lines = await self.io(self.queue.claim, self.owner,
                                  self.aliases[name], room, lease)
            for line in lines:
                self.running[name] += 1
                self.spawn(self._run(line, name))
        room = self.cfg.max_per_backend - self.running["spill"]
        if self.spill_aliases and room > 0:
            lines = await self.io(self.queue.claim, self.owner, self.spill_aliases,
                                  room, lease, self.spill_classes)
            for line in lines:
                self.running["spill"] += 1
                self.spawn(self._run(line, "spill"))

    # -- running a line ----------------------------------------------------------------------
    def _key(self, name: str | None) -> Key | None:
        from breakeven.gateway.app import _ANONYMOUS

        if not self.gw.keys:
            return _ANONYMOUS
        return next((k for k in self.gw.keys.values() if k.name == name), None)

    async def _run(self, line: dict[str, Any], slot: str) -> None:
        from breakeven.gateway.app import new_call

        gw, q = self.gw, self.queue
        batch_id, no, cid = line["batch_id"], line["line_no"], line["custom_id"]
        call = None
        try:
            batch = await self.io(q.batch, batch_id)
            assert batch is not None
            call = new_call(batch["endpoint"].removeprefix("/v1/"))
            call.batch = True
            call.key = self._key(batch["key_name"])
            call.route = gw.cfg.route(line["alias"])
            call.data_class = line["data_class"]
            call.trace.rules.append(f"batch {batch_id} line {no}")
            if call.key is None or call.key.revoked or call.route is None:
                raise ApiError(403, "the key that submitted this batch is revoked or its "
                                    "route is gone", code="batch_key_revoked")
            if line["attempts"] > self.cfg.max_line_attempts:
                raise ApiError(500, f"line abandoned after {line['attempts'] - 1} attempts "
                                    "(its process stopped each time)", code="too_many_attempts")
            rule = gw.cfg.classes.get(call.data_class)
            call.pseudonymise = rule is not None and rule.action == "pseudonymise"
            body = orjson.loads(line["body"])
            among = (slot,) if slot != "spill" else tuple(
                n for n in call.route.backends if gw.cfg.backend(n).hosting == "hosted")
            if slot == "spill":
                call.trace.rules.append("spilled: the window cannot be met self-hosted")
            started = time.monotonic()
            call.backend, answer = await gw._attempts(call, body, among)
            _ewma(self.line_s, slot, time.monotonic() - started)
            _ewma(self.line_tokens, slot, answer.tokens_in + answer.tokens_out)
            call.tokens_in, call.tokens_out = answer.tokens_in, answer.tokens_out
            await gw.log_call(call, 200, None)
            result = batchfile.output_line(cid, call.id, answer.body)
            await self.io(q.finish, batch_id, no, self.owner, "done",
                          orjson.dumps(result).decode(), call.backend.name, call.id)
            self.lines_done += 1
        except ApiError as exc:
            if call is not None and not call.logged:
                await gw.log_call(call, exc.status, exc.message)
            retry = (exc.status >= 500 or exc.status == 429) and (
                line["attempts"] < self.cfg.max_line_attempts
                and exc.code != "too_many_attempts")
            failure = None if retry else orjson.dumps(batchfile.error_line(
                no, cid, exc.code or "error", exc.message, call.id if call else None,
                exc.status)).decode()
            await self.io(q.finish, batch_id, no, self.owner,
                          "queued" if retry else "failed", failure,
                          call.backend.name if call and call.backend else None,
                          call.id if call else None)
        except asyncio.CancelledError:  # shutting down: the line goes back to the queue now
            await asyncio.shield(self.io(q.finish, batch_id, no, self.owner,
                                         "queued", None, None, None))
            raise
        except Exception:
            log.exception("batch line %s/%s failed in the gateway", batch_id, no)
            await self.io(q.finish, batch_id, no, self.owner, "queued", None, None,
                          None)
        finally:
            self.running[slot] -= 1

    # -- the sweep ---------------------------------------------------------------------------
    async def _sweep(self) -> None:
        active = await self.io(self.queue.active)
        self.has_work = any(b["status"] == "in_progress" for b in active)
        now = time.time()
        for batch in active:
            status = batch["status"]
            if status == "validating":
                if batch["id"] not in self.validating and (
                        now - batch["created_at"] > self.cfg.lease_s):
                    self.spawn(self.validate(batch["id"]))  # its process died
            elif status == "finalizing":
                if now - (batch["finalizing_at"] or 0) > self.cfg.lease_s:
                    await self._finalize(batch, "completed", stale=True)
            else:
                await self._progress(batch, now)

    async def _progress(self, batch: dict[str, Any], now: float) -> None:
        q = self.queue
        counts = await self.io(q.counts, batch["id"])
        if batch["status"] == "in_progress" and now > batch["expires_at"]:
            err = batchfile.error_line
            await self.io(q.close_open, batch["id"], "expired", lambda no, cid: (
                orjson.dumps(err(no, cid, "batch_expired", "the batch's completion window "
                                 "ended before this line ran")).decode()))
            counts = await self.io(q.counts, batch["id"])
            if not counts.get("leased"):
                await self._finalize(batch, "expired")
            return
        if batch["status"] == "cancelling":
            await self.io(q.close_open, batch["id"], "cancelled", lambda no, cid: (
                orjson.dumps(batchfile.error_line(no, cid, "batch_cancelled",
                                                  "the batch was cancelled")).decode()))
            counts = await self.io(q.counts, batch["id"])
            if not counts.get("leased"):
                await self._finalize(batch, "cancelled")
            return
        if not any(counts.get(s) for s in _OPEN):
            await self._finalize(batch, "completed")
            return
        self._maybe_spill(batch, counts, now)

    def _maybe_spill(self, batch: dict[str, Any], counts: dict[str, int], now: float) -> None:
        """Mark a batch to spill when its completion rate cannot meet the window."""
        history = self.done_history[batch["id"]]
        done = sum(counts.get(s, 0) for s in FINAL)
        history.append((now, done))
        if batch["spill"] or not self.spill_aliases or len(history) < 5:
            return
        (t0, d0), (t1, d1) = history[0], history[-1]
        rate = (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0
        left = sum(counts.get(s, 0) for s in _OPEN)
        time_left = batch["expires_at"] - now
        if rate <= 0 or left / rate > 0.9 * time_left:
            log.warning("batch %s: %d lines left at %.2f lines/s, %.0f s to its deadline: "
                        "spilling to hosted backends where allowed", batch["id"], left, rate,
                        time_left)
            self.spawn(self.io(self.queue.set_spill, batch["id"]))

    async def _finalize(self, batch: dict[str, Any], final: str, stale: bool = False) -> None:
        q, now = self.queue, time.time()
        took = await self.io(
            q.move, batch["id"], "finalizing",
            ["finalizing"] if stale else ["in_progress", "cancelling"],
            now - self.cfg.lease_s if stale else None, finalizing_at=now)
        if not took:
            return  # another process is finalizing it
        if stale:  # redo what a dead process started: its final status from its lines
            counts = await self.io(q.counts, batch["id"])
            final = ("cancelled" if batch["cancelling_at"] else
                     "expired" if counts.get("expired") else "completed")
        out: list[str] = []
        err: list[str] = []
        for _, state, result in await self.io(lambda: list(q.results(batch["id"]))):
            (out if state == "done" else err).append(result)
        ids: dict[str, Any] = {}
        for kind, lines in (("output", out), ("error", err)):
            if lines:
                fid = f"file-{batch['id'].removeprefix('batch_')}-{kind}"
                await self.io(q.save_file, fid, batch["key_name"], "batch_output",
                              f"{batch['id']}_{kind}.jsonl",
                              ("\n".join(lines) + "\n").encode())
                ids[f"{kind}_file_id"] = fid
        await self.io(q.move, batch["id"], final, ["finalizing"],
                      **ids, **{f"{final}_at": time.time()})
        self.done_history.pop(batch["id"], None)

    # -- validation --------------------------------------------------------------------------
    async def validate(self, batch_id: str) -> None:
        """Check the input file line by line; queue the runnable lines, report the others."""
        if batch_id in self.validating:
            return
        self.validating.add(batch_id)
        try:
            await self._validate(batch_id)
        except Exception:
            log.exception("validating batch %s failed", batch_id)
        finally:
            self.validating.discard(batch_id)

    async def _validate(self, batch_id: str) -> None:
        from breakeven.gateway.app import new_call

        q, gw = self.queue, self.gw
        batch = await self.io(q.batch, batch_id)
        if batch is None or batch["status"] != "validating":
            return
        content = await self.io(q.content, batch["input_file_id"])
        lines, errors, fatal = await asyncio.to_thread(
            batchfile.parse, content, batch["endpoint"], self.cfg.max_lines)
        if fatal is not None:
            await self.io(q.move, batch_id, "failed", ["validating"],
                          failed_at=time.time(), errors=orjson.dumps([{
                              "code": "invalid_file", "message": fatal,
                              "param": "input_file_id", "line": None}]).decode())
            return
        key = self._key(batch["key_name"])
        endpoint = batch["endpoint"].removeprefix("/v1/")

        def check(line: batchfile.Line) -> tuple[Any, ...]:
            call = new_call(endpoint)
            call.key = key
            try:
                if key is None:
                    raise ApiError(403, "the key that submitted this batch is gone")
                gw.classify(call, line.body, lambda: key.data_class)
            except ApiError as exc:
                return (line.line_no, line.custom_id, None, None, None, "failed", orjson.dumps(
                    batchfile.error_line(line.line_no, line.custom_id, "invalid_request",
                                         f"line {line.line_no}: {exc.message}")).decode())
            return (line.line_no, line.custom_id, line.body["model"], call.data_class,
                    orjson.dumps(line.body).decode(), "queued", None)

        rows = await asyncio.to_thread(lambda: [check(line) for line in lines])  # CPU: PII
        rows += [(e.line_no, e.custom_id, None, None, None, "failed", orjson.dumps(
            batchfile.error_line(e.line_no, e.custom_id, e.code, e.message)).decode())
            for e in errors]
        await self.io(q.add_lines, batch_id, rows)
        await self.io(q.move, batch_id, "in_progress", ["validating"],
                      in_progress_at=time.time(), total=len(rows))
        self.has_work = True
