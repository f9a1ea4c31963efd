"""A batch's life after it was created: validation of its input file, and the sweep that
every gateway process runs once a second over the shared queue: it validates batches left
``validating`` by a dead process, expires batches past their window, marks a batch to
spill to hosted backends when its route allows and its completion rate cannot meet the
window, cancels, and finalizes (output and error files in line order) once no line is
open. Finalizing is taken by one process at a time (a state move in the store).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import orjson

from breakeven.errors import ApiError
from breakeven.gateway.auth import Auth
from breakeven.gateway.batch import files as batchfile
from breakeven.gateway.call import new_call
from breakeven.gateway.classify import classify
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.metrics import Metrics
from breakeven.store.batches import FINAL, Queue

__all__ = ["OPEN", "Lifecycle"]

log = logging.getLogger(__name__)
OPEN = ("queued", "leased")
_EXPIRE_EVERY_S = 60.0
_ORPHAN_S = 86400.0  # an upload's chunks with no file row after a day: its process died
# a blocking store call run off the loop; a coroutine run in the background
Io = Callable[..., "asyncio.Future[Any]"]
Spawn = Callable[[Any], None]


class Lifecycle:
    def __init__(self, cfg: GatewayConfig, queue: Queue, io: Io, spawn: Spawn, auth: Auth,
                 metrics: Metrics, spill_aliases: list[str]) -> None:
        self.gateway = cfg
        self.cfg = cfg.batch
        self.queue = queue
        self.io = io
        self.spawn = spawn
        self.auth = auth
        self.metrics = metrics
        self.spill_aliases = spill_aliases
        self.done_history: dict[str, deque[tuple[float, int]]] = defaultdict(
            lambda: deque(maxlen=120))
        self.validating: set[str] = set()
        self.has_work = False  # some batch is in progress: the scheduler claims lines
        self.expired_at = 0.0  # when expired files were last deleted

    async def sweep(self) -> None:
        now = time.time()
        if now - self.expired_at >= _EXPIRE_EVERY_S:  # files past batch.file_ttl_s
            self.expired_at = now
            for fid in await self.io(self.queue.expired_files, now):
                await self.io(self.queue.delete_file, fid)
            await self.io(self.queue.drop_orphans, now - _ORPHAN_S)
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
        if not any(counts.get(s) for s in OPEN):
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
        left = sum(counts.get(s, 0) for s in OPEN)
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
        ids: dict[str, Any] = {}
        ttl = self.cfg.file_ttl_s
        for kind, done in (("output", True), ("error", False)):
            fid = f"file-{batch['id'].removeprefix('batch_')}-{kind}"
            if await self.io(q.save_results, batch["id"], done, fid, batch["key_name"],
                             f"{batch['id']}_{kind}.jsonl",
                             None if ttl is None else time.time() + ttl):
                ids[f"{kind}_file_id"] = fid
        await self.io(q.move, batch["id"], final, ["finalizing"],
                      **ids, **{f"{final}_at": time.time()})
        self.done_history.pop(batch["id"], None)

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
        q, cfg = self.queue, self.gateway
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
        key = self.auth.by_name(batch["key_name"])
        endpoint = batch["endpoint"].removeprefix("/v1/")
        declared = cfg.combine(key.data_class if key else "general",
                               batch["data_class"] or "general")

        def check(line: batchfile.Line) -> tuple[Any, ...]:
            call = new_call(endpoint)
            call.key = key
            try:
                if key is None:
                    raise ApiError(403, "the key that submitted this batch is gone")
                classify(cfg, call, line.body, lambda: declared)
                self.metrics.classified(call)
            except ApiError as exc:
                self.metrics.refused(exc.rules)
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
