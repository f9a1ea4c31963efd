"""``/v1/files`` through the official openai SDK: content stored and streamed in bounded
chunks, ``files.list`` and ``files.delete``, the per-key quota and the file size limit,
and expiry (``batch.file_ttl_s``) on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import openai
import pytest

from breakeven.store import open_store
from breakeven.store.batches import CHUNK_BYTES, Queue
from tests.support import upstreams
from tests.support.limits import KEYS, gateway, priced_upstream, sha


def config(local: str, batch: str = "") -> str:
    return f"""
store: {{store}}
backends:
  - {{name: local, url: "{local}", model: m, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 1000}}}}
routes:
  - {{alias: chat, backends: [local]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: other, sha256: {sha(KEYS['other'])}}}
batch: {{max_file_bytes: 8000000, max_file_bytes_per_key: 10000000{batch}}}
"""


def test_files_create_list_content_delete_with_the_sdk(tmp_path):
    app, _ = priced_upstream()
    data = bytes(range(256)) * (3 * CHUNK_BYTES // 256 + 1000)  # a bit over 3 chunks
    with upstreams.serving(app) as local, \
            gateway(config(local, ", file_ttl_s: 3600"), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        other = openai.OpenAI(base_url=gw.url, api_key=KEYS["other"], max_retries=0)
        try:
            before = time.time()
            f = client.files.create(file=("in.jsonl", data), purpose="batch")
            g = client.files.create(file=("small.jsonl", b"{}\n"), purpose="batch")
            assert f.bytes == len(data) and f.expires_at is not None
            assert before + 3600 - 5 <= f.expires_at <= time.time() + 3600 + 5
            assert client.files.content(f.id).read() == data
            chunks = gw.ledger("SELECT COUNT(*), MAX(LENGTH(data)) FROM file_chunks "
                               "WHERE file_id = ?", f.id)[0]
            assert chunks == (4, CHUNK_BYTES)  # never one blob of the whole file
            assert {x.id for x in client.files.list()} == {f.id, g.id}
            page = client.files.list(limit=1)
            assert len(page.data) == 1 and page.has_more
            assert [x.id for x in other.files.list()] == []  # another key sees none
            with pytest.raises(openai.NotFoundError):
                other.files.delete(f.id)
            deleted = client.files.delete(f.id)
            assert deleted.deleted and deleted.id == f.id
            with pytest.raises(openai.NotFoundError):
                client.files.retrieve(f.id)
            assert [x.id for x in client.files.list()] == [g.id]
            assert gw.ledger("SELECT COUNT(*) FROM file_chunks WHERE file_id = ?",
                             f.id) == [(0,)]
        finally:
            client.close()
            other.close()


def test_the_file_limit_and_the_key_quota_refuse_and_keep_nothing(tmp_path):
    app, _ = priced_upstream()
    with upstreams.serving(app) as local, gateway(config(local), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            with pytest.raises(openai.APIStatusError) as too_big:
                client.files.create(file=("big.jsonl", b"x" * 8_000_001), purpose="batch")
            assert too_big.value.status_code == 413
            assert too_big.value.body["code"] == "file_too_large"
            kept = client.files.create(file=("a.jsonl", b"y" * 6_000_000), purpose="batch")
            with pytest.raises(openai.APIStatusError) as quota:
                client.files.create(file=("b.jsonl", b"z" * 5_000_000), purpose="batch")
            assert quota.value.status_code == 413
            assert quota.value.body["code"] == "file_quota_exceeded"
            assert "max_file_bytes_per_key" in quota.value.body["message"]
            assert [x.id for x in client.files.list()] == [kept.id]
            # the refused uploads left no chunks behind
            assert gw.ledger("SELECT COUNT(DISTINCT file_id) FROM file_chunks") == [(1,)]
            client.files.delete(kept.id)  # room again
            client.files.create(file=("b.jsonl", b"z" * 5_000_000), purpose="batch")
        finally:
            client.close()


def test_expired_files_are_found_and_deleted(store_url):
    import asyncio

    store = open_store(store_url)
    try:
        q = Queue(store)
        now = time.time()
        q.save_file("file-old", "app", "batch", "old.jsonl", b"a" * (CHUNK_BYTES + 1),
                    now - 1)
        q.save_file("file-new", "app", "batch", "new.jsonl", b"b", now + 3600)
        q.save_file("file-kept", "app", "batch", "kept.jsonl", b"c", None)
        assert q.expired_files(now) == ["file-old"]
        assert q.content("file-old") == b"a" * (CHUNK_BYTES + 1)
        assert q.used_bytes("app") == CHUNK_BYTES + 3
        assert q.delete_file("file-old") and not q.delete_file("file-old")
        assert q.chunk("file-old", 0) is None and q.expired_files(now) == []
        assert {f["id"] for f in q.files("app", None, 10, None)} == {"file-kept", "file-new"}
        q.put_chunk("file-dead", 0, b"half an upload")  # its process died before the row
        assert q.drop_orphans(now - 3600) == 0  # too recent: may still be uploading
        assert q.drop_orphans(time.time() + 1) == 1
        assert q.chunk("file-new", 0) == b"b"
    finally:
        asyncio.run(store.close())
