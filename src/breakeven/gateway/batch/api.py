"""The Batch API over HTTP, as OpenAI's: ``/v1/files`` (upload, list, metadata, content,
delete) and ``/v1/batches`` (create, list, get, cancel). A key sees only its own files and
batches (an admin key, or a gateway without keys, sees all); creating a batch stores it and
starts its validation, and the scheduler (``batch.scheduler.Batches``) does the rest.

File content is never held whole: an upload is written to the store in ``CHUNK_BYTES``
pieces as it arrives (each read of the body within ``limits.body_timeout_s``), within
``batch.max_file_bytes`` and the key's ``batch.max_file_bytes_per_key``, and a download is
streamed from the store a piece at a time. A file expires ``batch.file_ttl_s`` after it
was stored (``batch.lifecycle`` deletes it).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway.auth import Auth
from breakeven.gateway.batch import files as batchfile
from breakeven.gateway.batch.scheduler import Batches
from breakeven.gateway.classify import header_class
from breakeven.gateway.config import Key
from breakeven.gateway.guard import read_within
from breakeven.store.batches import CHUNK_BYTES

__all__ = ["BatchApi"]


class BatchApi:
    def __init__(self, batches: Batches, auth: Auth, body_timeout_s: float) -> None:
        self.b = batches
        self.auth = auth
        self.body_timeout_s = body_timeout_s

    def _owned(self, key: Key, owner: str | None) -> bool:
        return not self.auth.keys or key.admin or owner == key.name

    async def upload(self, request: web.Request) -> web.Response:
        key = self.auth.caller(request.headers)
        if not request.content_type.startswith("multipart/"):
            raise ApiError(400, "upload a file as multipart/form-data with fields 'file' and "
                                "'purpose'", "file")
        fid = f"file-{secrets.token_hex(12)}"
        drop = self.b.queue.drop_chunks
        try:
            purpose, filename, size = await self._read_upload(request, key, fid)
        except (ApiError, ConnectionError):
            await self.b.io(drop, fid)
            raise
        except asyncio.CancelledError:
            await asyncio.shield(self.b.io(drop, fid))
            raise
        except Exception as exc:  # no boundary, a truncated part...: the caller's input
            await self.b.io(drop, fid)
            raise ApiError(400, f"malformed multipart body ({type(exc).__name__})",
                           "file") from None
        if purpose != "batch" or size is None:
            await self.b.io(self.b.queue.drop_chunks, fid)
            if size is None:
                raise ApiError(400, "no 'file' part in the upload", "file")
            raise ApiError(400, f"purpose must be 'batch' (got {purpose!r})", "purpose")
        ttl = self.b.cfg.file_ttl_s
        row = await self.b.io(self.b.queue.commit_file, fid, key.name, "batch",
                              filename or "upload.jsonl", size,
                              None if ttl is None else time.time() + ttl)
        return web.json_response(batchfile.file_object(row))

    async def _read_upload(self, request: web.Request, key: Key, fid: str
                           ) -> tuple[str | None, str | None, int | None]:
        """(purpose, filename, bytes stored) of a multipart upload; the content goes to
        the store as it arrives, in ``CHUNK_BYTES`` pieces."""
        purpose, filename, size = None, None, None
        cfg, timeout = self.b.cfg, self.body_timeout_s
        reader = await request.multipart()
        while (part := await read_within(request, reader.next(), timeout)) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            if part.name == "purpose":
                text = await read_within(request, part.read(decode=True), timeout)
                purpose = text[:64].decode(errors="replace").strip()
            elif part.name == "file" and size is None:
                filename = (part.filename or "upload.jsonl")[:255]
                room = min(cfg.max_file_bytes, cfg.max_file_bytes_per_key
                           - await self.b.io(self.b.queue.used_bytes, key.name))
                size = await self._store_part(request, part, fid, room)
        return purpose, filename, size

    async def _store_part(self, request: web.Request, part: aiohttp.BodyPartReader,
                          fid: str, room: int) -> int:
        cfg = self.b.cfg
        buf, seq, size = bytearray(), 0, 0
        while chunk := await read_within(request, part.read_chunk(1 << 16),
                                         self.body_timeout_s):
            size += len(chunk)
            if size > room:
                if size > cfg.max_file_bytes:
                    raise ApiError(413, f"file larger than {cfg.max_file_bytes:,} bytes",
                                   "file", code="file_too_large")
                raise ApiError(413, f"this key's files would pass its quota of "
                                    f"{cfg.max_file_bytes_per_key:,} bytes (batch."
                                    "max_file_bytes_per_key); delete some first", "file",
                               code="file_quota_exceeded")
            buf += chunk
            if len(buf) >= CHUNK_BYTES:
                await self.b.io(self.b.queue.put_chunk, fid, seq, bytes(buf[:CHUNK_BYTES]))
                del buf[:CHUNK_BYTES]
                seq += 1
        if buf:
            await self.b.io(self.b.queue.put_chunk, fid, seq, bytes(buf))
        return size

    async def _mine(self, request: web.Request, what: str, read: Any) -> dict[str, Any]:
        """The file or batch named in the path, if the caller's key owns it (else 404)."""
        key = self.auth.caller(request.headers)
        name = request.match_info[f"{what}_id"]
        row: dict[str, Any] | None = await self.b.io(read, name)
        if row is None or not self._owned(key, row["key_name"]):
            raise ApiError(404, f"No such {what}: {name}", f"{what}_id",
                           code=f"{what}_not_found")
        return row

    async def _file(self, request: web.Request) -> dict[str, Any]:
        return await self._mine(request, "file", self.b.queue.file)

    async def file(self, request: web.Request) -> web.Response:
        return web.json_response(batchfile.file_object(await self._file(request)))

    async def content(self, request: web.Request) -> web.StreamResponse:
        row = await self._file(request)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = int(row["bytes"])
        await resp.prepare(request)
        seq = 0
        while (data := await self.b.io(self.b.queue.chunk, row["id"], seq)) is not None:
            await resp.write(data)
            seq += 1
        await resp.write_eof()
        return resp

    async def delete(self, request: web.Request) -> web.Response:
        row = await self._file(request)
        await self.b.io(self.b.queue.delete_file, row["id"])
        return web.json_response({"id": row["id"], "object": "file", "deleted": True})

    async def files(self, request: web.Request) -> web.Response:
        key = self.auth.caller(request.headers)
        limit = _limit(request, 10_000, "10000")
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"order must be 'asc' or 'desc' (got {order!r})", "order")
        owner = None if (not self.auth.keys or key.admin) else key.name
        rows = await self.b.io(self.b.queue.files, owner, request.query.get("purpose"),
                               limit + 1, request.query.get("after"), order == "desc")
        data = [batchfile.file_object(r) for r in rows[:limit]]
        return web.json_response({"object": "list", "data": data,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None,
                                  "has_more": len(rows) > limit})

    async def _batch(self, request: web.Request) -> dict[str, Any]:
        return await self._mine(request, "batch", self.b.queue.batch)

    async def _reload(self, row: dict[str, Any]) -> dict[str, Any]:
        fresh: dict[str, Any] | None = await self.b.io(self.b.queue.batch, row["id"])
        return fresh or row

    async def _object(self, row: dict[str, Any]) -> dict[str, Any]:
        counts = await self.b.io(self.b.queue.counts, row["id"])
        failed = sum(counts.get(s, 0) for s in ("failed", "expired"))
        return batchfile.batch_object(row, {"total": int(row["total"] or 0),
                                            "completed": counts.get("done", 0),
                                            "failed": failed})

    async def create(self, request: web.Request) -> web.Response:
        key = self.auth.caller(request.headers)
        declared = header_class(self.b.gateway, key, request.headers)  # every line's floor
        try:
            body = orjson.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        endpoint = body.get("endpoint")
        if endpoint not in batchfile.ENDPOINTS:
            raise ApiError(400, f"endpoint must be one of {', '.join(batchfile.ENDPOINTS)} "
                                f"(got {endpoint!r})", "endpoint")
        window = body.get("completion_window")
        seconds = batchfile.window_s(window)
        if seconds is None:
            raise ApiError(400, f"completion_window must be like '24h' (got {window!r})",
                           "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16
                                     or not all(isinstance(v, str) for v in metadata.values())):
            raise ApiError(400, "metadata must be an object of at most 16 string values",
                           "metadata")
        fid = body.get("input_file_id")
        row = await self.b.io(self.b.queue.file, fid) if isinstance(fid, str) else None
        if row is None or not self._owned(key, row["key_name"]):
            raise ApiError(400, f"input_file_id {fid!r} is not a file this key uploaded",
                           "input_file_id")
        if row["purpose"] != "batch":
            raise ApiError(400, f"file {fid} has purpose '{row['purpose']}', not 'batch'",
                           "input_file_id")
        now = time.time()
        batch = {"id": f"batch_{secrets.token_hex(12)}", "key_name": key.name,
                 "endpoint": endpoint, "input_file_id": fid, "completion_window": window,
                 "status": "validating", "created_at": now, "expires_at": now + seconds,
                 "metadata": orjson.dumps(metadata).decode() if metadata else None,
                 "data_class": declared}
        await self.b.io(self.b.queue.create, batch)
        self.b.spawn(self.b.validate(batch["id"]))
        return web.json_response(await self._object(await self._reload(batch)))

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(await self._object(await self._batch(request)))

    async def cancel(self, request: web.Request) -> web.Response:
        row = await self._batch(request)
        moved = await self.b.io(self.b.queue.move, row["id"], "cancelling",
                                ["validating", "in_progress"], cancelling_at=time.time())
        if not moved and row["status"] not in ("cancelling", "cancelled"):
            raise ApiError(400, f"cannot cancel a batch that is {row['status']}", "batch_id")
        return web.json_response(await self._object(await self._reload(row)))

    async def list(self, request: web.Request) -> web.Response:
        key = self.auth.caller(request.headers)
        limit = _limit(request, 100, "20")
        owner = None if (not self.auth.keys or key.admin) else key.name
        rows = await self.b.io(self.b.queue.batches, owner, limit + 1,
                               request.query.get("after"))
        data = [await self._object(r) for r in rows[:limit]]
        return web.json_response({"object": "list", "data": data,
                                  "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None,
                                  "has_more": len(rows) > limit})


def _limit(request: web.Request, most: int, default: str) -> int:
    try:
        return min(most, max(1, int(request.query.get("limit", default))))
    except ValueError:
        raise ApiError(400, "limit must be a whole number", "limit") from None
