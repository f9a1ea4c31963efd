"""``/v1/responses`` under the gateway's rules: a class that may not be stored, retention
(the store on SQLite and PostgreSQL, on an injected clock), a stream that breaks after it
began (``response.failed``), fallback before the first byte, and an Anthropic backend
reached through the chat translation."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from breakeven.store import open_store
from breakeven.store.responses import PURGE_S, Conversations
from tests.support import upstreams
from tests.support.configs import GPU, KEYS, sha
from tests.support.ledgers import ledger
from tests.support.responses_upstreams import chat_app
from tests.support.servers import InProcessGateway, free_port

SECRET = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"


def _config(store: str, faulty: str, echo: str, claude: str) -> str:
    hosted = "{input_per_mtok: 3, output_per_mtok: 15}"
    return f"""
store: {store}
limits: {{circuit_failures: 100}}
backends:
  - {{name: dead, url: "http://127.0.0.1:{free_port()}/v1", model: m, hosting: self,
      gpu: {GPU}}}
  - {{name: faulty, url: "{faulty}", model: m, hosting: self, gpu: {GPU}}}
  - {{name: echo, url: "{echo}", model: echo-m, hosting: self, gpu: {GPU}}}
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-x, hosting: hosted,
      price: {hosted}}}
routes:
  - {{alias: echo, backends: [echo]}}
  - {{alias: faulty, backends: [faulty]}}
  - {{alias: fallback, backends: [dead, echo]}}
  - {{alias: claude, backends: [claude]}}
  - {{alias: cascade, backends: [echo, claude], cascade: {{first: [echo], then: [claude],
      min_mean_logprob: null}}}}
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
"""


@pytest.fixture
def rig(tmp_path):
    faults, log, claude_log = upstreams.Faults(), [], []
    servers = [upstreams.serving(upstreams.faulty_app(faults)),
               upstreams.serving(chat_app(log)),
               upstreams.serving(upstreams.anthropic_app(claude_log))]
    urls = [s.__enter__() for s in servers]
    store = f"sqlite:///{tmp_path}/ledger.db"
    gateway = InProcessGateway(_config(store, *urls), tmp_path)
    gateway.faults, gateway.log, gateway.claude_log, gateway.store = (
        faults, log, claude_log, store)
    yield gateway
    gateway.stop()
    for s in servers:
        s.__exit__(None, None, None)


def _client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url, api_key=KEYS["app"], max_retries=0)


def test_a_class_that_may_not_be_stored_is_answered_not_kept(rig):
    with _client(rig) as c:
        out = c.responses.create(model="echo", input=f"rotate {SECRET} please")
        assert out.output_text.startswith("echo: rotate")  # self-hosted: answered
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(out.id)
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(model="echo", input="again", previous_response_id=out.id)
    assert "data class 'secret'" in err.value.message and "never_store" in err.value.message
    assert err.value.body["code"] == "previous_response_not_stored"


def test_a_stream_broken_after_it_began_ends_with_response_failed(rig):
    rig.faults.mode = "cut"
    with _client(rig) as c:
        events = list(c.responses.create(model="faulty", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in types and types[-1] == "response.failed"
    assert events[-1].response.status == "failed" and events[-1].response.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    rows = ledger(rig.store)
    assert rows[-1]["status"] == 502 and "broken" in rows[-1]["error"]


def test_a_failure_before_the_first_byte_is_replaced_unseen(rig):
    with _client(rig) as c, c.responses.stream(model="fallback", input="one two") as stream:
        final = stream.get_final_response()
    assert final.output_text.strip() == "echo: one two"
    row = ledger(rig.store)[-1]
    assert row["backend"] == "echo" and row["attempts"] == 2 and row["fallbacks"] == 1


def test_through_an_anthropic_backend(rig):
    with _client(rig) as c:
        plain = c.responses.create(model="claude", input="hello claude",
                                   instructions="be nice")
        tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
        called = c.responses.create(model="claude", input="weather?", tools=tools)
        with c.responses.stream(model="claude", input="stream me") as stream:
            streamed = stream.get_final_response()
    assert plain.output_text == "Claude says: hello claude"
    assert rig.claude_log[0]["system"] in ("be nice", [{"type": "text", "text": "be nice"}])
    call = called.output[0]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}
    assert streamed.output_text == "Claude says: stream me"
    assert streamed.usage.input_tokens > 0 and streamed.usage.output_tokens > 0


def test_retention_expires_rows_and_every_read_is_per_key(store_url):
    store = open_store(store_url)
    try:
        rows = Conversations(store)
        content = {"response": {"id": "resp_a"}, "input": [], "context": []}
        rows.put("resp_a", "app", "general", 10.0, content, now=100.0)
        rows.put("resp_b", "app", "secret", 10.0, None, "not stored", now=105.0)
        assert rows.get("resp_a", "app", now=109.0).content == content
        assert rows.get("resp_a", "other", now=109.0) is None  # another key's id
        assert rows.get("resp_b", "app", now=109.0).withheld == "not stored"
        assert rows.get("resp_a", "app", now=110.0) is None  # past its retention
        rows.put("resp_c", "app", "general", 10.0, content, now=112.0)  # within a minute
        assert len(store.query("SELECT id FROM responses")) == 3  # unread, not yet deleted
        rows.put("resp_d", "app", "general", 10.0, content, now=100.0 + PURGE_S + 1)
        left = store.query("SELECT id FROM responses ORDER BY id")
        assert left == [("resp_d",)]  # the first write a minute on deleted the expired
        assert rows.purge(now=500.0) == 1
        assert not rows.delete("resp_d", "app")
    finally:
        asyncio.run(store.close())


def test_responses_kept_together_commit_together_and_a_bad_one_fails_alone(store_url):
    """SQLite groups the Responses kept in one loop turn into one transaction; a row that
    cannot be written (here an id already stored) fails alone, the others are kept."""
    store = open_store(store_url)
    rows = Conversations(store)
    content = {"response": {"id": "x"}, "input": [], "context": []}

    async def keep_three() -> list[BaseException | None]:
        await rows.keep("resp_dup", "app", "general", 60.0, content)
        kept = await asyncio.gather(*(rows.keep(rid, "app", "general", 60.0, content)
                                      for rid in ("resp_1", "resp_dup", "resp_2")),
                                    return_exceptions=True)
        await store.close()
        return kept

    first, dup, second = asyncio.run(keep_three())
    assert first is None and second is None and isinstance(dup, Exception)
    again = open_store(store_url)
    try:
        assert sorted(r[0] for r in again.query("SELECT id FROM responses")) == [
            "resp_1", "resp_2", "resp_dup"]
    finally:
        asyncio.run(again.close())


def test_a_cascade_buffers_then_streams_the_events(rig):
    with _client(rig) as c:
        with c.responses.stream(model="cascade", input="one two") as stream:
            events = list(stream)
            final = stream.get_final_response()
        plain = c.responses.create(model="cascade", input="three")
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "echo: one two" and plain.output_text == "echo: three"
    assert rig.claude_log == []  # the open model's answer was kept
    assert rig.log[-2]["stream"] is False  # a cascade asks without streaming


def test_a_store_that_cannot_keep_the_response_is_a_clear_error(rig, tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.db") as db:  # the table gone under the gateway
        db.execute("DROP TABLE responses")
    with _client(rig) as c:
        with pytest.raises(openai.APIStatusError) as err:
            c.responses.create(model="echo", input="keep me")
        assert err.value.status_code == 503 and err.value.body["code"] == "store_unavailable"
        events = list(c.responses.create(model="echo", input="stream me", stream=True))
        kept = c.responses.create(model="echo", input="not kept", store=False)
    assert events[-1].type == "response.failed" and "not stored" in \
        events[-1].response.error.message
    assert kept.output_text == "echo: not kept"  # store: false needs no store
    assert [r["status"] for r in ledger(rig.store)[-3:]] == [503, 503, 200]
