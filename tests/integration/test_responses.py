"""``/v1/responses`` through a gateway in this process, with the official openai SDK as the
client: in front of the simulator, a recording chat upstream (what the backend was sent)
and a backend that serves the Responses API itself; the store on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import openai
import pytest
from pydantic import BaseModel

from tests.support import upstreams
from tests.support.configs import GPU, KEYS, sha
from tests.support.ledgers import ledger
from tests.support.responses_upstreams import chat_app, responses_app
from tests.support.servers import InProcessGateway

TOOLS = [{"type": "function", "name": "weather", "description": "the weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"]}}]


def _config(sim: str, echo: str, native: str, store: str, extra: str = "") -> str:
    return f"""
store: {store}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: echo, url: "{echo}", model: echo-m, hosting: self, gpu: {GPU}}}
  - {{name: native, url: "{native}", model: gpt-up, hosting: hosted, serves_responses: true,
      price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
routes:
  - {{alias: sim, backends: [llama]}}
  - {{alias: echo, backends: [echo]}}
  - {{alias: native, backends: [native]}}
  - {{alias: mixed, backends: [native, echo]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: hr, sha256: {sha(KEYS['hr'])}}}
{extra}
"""


class Rig:
    def __init__(self, sim: str, tmp, store: str, extra: str = "") -> None:
        self.chat_log: list[dict] = []
        self.native_log: list[dict] = []
        self._servers = [upstreams.serving(chat_app(self.chat_log)),
                         upstreams.serving(responses_app(self.native_log))]
        echo, native = (s.__enter__() for s in self._servers)
        self.store = store
        self.gateway = InProcessGateway(_config(sim, echo, native, store, extra), tmp)

    def client(self, key: str = "app") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url, api_key=KEYS[key], max_retries=0)

    def stop(self) -> None:
        self.gateway.stop()
        for s in self._servers:
            s.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def rig(request, sim_8b, tmp_path):
    store = (f"sqlite:///{tmp_path}/ledger.db" if request.param == "sqlite"
             else request.getfixturevalue("pg_url"))
    r = Rig(sim_8b.url, tmp_path, store)
    yield r
    r.stop()


def test_plain_create_answers_with_output_text_usage_and_a_ledger_row(rig):
    with rig.client() as c:
        out = c.responses.create(model="sim", input="Say hello in five words.",
                                 instructions="Be brief.", max_output_tokens=16)
    assert out.object == "response" and out.status in ("completed", "incomplete")
    assert out.id.startswith("resp_") and out.model == "sim"
    assert out.output_text  # the SDK joins the message's output_text parts
    assert out.output[0].type == "message" and out.output[0].role == "assistant"
    assert out.usage.input_tokens > 0 and out.usage.output_tokens > 0
    assert out.usage.total_tokens == out.usage.input_tokens + out.usage.output_tokens
    assert out.instructions == "Be brief." and out.max_output_tokens == 16
    rows = [r for r in ledger(rig.store) if r["id"] == out.id.removeprefix("resp_")]
    assert len(rows) == 1 and rows[0]["status"] == 200 and rows[0]["backend"] == "llama"
    decision = json.loads(rows[0]["decision"]) if isinstance(rows[0]["decision"], str) \
        else rows[0]["decision"]
    assert decision["endpoint"] == "responses"
    assert rows[0]["tokens_in"] == out.usage.input_tokens


def test_streamed_events_in_order_with_deltas_and_the_final_usage(rig):
    with rig.client() as c, c.responses.stream(model="echo", input="one two three") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas.strip() == "echo: one two three" == final.output_text.strip()
    assert final.usage.input_tokens == 11 and final.usage.output_tokens == 4
    assert final.status == "completed"
    # the stream was one request to the backend, asked for usage
    assert rig.chat_log[-1]["stream"] is True


def test_function_call_round_trip(rig):
    with rig.client() as c:
        first = c.responses.create(model="echo", input="weather in Paris?", tools=TOOLS)
        call = next(i for i in first.output if i.type == "function_call")
        assert call.name == "weather" and json.loads(call.arguments) == {"city": "Paris"}
        second = c.responses.create(model="echo", tools=TOOLS, previous_response_id=first.id,
                                    input=[{"type": "function_call_output",
                                            "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.output_text == "the tool said sunny, 21C"
    sent = rig.chat_log[-1]["messages"]
    assert sent[0] == {"role": "user", "content": "weather in Paris?"}
    assert sent[1]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}


def test_streamed_function_call_arguments(rig):
    with rig.client() as c, c.responses.stream(model="echo", input="weather?",
                                               tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert "response.function_call_arguments.delta" in types
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert json.loads(done.arguments) == {"city": "Paris"}
    assert final.output[0].type == "function_call" and final.output[0].name == "weather"


class Weather(BaseModel):
    city: str
    temp: int


def test_text_format_json_schema_parses(rig):
    with rig.client() as c:
        parsed = c.responses.parse(model="echo", input="weather as JSON", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", temp=21)
    fmt = rig.chat_log[-1]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Weather"


def test_previous_response_id_sends_the_first_turn_to_the_backend(rig):
    with rig.client() as c:
        first = c.responses.create(model="echo", input="my name is Ada",
                                   instructions="first instructions")
        second = c.responses.create(model="echo", input="what is my name?",
                                    previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = rig.chat_log[-1]["messages"]
    assert sent == [{"role": "user", "content": "my name is Ada"},
                    {"role": "assistant", "content": "echo: my name is Ada"},
                    {"role": "user", "content": "what is my name?"}]  # instructions not carried


def test_retrieve_delete_and_another_keys_id(rig):
    with rig.client() as c, rig.client("hr") as other:
        out = c.responses.create(model="echo", input="keep me")
        got = c.responses.retrieve(out.id)
        assert got.id == out.id and got.output_text == out.output_text
        items = c.responses.input_items.list(out.id)
        assert [i.type for i in items.data] == ["message"]
        with pytest.raises(openai.NotFoundError):
            other.responses.retrieve(out.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="echo", input="x", previous_response_id=out.id)
        with pytest.raises(openai.NotFoundError):
            other.responses.delete(out.id)
        c.responses.delete(out.id)
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(out.id)


def test_store_false_is_not_kept_and_cannot_be_continued(rig):
    with rig.client() as c:
        out = c.responses.create(model="echo", input="forget me", store=False)
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(out.id)
        with pytest.raises(openai.NotFoundError) as err:
            c.responses.create(model="echo", input="x", previous_response_id=out.id)
    assert "store: false" in err.value.message
    assert err.value.body["param"] == "previous_response_id"


def test_passed_through_to_a_backend_that_serves_responses(rig):
    with rig.client() as c:
        first = c.responses.create(model="native", input="hello there")
        second = c.responses.create(model="native", input="again",
                                    previous_response_id=first.id)
        with c.responses.stream(model="native", input="streamed words") as stream:
            streamed = stream.get_final_response()
    assert first.output_text == "native: hello there"
    assert first.usage.input_tokens == 9 and first.usage.output_tokens == 3
    # the gateway keeps the conversation: the backend gets it whole, and stores nothing
    last = rig.native_log[1]
    assert last["store"] is False and "previous_response_id" not in last
    assert [i.get("role") for i in last["input"]] == ["user", "assistant", "user"]
    assert second.output_text == "native: again"
    assert streamed.output_text.strip() == "native: streamed words"


@pytest.mark.parametrize("body, param", [
    ({"input": 3}, "input"),
    ({"input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": "x", "temperature": "hot"}, "temperature"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": "x", "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
    ({"input": "x", "frobnicate": 1}, "frobnicate"),
    ({"input": "x", "metadata": {"a": 1}}, "metadata"),
])
def test_a_malformed_field_is_a_400_naming_it(rig, body, param):
    with rig.client() as c, pytest.raises(openai.BadRequestError) as err:
        c.post("/responses", cast_to=object, body={"model": "echo", **body})
    assert err.value.body["param"] == param, err.value.body
    if param == "tools[0].type":
        assert "web_search" in err.value.message


def test_a_failure_before_the_first_byte_is_an_http_error(sim_8b, tmp_path):
    dead = "http://127.0.0.1:9/v1"
    r = Rig(sim_8b.url, tmp_path, f"sqlite:///{tmp_path}/l.db")
    try:
        config = r.gateway.path.read_text().replace(f'url: "{sim_8b.url}"', f'url: "{dead}"')
        r.gateway.stop()
        r.gateway = InProcessGateway(config, tmp_path, name="dead")
        with (r.client() as c, pytest.raises(openai.APIStatusError) as err,
              c.responses.stream(model="sim", input="hi") as stream):
            list(stream)
        assert err.value.status_code == 502
    finally:
        r.stop()


def test_pseudonymised_for_a_native_hosted_backend_and_restored(sim_8b, tmp_path):
    extra = "data_classes: {pii: {hosting: [self, hosted], action: pseudonymise}}"
    r = Rig(sim_8b.url, tmp_path, f"sqlite:///{tmp_path}/l.db", extra)
    try:
        with r.client() as c:
            out = c.responses.create(model="native", input="refund jane.doe@example.com")
            with c.responses.stream(model="native",
                                    input="refund jane.doe@example.com") as stream:
                streamed = stream.get_final_response()
    finally:
        r.stop()
    sent = [json.dumps(body) for body in r.native_log]
    assert len(sent) == 2 and all("jane.doe" not in s and "[EMAIL_1]" in s for s in sent)
    assert out.output_text == "native: refund jane.doe@example.com"  # restored
    assert streamed.output_text.strip() == "native: refund jane.doe@example.com"


def test_a_stored_turns_class_holds_on_the_next_turn(rig):
    with rig.client() as c:
        first = c.responses.create(model="mixed", input="hello",
                                   extra_headers={"x-data-class": "pii"})
        second = c.responses.create(model="mixed", input="and then?",
                                    previous_response_id=first.id)
        fresh = c.responses.create(model="mixed", input="a new conversation")
    assert first.output_text == "echo: hello"  # pii: self-hosted only
    assert second.output_text == "echo: and then?"  # no header, no finding: still pii
    assert fresh.output_text == "native: a new conversation"  # general: the first backend
    assert len(rig.native_log) == 1
