"""The smaller API gaps, through the official openai SDK (and litellm's client) against a
gateway in this process in front of a sim and an Anthropic-wire upstream:
``models.retrieve`` (a 404 for a model the key may not use), ``files.list`` pagination
(``limit``, ``after``, ``order``, ``purpose``) and ``files.delete`` on SQLite and
PostgreSQL, ``usage`` in stream chunks only when ``stream_options.include_usage`` asks
(then ``null`` on every chunk but the final one, whose ``choices`` is empty, as OpenAI's;
relayed, translated from Anthropic, or replayed by a cascade), and ``n`` > 1 /
``logprobs`` through an Anthropic backend: refused with a 400 naming the field when the
route has no other backend, served by the route's OpenAI-wire backend when it has one, and
no escalation of a cascade to a backend that cannot honour them."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from tests.support import upstreams
from tests.support.configs import GPU, KEYS, sha
from tests.support.servers import InProcessGateway, InProcessSim

MSG = [{"role": "user", "content": "say something short"}]


def config(sim: str, claude: str, store: str) -> str:
    return f"""
store: {store}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-x, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - {{alias: chat, backends: [llama]}}
  - {{alias: claude, backends: [claude]}}
  - {{alias: mixed, backends: [claude, llama]}}
  - {{alias: org/model-v1, backends: [llama]}}
  - {{alias: smart, backends: [llama, claude],
      cascade: {{first: [llama], then: [claude], min_mean_logprob: -0.5}}}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: narrow, sha256: {sha(KEYS['narrow'])}, aliases: [chat]}}
  - {{name: hr, sha256: {sha(KEYS['hr'])}}}
"""


class Stack:
    def __init__(self, tmp) -> None:
        self.claude_log: list[dict] = []
        self._claude = upstreams.serving(upstreams.anthropic_app(self.claude_log))
        claude = self._claude.__enter__()
        self.sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                "--time-scale", "0.001")
        self.gateway = InProcessGateway(config(self.sim.url, claude,
                                               f"sqlite:///{tmp}/l.db"), tmp)
        self.client = self.sdk("app")

    def sdk(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url, api_key=KEYS[key], max_retries=0)

    def stop(self) -> None:
        self.client.close()
        self.gateway.stop()
        self.sim.stop()
        self._claude.__exit__(None, None, None)

    def raw_stream(self, body: dict) -> list[dict]:
        """The chunks of a stream as the wire carries them (the SDK reads a missing
        ``usage`` and a null one alike)."""
        req = urllib.request.Request(
            f"{self.gateway.url}/chat/completions", data=json.dumps(
                {**body, "stream": True}).encode(),
            headers={"Authorization": f"Bearer {KEYS['app']}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            lines = resp.read().decode().splitlines()
        data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
        assert data[-1] == "[DONE]"
        return [json.loads(d) for d in data[:-1]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("api-gaps"))
    yield s
    s.stop()


def test_models_retrieve(stack):
    model = stack.client.models.retrieve("chat")
    assert model.id == "chat" and model.object == "model"
    assert stack.client.models.retrieve("org/model-v1").id == "org/model-v1"
    with pytest.raises(openai.NotFoundError) as err:
        stack.client.models.retrieve("no-such-alias")
    assert err.value.body["code"] == "model_not_found" and err.value.body["param"] == "model"
    with stack.sdk("narrow") as narrow:
        assert [m.id for m in narrow.models.list()] == ["chat"]
        assert narrow.models.retrieve("chat").id == "chat"
        with pytest.raises(openai.NotFoundError):  # a route the key may not use
            narrow.models.retrieve("claude")


@pytest.fixture(params=["sqlite", "postgresql"])
def files_gateway(request, stack, tmp_path):
    """A gateway of its own (files are per store) on SQLite or PostgreSQL."""
    store = (f"sqlite:///{tmp_path}/files.db" if request.param == "sqlite"
             else request.getfixturevalue("pg_url"))
    gw = InProcessGateway(config(stack.sim.url, "http://127.0.0.1:9/v1", store), tmp_path,
                          name="files")
    yield gw
    gw.stop()


def test_files_list_pages_and_delete(files_gateway):
    client = openai.OpenAI(base_url=files_gateway.url, api_key=KEYS["app"], max_retries=0)
    other = openai.OpenAI(base_url=files_gateway.url, api_key=KEYS["hr"], max_retries=0)
    with client, other:
        ids = [client.files.create(file=(f"{i}.jsonl", b"{}\n"), purpose="batch").id
               for i in range(3)]
        first = client.files.list(limit=2, order="asc")
        assert [f.id for f in first.data] == ids[:2] and first.has_more
        rest = client.files.list(limit=2, order="asc", after=ids[1])
        assert [f.id for f in rest.data] == ids[2:] and not rest.has_more
        newest = client.files.list(limit=2, order="desc")
        assert [f.id for f in newest.data] == ids[:0:-1] and newest.has_more
        assert [f.id for f in client.files.list(limit=2, after=ids[1])] == ids[:1]
        # the SDK's auto-pagination follows ``after`` page by page
        assert [f.id for f in client.files.list(limit=1, order="asc")] == ids
        assert [f.id for f in client.files.list(purpose="batch", order="asc")] == ids
        assert list(client.files.list(purpose="fine-tune")) == []
        assert list(other.files.list()) == []  # another key's files are not there for it
        with pytest.raises(openai.NotFoundError):
            other.files.delete(ids[0])
        with pytest.raises(openai.BadRequestError) as err:
            client.files.list(order="sideways")  # type: ignore[arg-type]
        assert err.value.body["param"] == "order"
        for fid in ids:
            deleted = client.files.delete(fid)
            assert deleted.deleted and deleted.id == fid
        with pytest.raises(openai.NotFoundError):
            client.files.delete(ids[0])
        assert list(client.files.list()) == []


@pytest.mark.parametrize("alias", ["chat", "claude", "smart"])
def test_no_usage_key_in_chunks_unless_asked(stack, alias):
    chunks = stack.raw_stream({"model": alias, "messages": MSG, "max_tokens": 8})
    assert len(chunks) >= 3
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)  # no usage chunk either
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


@pytest.mark.parametrize("alias", ["chat", "claude", "smart"])
def test_include_usage_puts_it_on_the_final_chunk_only(stack, alias):
    chunks = stack.raw_stream({"model": alias, "messages": MSG, "max_tokens": 8,
                               "stream_options": {"include_usage": True}})
    *body, last = chunks
    assert last["choices"] == [] and last["usage"]["prompt_tokens"] > 0
    assert last["usage"]["completion_tokens"] > 0
    assert all(c["choices"] and "usage" in c and c["usage"] is None for c in body)
    # the SDK reads the same
    stream = stack.client.chat.completions.create(
        model=alias, messages=MSG, max_tokens=8, stream=True,
        stream_options={"include_usage": True})
    got = list(stream)
    assert got[-1].usage is not None and got[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in got[:-1])


@pytest.mark.parametrize("asked", [{"n": 2}, {"logprobs": True},
                                   {"logprobs": True, "top_logprobs": 3}])
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_backend_refuses_what_it_cannot_give(stack, asked, stream):
    before = len(stack.claude_log)
    with pytest.raises(openai.BadRequestError) as err:
        answer = stack.client.chat.completions.create(model="claude", messages=MSG,
                                                      stream=stream, **asked)
        list(answer) if stream else None
    field = next(iter(asked))
    assert err.value.body["param"] == field
    assert err.value.body["code"] == "unsupported_parameter"
    assert "Anthropic" in err.value.body["message"]
    assert len(stack.claude_log) == before  # never sent, never silently dropped


def test_a_route_with_another_backend_serves_n_and_logprobs_there(stack):
    plain = stack.client.chat.completions.with_raw_response.create(
        model="mixed", messages=MSG, max_tokens=8)
    assert plain.headers["x-breakeven-backend"] == "claude"  # first in the route
    two = stack.client.chat.completions.with_raw_response.create(
        model="mixed", messages=MSG, max_tokens=8, n=2)
    assert two.headers["x-breakeven-backend"] == "llama"
    assert len(two.parse().choices) == 2
    lp = stack.client.chat.completions.with_raw_response.create(
        model="mixed", messages=MSG, max_tokens=4, logprobs=True, top_logprobs=2)
    assert lp.headers["x-breakeven-backend"] == "llama"
    assert lp.parse().choices[0].logprobs is not None


def test_a_cascade_keeps_its_first_answer_when_the_stronger_backend_cannot_give_n(stack):
    """A weak first answer (sim_confidence) would escalate to the Anthropic backend, which
    cannot give n=2: the cascade keeps the first answer instead of failing the call."""
    before = len(stack.claude_log)
    raw = stack.client.chat.completions.with_raw_response.create(
        model="smart", messages=MSG, max_tokens=8, n=2, extra_body={"sim_confidence": 0.2})
    assert raw.headers["x-breakeven-backend"] == "llama"
    assert len(raw.parse().choices) == 2 and len(stack.claude_log) == before
    weak = stack.client.chat.completions.with_raw_response.create(
        model="smart", messages=MSG, max_tokens=8, extra_body={"sim_confidence": 0.2})
    assert weak.headers["x-breakeven-backend"] == "claude"  # without n it does escalate


# litellm's own pydantic models warn as it builds them: not the gateway's concern
@pytest.mark.filterwarnings("ignore:.* the `ReadOnly` qualifier:UserWarning")
def test_litellm_client(stack, monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetched at import
    litellm = pytest.importorskip("litellm")
    common = {"api_base": stack.gateway.url, "api_key": KEYS["app"], "max_tokens": 8,
              "messages": MSG}
    answer = litellm.completion(model="openai/chat", **common)
    assert answer.choices[0].message.content
    parts = list(litellm.completion(model="openai/claude", stream=True, **common))
    assert "".join(p.choices[0].delta.content or "" for p in parts if p.choices)
    with pytest.raises(litellm.BadRequestError) as err:
        litellm.completion(model="openai/claude", n=2, **common)
    assert "n" in str(err.value) and "Anthropic" in str(err.value)
    assert litellm.completion(model="openai/mixed", n=2, **common).choices[1].message
