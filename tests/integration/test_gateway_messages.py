"""``/v1/messages`` and ``/v1/messages/count_tokens`` through a real gateway (in this
process), with the official ``anthropic`` SDK as the client: translated to a simulated
vLLM and an OpenAI-wire upstream that logs what it got, passed through to an upstream that
speaks Anthropic's wire format; the same boundary, ledger, budgets, fallback and error
edge as chat completions, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from tests.support import upstreams
from tests.support.configs import KEYS, sha
from tests.support.servers import InProcessGateway, InProcessSim

TOOLS = [{"name": "weather", "description": "the weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
HI = [{"role": "user", "content": "hello there"}]


def config(sim: str, flaky: str, claude: str, store: str) -> str:
    gpu = "{gpu: a10g, usd_per_gpu_hour: 1.2, capacity_tokens_per_s: 2000}"
    quick = "{connect_s: 1, first_byte_s: 1, total_s: 3}"
    return f"""
store: {store}
limits: {{circuit_failures: 100}}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {gpu}}}
  - {{name: flaky, url: "{flaky}", model: faulty, hosting: self, gpu: {gpu},
      timeouts: {quick}}}
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-upstream,
      hosting: hosted, price: {{input_per_mtok: 3, output_per_mtok: 15}},
      api_key_env: TEST_ANTHROPIC_KEY}}
routes:
  - {{alias: local, backends: [llama]}}
  - {{alias: claude, backends: [claude]}}
  - {{alias: fallback, backends: [flaky, llama]}}
  - {{alias: flaky, backends: [flaky], max_attempts: 1}}
  - {{alias: mixed, backends: [claude, llama]}}
  - {{alias: smart, backends: [llama, claude], cascade: {{first: [llama], then: [claude]}}}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: hr, sha256: {sha(KEYS['hr'])}, data_class: pii}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
  - {{name: tiny, sha256: {sha(KEYS['tiny'])}, monthly_budget_usd: 0.0000001}}
"""


class Stack:
    def __init__(self, tmp, store: str) -> None:
        self.sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                "--time-scale", "0.01", "--seed", "3")
        self.faults = upstreams.Faults()
        self.claude_log: list[dict] = []
        self.claude_headers: list[dict] = []
        self._flaky = upstreams.serving(upstreams.faulty_app(self.faults))
        self._claude = upstreams.serving(upstreams.anthropic_app(self.claude_log,
                                                                 self.claude_headers))
        flaky, claude = self._flaky.__enter__(), self._claude.__enter__()
        self.gateway = InProcessGateway(config(self.sim.url, flaky, claude, store), tmp,
                                        env={"TEST_ANTHROPIC_KEY": "sk-ant-secret-123"})
        self.clients: list[anthropic.Anthropic] = []

    def client(self, key: str = "app", **kw) -> anthropic.Anthropic:
        c = anthropic.Anthropic(base_url=self.gateway.base, api_key=KEYS.get(key, key),
                                max_retries=0, **kw)
        self.clients.append(c)
        return c

    def ledger(self, limit: int = 5) -> list[dict]:
        req = urllib.request.Request(f"{self.gateway.base}/admin/ledger?limit={limit}",
                                     headers={"x-api-key": KEYS["admin"]})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["data"]

    def post(self, path: str, body: object, key: str = "app",
             headers: dict | None = None) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(f"{self.gateway.base}{path}", method="POST",
                                     data=json.dumps(body).encode(), headers={
                                         "x-api-key": KEYS[key], "anthropic-version": "2023-06-01",
                                         "content-type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.gateway.stop()
        self._flaky.__exit__(None, None, None)
        self._claude.__exit__(None, None, None)
        self.sim.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("messages"),
              f"sqlite:///{tmp_path_factory.mktemp('ledger')}/ledger.db")
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _healthy(stack):
    stack.faults.mode = "ok"


@pytest.mark.parametrize("alias", ["local", "claude"])
def test_create_answers_in_the_messages_shape_and_is_recorded(stack, alias):
    msg = stack.client().messages.create(model=alias, max_tokens=12, system="be brief",
                                         messages=HI, metadata={"user_id": "u-7"})
    assert msg.type == "message" and msg.role == "assistant" and msg.model == alias
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason in ("end_turn", "max_tokens")
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    rec = stack.ledger(1)[0]
    assert rec["decision"]["endpoint"] == "messages" and rec["status"] == 200
    assert (rec["tokens_in"], rec["tokens_out"]) == (msg.usage.input_tokens,
                                                     msg.usage.output_tokens)
    assert rec["backend"] == ("llama" if alias == "local" else "claude")


def test_an_anthropic_backend_gets_the_body_natively(stack):
    stack.client().messages.create(
        model="claude", max_tokens=9, stop_sequences=["END"], extra_body={"top_k": 5},
        system=[{"type": "text", "text": "sys"}], messages=HI)
    sent = stack.claude_log[-1]
    assert sent["model"] == "claude-upstream" and sent["system"] == [{"type": "text",
                                                                      "text": "sys"}]
    assert sent["stop_sequences"] == ["END"] and sent["top_k"] == 5
    assert sent["messages"] == HI and "stream" not in sent


def test_an_openai_wire_backend_gets_the_translation(stack):
    stack.client().messages.create(
        model="flaky", max_tokens=9, stop_sequences=["END"], system="sys", tools=TOOLS,
        tool_choice={"type": "any"}, extra_body={"temperature": 0.3}, messages=HI)
    sent = stack.faults.log[-1]
    assert sent["model"] == "faulty" and sent["max_tokens"] == 9 and sent["stop"] == ["END"]
    assert sent["messages"] == [{"role": "system", "content": "sys"}, *HI]
    assert sent["tool_choice"] == "required" and sent["temperature"] == 0.3
    assert sent["tools"][0]["function"]["name"] == "weather"


@pytest.mark.parametrize("alias", ["local", "claude"])
def test_stream_text_and_the_final_message(stack, alias):
    with stack.client().messages.stream(model=alias, max_tokens=10, messages=HI) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.content[0].text == text
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    rec = stack.ledger(1)[0]
    assert rec["stream"] == 1 and rec["decision"]["endpoint"] == "messages"
    assert rec["tokens_in"] == final.usage.input_tokens and rec["ttft_ms"] > 0


def _events(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block.strip():
            name, data = block.split("\n", 1)
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


@pytest.mark.parametrize("alias", ["local", "claude"])
def test_the_stream_bytes_are_anthropics_events_in_order(stack, alias):
    status, headers, raw = stack.post("/v1/messages", {
        "model": alias, "max_tokens": 6, "stream": True, "messages": HI})
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    assert headers["request-id"] == headers["x-request-id"]
    events = _events(raw)
    assert all(name == data["type"] for name, data in events)  # event: matches the type
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names and names.index("content_block_start") < names.index(
        "content_block_delta") < names.index("content_block_stop")
    assert events[0][1]["message"]["usage"]["input_tokens"] > 0  # never 0
    assert events[0][1]["message"]["model"] == alias
    assert {d["index"] for n, d in events if n.startswith("content_block")} == {0}


@pytest.mark.parametrize("alias", ["local", "claude"])
def test_tools_create_and_stream_with_input_json_deltas(stack, alias):
    client = stack.client()
    msg = client.messages.create(model=alias, max_tokens=60, tools=TOOLS,
                                 tool_choice={"type": "tool", "name": "weather"},
                                 messages=[{"role": "user", "content": "weather in Paris?"}])
    use = next(b for b in msg.content if b.type == "tool_use")
    assert use.name == "weather" and isinstance(use.input["city"], str) and use.id
    assert msg.stop_reason == "tool_use"
    deltas = []
    with client.messages.stream(model=alias, max_tokens=60, tools=TOOLS,
                                tool_choice={"type": "any"},
                                messages=[{"role": "user", "content": "weather?"}]) as s:
        for event in s:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas.append(event.delta.partial_json)
        final = s.get_final_message()
    block = next(b for b in final.content if b.type == "tool_use")
    assert deltas and json.loads("".join(deltas)) == block.input and "city" in block.input
    follow = client.messages.create(model=alias, max_tokens=8, tools=TOOLS, messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": block.id,
                                           "name": "weather", "input": block.input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                      "content": "sunny"}]}])
    assert follow.content


def test_a_wrong_or_missing_key_is_anthropics_401(stack):
    with pytest.raises(anthropic.AuthenticationError) as err:
        stack.client("wrong-key").messages.create(model="local", max_tokens=5, messages=HI)
    assert err.value.body["error"]["type"] == "authentication_error"
    assert err.value.response.headers["request-id"]
    status, _, _ = stack.post("/v1/messages/count_tokens", {"model": "local",
                                                            "messages": HI})
    assert status == 200  # the same key in x-api-key is let in


def test_x_api_key_and_api_key_work_on_chat_completions_too(stack):
    for header in ("x-api-key", "api-key"):
        with openai.OpenAI(base_url=stack.gateway.url, api_key="unused", max_retries=0,
                           default_headers={"Authorization": "", header: KEYS["app"]}) as c:
            out = c.chat.completions.create(model="local", max_tokens=3, messages=HI)
        assert out.choices[0].message.content
    with openai.OpenAI(base_url=stack.gateway.url, api_key="unused", max_retries=0,
                       default_headers={"Authorization": "", "api-key": "nope"}) as c, \
            pytest.raises(openai.AuthenticationError) as err:
        c.chat.completions.create(model="local", max_tokens=3, messages=HI)
    assert err.value.body["code"] == "invalid_api_key"  # OpenAI's shape on its endpoint


def test_max_tokens_missing_is_a_bad_request(stack):
    with pytest.raises(anthropic.BadRequestError) as err:  # the SDK itself insists on it
        stack.client().post("/v1/messages", body={"model": "local", "messages": HI},
                            cast_to=anthropic.types.Message)
    assert err.value.body["error"] == {"type": "invalid_request_error",
                                       "message": "max_tokens: is required (a whole "
                                                  "number of at least 0)"}


@pytest.mark.parametrize(("body", "field"), [
    ({"max_tokens": "5"}, "max_tokens"),
    ({"messages": [{"role": "user", "content": {"text": "x"}}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
     "messages[0].content[0].text"),
    ({"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": []}]}]},
     "messages[0].content[0].input"),
    ({"system": {"text": "x"}}, "system"),
    ({"tools": [{"name": 3, "input_schema": {}}]}, "tools[0].name"),
    ({"tool_choice": {"type": "required"}}, "tool_choice"),
    ({"stop_sequences": [1]}, "stop_sequences"),
    ({"metadata": "x"}, "metadata"),
    ({"temperature": [1]}, "temperature"),
    ({"stream": 1}, "stream"),
    ({"model": 7}, "model"),
    ({"unknown_field": 1}, "unknown_field"),
])
def test_a_malformed_field_is_a_400_naming_it_never_a_500(stack, body, field):
    for alias in ("local", "claude"):
        status, headers, raw = stack.post("/v1/messages", {
            "model": alias, "max_tokens": 5, "messages": HI, **body})
        answer = json.loads(raw)
        assert status == 400, raw
        assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
        assert field in answer["error"]["message"] and answer["request_id"] == \
            headers["request-id"]
    status, _, raw = stack.post("/v1/messages", b"not json".decode())
    assert status == 400 and json.loads(raw)["type"] == "error"


def test_fallback_before_the_first_byte_is_unseen(stack):
    stack.faults.mode = "500"
    msg = stack.client().messages.create(model="fallback", max_tokens=5, messages=HI)
    assert msg.content[0].text
    with stack.client().messages.stream(model="fallback", max_tokens=5, messages=HI) as s:
        assert "".join(s.text_stream)
    tried = [a["backend"] for a in stack.ledger(1)[0]["decision"]["attempts"]]
    assert tried == ["flaky", "llama"]


def test_a_failure_before_the_first_byte_is_a_real_http_error(stack):
    stack.faults.mode = "503"
    with pytest.raises(anthropic.InternalServerError) as err, stack.client().messages.stream(
            model="flaky", max_tokens=5, messages=HI) as s:
        s.get_final_message()
    assert err.value.status_code == 502 and err.value.body["error"]["type"] == "api_error"


def test_a_failure_after_the_stream_started_is_an_error_event(stack):
    stack.faults.mode = "cut"
    status, _, raw = stack.post("/v1/messages", {"model": "flaky", "max_tokens": 5,
                                                 "stream": True, "messages": HI})
    assert status == 200
    events = _events(raw)
    assert events[0][0] == "message_start" and events[-1][0] == "error"
    assert events[-1][1]["error"]["type"] == "api_error"
    assert stack.ledger(1)[0]["status"] == 502
    with pytest.raises(anthropic.APIStatusError) as err, stack.client().messages.stream(
            model="flaky", max_tokens=5, messages=HI) as s:
        s.get_final_message()  # the SDK raises on the error event, after text began
    assert err.value.body["error"]["type"] == "api_error"


def test_count_tokens_from_a_backend_that_can_count(stack):
    client = stack.client()
    local = client.messages.count_tokens(model="local", messages=HI, system="sys")
    assert local.input_tokens > 2
    claude = client.messages.count_tokens(model="claude", messages=HI)
    assert claude.input_tokens == 5 and stack.claude_log[-1]["model"] == "claude-upstream"
    # the flaky upstream has no /tokenize: the next backend counts
    assert client.messages.count_tokens(model="fallback", messages=HI, system="sys"
                                        ).input_tokens == local.input_tokens
    tried = [a["outcome"] for a in stack.ledger(1)[0]["decision"]["attempts"]]
    assert tried == ["unsupported", "ok"]
    rec = stack.ledger(1)[0]
    assert rec["decision"]["endpoint"] == "messages/count_tokens" and rec["usd"] == 0
    with pytest.raises(anthropic.APIStatusError) as err:
        client.messages.count_tokens(model="flaky", messages=HI)
    assert err.value.status_code == 501 and "can count tokens" in err.value.message


def test_the_boundary_holds_on_messages(stack):
    before = len(stack.claude_log)
    secret = "my card is 4111 1111 1111 1111"
    msg = stack.client().messages.create(model="mixed", max_tokens=5, messages=[
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                           "input": {"note": secret}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                      "content": "ok"}]}])
    assert msg.content and stack.claude_log[before:] == []  # the card stayed self-hosted
    assert stack.ledger(1)[0]["backend"] == "llama"
    stack.client("hr").messages.create(model="mixed", max_tokens=5, messages=HI)
    assert stack.claude_log[before:] == [] and stack.ledger(1)[0]["data_class"] == "pii"
    stack.client().messages.create(model="mixed", max_tokens=5, messages=HI)
    assert len(stack.claude_log) == before + 1  # plain text may go hosted


def test_budgets_and_cascades_are_refused_in_anthropics_shape(stack):
    stack.client("tiny").messages.create(model="claude", max_tokens=5, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as err:
        stack.client("tiny").messages.create(model="claude", max_tokens=5, messages=HI)
    assert err.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.BadRequestError) as err:
        stack.client().messages.create(model="smart", max_tokens=5, messages=HI)
    assert "cascade" in err.value.message
    with pytest.raises(anthropic.NotFoundError):
        stack.client().messages.create(model="nope", max_tokens=5, messages=HI)


@pytest.mark.postgres
def test_messages_on_a_postgresql_ledger(tmp_path, pg_url):
    s = Stack(tmp_path, pg_url)
    try:
        msg = s.client().messages.create(model="claude", max_tokens=5, messages=HI)
        with s.client().messages.stream(model="local", max_tokens=5, messages=HI) as st:
            final = st.get_final_message()
        rows = s.ledger(2)
        assert [r["decision"]["endpoint"] for r in rows] == ["messages", "messages"]
        assert {r["tokens_in"] for r in rows} == {msg.usage.input_tokens,
                                                  final.usage.input_tokens}
    finally:
        s.stop()


def test_failed_x_api_key_and_api_key_count_against_the_same_throttle(tmp_path):
    faults = upstreams.Faults()
    with upstreams.serving(upstreams.faulty_app(faults)) as flaky:
        gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/ledger.db
limits: {{auth_failures_per_s: 0.01, auth_failure_burst: 3}}
backends:
  - {{name: flaky, url: "{flaky}", model: faulty, hosting: self,
      gpu: {{gpu: a10g, usd_per_gpu_hour: 1, capacity_tokens_per_s: 1000}}}}
routes: [{{alias: chat, backends: [flaky]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
""", tmp_path)
        try:
            bad = [anthropic.Anthropic(base_url=gw.base, api_key=f"wrong{i}", max_retries=0)
                   for i in range(2)]
            for client in bad:
                with pytest.raises(anthropic.AuthenticationError):
                    client.messages.create(model="chat", max_tokens=3, messages=HI)
            with openai.OpenAI(base_url=gw.url, api_key="unused", max_retries=0,
                               default_headers={"Authorization": "", "api-key": "x"}) as azure:
                with pytest.raises(openai.AuthenticationError):
                    azure.chat.completions.create(model="chat", max_tokens=3, messages=HI)
                with pytest.raises(openai.RateLimitError) as err:  # the bucket is empty now
                    azure.chat.completions.create(model="chat", max_tokens=3, messages=HI)
            assert err.value.body["code"] == "auth_throttled"
            good = anthropic.Anthropic(base_url=gw.base, api_key=KEYS["app"], max_retries=0)
            with pytest.raises(anthropic.RateLimitError) as throttled:  # even the right key
                good.messages.create(model="chat", max_tokens=3, messages=HI)
            assert throttled.value.body["error"]["type"] == "rate_limit_error"
            for client in (*bad, good):
                client.close()
        finally:
            gw.stop()


def test_structured_output_through_the_engine_and_inference_geo_refused(stack):
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    msg = stack.client().messages.create(
        model="local", max_tokens=40, messages=HI,
        output_config={"format": {"type": "json_schema", "schema": schema}})
    assert set(json.loads(msg.content[0].text)) == {"city"}
    with pytest.raises(anthropic.BadRequestError) as err:
        stack.client().messages.create(model="claude", max_tokens=5, messages=HI,
                                       inference_geo="us")
    assert "residency" in err.value.message


def test_stop_sequences_reach_the_engine_and_cut_the_answer(stack):
    client = stack.client()
    ask = {"model": "local", "max_tokens": 30, "messages": HI,
           "extra_body": {"temperature": 0}}  # the sim answers a prompt the same each time
    text = client.messages.create(**ask).content[0].text
    word = text.split()[3]
    stopped = client.messages.create(**ask, stop_sequences=[f" {word}"])
    cut = stopped.content[0].text
    assert text.startswith(cut) and len(cut) < len(text) and f" {word}" not in cut
    # the sim names the stop string it met, as vLLM does: Anthropic's stop_sequence
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", f" {word}")
    with client.messages.stream(**ask, stop_sequences=[f" {word}"]) as s:
        final = s.get_final_message()
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", f" {word}")
    assert final.content[0].text == cut
    assert stack.ledger(1)[0]["decision"]["params"]["stop_sequences"] == [f" {word}"]


def test_pseudonymised_for_a_hosted_backend_and_restored_in_answers_and_streams(tmp_path):
    log: list[dict] = []
    faults = upstreams.Faults()
    with upstreams.serving(upstreams.anthropic_app(log)) as claude, \
            upstreams.serving(upstreams.faulty_app(faults)) as cloud:
        gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/ledger.db
backends:
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-upstream, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
  - {{name: cloud, url: "{cloud}", model: gpt, hosting: hosted,
      price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes: [{{alias: claude, backends: [claude]}}, {{alias: cloud, backends: [cloud]}}]
data_classes:
  pii: {{hosting: [self, hosted], action: pseudonymise}}
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
""", tmp_path)
        ask = [{"role": "user", "content": [{"type": "text",
                                             "text": "refund jane.doe@example.com"}]}]
        try:
            with anthropic.Anthropic(base_url=gw.base, api_key=KEYS["app"],
                                     max_retries=0) as c:
                out = c.messages.create(model="claude", max_tokens=20, messages=ask,
                                        system="for jane.doe@example.com")
                with c.messages.stream(model="claude", max_tokens=20, messages=ask) as s:
                    streamed = "".join(s.text_stream)
                c.messages.create(model="cloud", max_tokens=20, messages=ask)
        finally:
            gw.stop()
    assert all("jane.doe" not in json.dumps(body) for body in (*log, *faults.log))
    assert "[EMAIL_1]" in json.dumps(log[0]["system"]) and "[EMAIL_1]" in json.dumps(
        faults.log[0]["messages"])
    assert out.content[0].text == "Claude says: refund jane.doe@example.com"  # restored
    assert streamed == "Claude says: refund jane.doe@example.com"


def test_anthropic_beta_reaches_an_anthropic_backend_and_nothing_else_does(stack):
    beta = "context-management-2025-06-27, prompt-caching-scope-2026-01-05"
    client = stack.client(default_headers={"anthropic-beta": beta, "x-custom": "no"})
    managed = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    client.messages.create(model="claude", max_tokens=5, messages=HI,
                           extra_body={"context_management": managed})
    with client.messages.stream(model="claude", max_tokens=5, messages=HI) as s:
        s.get_final_message()
    client.messages.count_tokens(model="claude", messages=HI)
    sent = stack.claude_headers[-3:]
    assert [h.get("anthropic-beta") for h in sent] == [beta] * 3
    assert all("x-custom" not in h and h["x-api-key"] == "sk-ant-secret-123" for h in sent)
    assert stack.claude_log[-3]["context_management"] == managed  # passed through
    assert client.messages.create(model="local", max_tokens=5, messages=HI,
                                  extra_body={"context_management": managed}).content
    status, _, raw = stack.post("/v1/messages", {"model": "claude", "max_tokens": 5,
                                                 "messages": HI}, headers={
        "anthropic-beta": "bad beta; x"})
    assert status == 400 and "anthropic-beta" in json.loads(raw)["error"]["message"]
