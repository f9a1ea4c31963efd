"""The Batch API's scheduler: it runs batch lines on self-hosted backends when, and only
when, there is room (the HTTP side, OpenAI's ``/v1/files`` and ``/v1/batches``, is
``batch.api``; a batch's validation and the once-a-second sweep are ``batch.lifecycle``).

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
- every second it runs the lifecycle's sweep (expiry, cancellation, spill, finalizing).

Each line reserves its worst case against its key's monthly budget before it is sent, as
an interactive request does (a key whose budget is spent fails its lines,
``insufficient_quota``). A line whose attempt fails with a retryable error (5xx, 429, no
eligible backend) goes back to the queue until ``max_line_attempts``; a process that
dies leaves leased lines that return to the queue when their lease ends; SIGTERM hands
its lines back at once.
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
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from breakeven.errors import ApiError
from breakeven.gateway.auth import Auth
from breakeven.gateway.batch import files as batchfile
from breakeven.gateway.batch.admission import Limit, Signals, p95, room
from breakeven.gateway.batch.lifecycle import Lifecycle
from breakeven.gateway.call import new_call
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.dispatch import Dispatcher
from breakeven.gateway.load import Load, ewma
from breakeven.gateway.metrics import Metrics
from breakeven.gateway.policy import BackendState
from breakeven.gateway.recorder import Recorder
from breakeven.prometheus import samples
from breakeven.store import Store
from breakeven.store.batches import Queue

__all__ = ["Batches"]

log = logging.getLogger(__name__)
_TICK_S = 0.1


def _engine_gauges(text: str) -> tuple[float | None, float | None]:
    """(waiting summed over the engines' label sets, the fullest KV cache) from Prometheus
    text (vLLM's ``_by_reason`` breakdown of the queue is not counted again)."""
    queued = [v for _, v in samples(text, "vllm:num_requests_waiting")]
    usage = [v for name in ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
             for _, v in samples(text, name)]
    return (sum(queued) if queued else None), (max(usage) if usage else None)


class Batches:
    def __init__(self, cfg: GatewayConfig, store: Store, auth: Auth, dispatch: Dispatcher,
                 recorder: Recorder, metrics: Metrics, load: Load,
                 states: Mapping[str, BackendState]) -> None:
        self.gateway = cfg
        self.store = store
        self.auth = auth
        self.dispatch = dispatch
        self.recorder = recorder
        self.metrics = metrics
        self.load = load
        self.states = states
        self.cfg = cfg.batch
        self.queue = Queue(store)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
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
        self.pressure: dict[str, str | None] = {}
        self.signals: dict[str, Signals] = {}  # backend -> what admission last read
        self.tasks: set[asyncio.Task[Any]] = set()
        self.loop_task: asyncio.Task[None] | None = None
        self.lines_done = 0
        # EWMA of a line's seconds; 2 s until measured (pacing reads it before any line ran)
        self.line_s: dict[str, float] = defaultdict(lambda: 2.0)
        self.line_tokens: dict[str, float] = {}  # EWMA of a line's tokens, in + out
        self.lifecycle = Lifecycle(cfg, self.queue, self.io, self.spawn, auth, metrics,
                                   self.spill_aliases)

    def validate(self, batch_id: str) -> Any:
        """Validate a new batch's input file (a coroutine to spawn)."""
        return self.lifecycle.validate(batch_id)

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
        return asyncio.ensure_future(self.store.in_reader(functools.partial(fn, *args,
                                                                             **kwargs)))

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _room(self, name: str, now: float) -> float | None:
        """Lines in flight the backend's capacity leaves beside its interactive load."""
        gpu = self.gateway.backend(name).gpu
        if self.cfg.fill_to is None or gpu is None or name not in self.line_tokens:
            return None
        return room(gpu.capacity_tokens_per_s, self.cfg.fill_to,
                    self.load.tokens_per_s(name, now), self.line_tokens[name],
                    self.line_s[name])

    def metric_lines(self) -> list[str]:
        """The scheduler's figures for ``/metrics``: limits, lines in flight, signals."""
        lines = ["# TYPE breakeven_gateway_batch_limit gauge"]
        lines += [f'breakeven_gateway_batch_limit{{backend="{n}"}} {lim.allowed}'
                  for n, lim in sorted(self.limits.items())]
        lines += ["# TYPE breakeven_gateway_batch_in_flight gauge"]
        lines += [f'breakeven_gateway_batch_in_flight{{backend="{n}"}} {self.running[n]}'
                  for n in sorted(self.limits)]
        lines += ["# TYPE breakeven_gateway_batch_signal gauge"]  # what admission last read
        for n, sig in sorted(self.signals.items()):
            for label, value in (("engine_waiting", sig.waiting), ("kv_usage", sig.kv_usage),
                                 ("interactive_ttft_p95_ms", sig.ttft_p95_ms),
                                 ("room_lines", sig.room)):
                if value is not None:
                    lines.append(f'breakeven_gateway_batch_signal{{backend="{n}",'
                                 f'signal="{label}"}} {value:g}')
        lines += ["# TYPE breakeven_gateway_batch_lines_total counter",
                  f"breakeven_gateway_batch_lines_total {self.lines_done}"]
        return lines

    async def _loop(self) -> None:
        last_scrape = last_sweep = 0.0
        while True:
            try:
                now = time.monotonic()
                if now - last_sweep >= 1.0:
                    last_sweep = now
                    await self.lifecycle.sweep()
                if now - last_scrape >= self.cfg.scrape_s:
                    last_scrape = now
                    await self._scrape()
                if self.lifecycle.has_work:
                    await self._admit()
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is down, a bug: keep the scheduler alive
                log.exception("batch scheduler tick failed")
                await asyncio.sleep(1.0)
            await asyncio.sleep(_TICK_S)

    # -- admission ---------------------------------------------------------------------------
    async def _scrape(self) -> None:
        session = self.dispatch.session

        async def gauges(name: str) -> tuple[float | None, float | None]:
            b = self.gateway.backend(name)
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
            recent = self.load.recent_ttft(name, now, 5.0)
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
            state = self.states[name]
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
    async def _run(self, line: dict[str, Any], slot: str) -> None:
        cfg, q = self.gateway, self.queue
        batch_id, no, cid = line["batch_id"], line["line_no"], line["custom_id"]
        call = None
        try:
            batch = await self.io(q.batch, batch_id)
            assert batch is not None
            call = new_call(batch["endpoint"].removeprefix("/v1/"))
            call.batch = True
            call.key = self.auth.by_name(batch["key_name"])
            call.route = cfg.route(line["alias"])
            call.data_class = line["data_class"]
            call.trace.rules.append(f"batch {batch_id} line {no}")
            if call.key is None or call.key.revoked or call.route is None:
                raise ApiError(403, "the key that submitted this batch is revoked or its "
                                    "route is gone", code="batch_key_revoked")
            if line["attempts"] > self.cfg.max_line_attempts:
                raise ApiError(500, f"line abandoned after {line['attempts'] - 1} attempts "
                                    "(its process stopped each time)", code="too_many_attempts")
            rule = cfg.rule(call.data_class)
            call.pseudonymise = rule is not None and rule.action == "pseudonymise"
            body = orjson.loads(line["body"])
            await self.auth.reserve(call.key, call, body)  # the key's budget, held
            among = (slot,) if slot != "spill" else tuple(
                n for n in call.route.backends if cfg.backend(n).hosting == "hosted")
            if slot == "spill":
                call.trace.rules.append("spilled: the window cannot be met self-hosted")
            started = time.monotonic()
            b, answer = await self.dispatch.complete(call, body, among)
            ewma(self.line_s, slot, time.monotonic() - started)
            ewma(self.line_tokens, slot, answer.tokens_in + answer.tokens_out)
            call.answered(b, answer.tokens_in, answer.tokens_out)
            await self.recorder.record(call, 200, None)
            result = batchfile.output_line(cid, call.id, answer.body)
            await self.io(q.finish, batch_id, no, self.owner, "done",
                          orjson.dumps(result).decode(), b.name, call.id)
            self.lines_done += 1
        except ApiError as exc:
            self.metrics.refused(exc.rules)
            if call is not None and not call.logged:
                await self.recorder.record(call, exc.status, exc.message)
            retry = (exc.status >= 500 or exc.status == 429) and (
                line["attempts"] < self.cfg.max_line_attempts
                and exc.code not in ("too_many_attempts", "insufficient_quota"))
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
