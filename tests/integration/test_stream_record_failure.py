"""The one relay's end when the ledger cannot take the record: every inbound API's stream
(chat completions, Anthropic's Messages, OpenAI's Responses) has sent its first bytes, so
the caller is told in the stream, in its own API's error event, and never sees the end
of a stream whose record is missing. The official SDKs read each stream."""

from __future__ import annotations

import sqlite3

import anthropic
import openai
import pytest

from tests.support import upstreams
from tests.support.configs import GPU, KEYS, sha
from tests.support.responses_upstreams import chat_app
from tests.support.servers import InProcessGateway


@pytest.fixture
def gateway(tmp_path):
    log: list = []
    with upstreams.serving(chat_app(log)) as url:
        gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/ledger.db
backends:
  - {{name: echo, url: "{url}", model: echo-m, hosting: self, gpu: {GPU}}}
routes: [{{alias: echo, backends: [echo]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
""", tmp_path)
        try:
            yield gw, tmp_path / "ledger.db"
        finally:
            gw.stop()


def _ledger_gone(path):
    with sqlite3.connect(path) as db:  # the ledger's table taken away under the gateway
        db.execute("ALTER TABLE ledger RENAME TO ledger_gone")


def test_a_record_that_fails_after_the_first_byte_is_told_in_each_stream(gateway):
    gw, path = gateway
    user = [{"role": "user", "content": "say two words"}]
    with openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0) as c:
        # recorded while the ledger is there: the stream ends as usual
        ok = [k.choices[0].delta.content for k in c.chat.completions.create(
            model="echo", messages=user, stream=True) if k.choices]
        assert "".join(x or "" for x in ok).strip() == "echo: say two words"
        _ledger_gone(path)
        with pytest.raises(openai.APIError) as chat:
            list(c.chat.completions.create(model="echo", messages=user, stream=True))
        events = list(c.responses.create(model="echo", input="say two words", stream=True))
    assert "ledger store is unavailable" in str(chat.value)
    types = [e.type for e in events]
    assert "response.output_text.delta" in types and types[-1] == "response.failed"
    assert "response.completed" not in types
    assert "ledger store is unavailable" in events[-1].response.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    messages = anthropic.Anthropic(base_url=gw.base, api_key=KEYS["app"], max_retries=0)
    try:
        with pytest.raises(anthropic.APIStatusError) as msg, messages.messages.stream(
                model="echo", max_tokens=20, messages=user) as stream:
            list(stream)
    finally:
        messages.close()
    assert "ledger store is unavailable" in str(msg.value)
