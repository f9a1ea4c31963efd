"""What structured-output clients send, against ``breakeven sim`` in this process with the
official openai SDK: ``parse()`` with a pydantic model, JSON mode, forced and required tool
calls (streamed too), and vLLM's ``/tokenize``, ``/detokenize``, ``/version`` and ``/ping``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest
from pydantic import BaseModel

from breakeven.sim.text import count_tokens
from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


class Address(BaseModel):
    city: str
    zip_code: int


class Invoice(BaseModel):
    customer: str
    total: float
    paid: bool
    lines: list[str]
    address: Address
    status: str | None = None


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer", "minimum": 1}}, "required": ["city", "unit", "days"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {
        "zone": {"type": "string"}}, "required": ["zone"]}}}


@pytest.fixture(scope="module")
def sim():
    server = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.001")
    yield server
    server.stop()


@pytest.fixture
def client(sim):
    with openai.OpenAI(base_url=sim.url, api_key="unused", max_retries=0) as c:
        yield c


def _ask() -> list:
    return [{"role": "user", "content": "Make an invoice."}]


def test_parse_with_a_pydantic_model_gives_a_valid_object(client):
    done = client.chat.completions.parse(model=MODEL, messages=_ask(),
                                         response_format=Invoice, max_tokens=400)
    message = done.choices[0].message
    assert isinstance(message.parsed, Invoice)
    assert isinstance(message.parsed.address, Address)
    assert done.usage.completion_tokens == count_tokens(message.content)


def test_json_mode_answers_json(client):
    done = client.chat.completions.create(model=MODEL, messages=_ask(), max_tokens=100,
                                          response_format={"type": "json_object"})
    assert isinstance(json.loads(done.choices[0].message.content), dict)


def test_a_forced_tool_call_matches_the_tools_schema(client):
    done = client.chat.completions.create(
        model=MODEL, messages=_ask(), tools=[TIME, WEATHER], max_tokens=200,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    (call,) = done.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and call.id
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "unit", "days"}
    assert args["unit"] in ("c", "f") and isinstance(args["days"], int) and args["days"] >= 1
    assert done.usage.completion_tokens == count_tokens(call.function.arguments)


def test_a_required_tool_call_streams_and_finishes_with_tool_calls(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=_ask(), tools=[TIME], tool_choice="required", max_tokens=100,
        stream=True, stream_options={"include_usage": True})
    name, arguments, finish, used = None, "", None, None
    for event in stream:
        if event.usage is not None:
            used = event.usage.completion_tokens
        for choice in event.choices:
            for call in choice.delta.tool_calls or []:
                name = name or call.function.name
                arguments += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "get_time" and finish == "tool_calls"
    assert set(json.loads(arguments)) == {"zone"}
    assert used == count_tokens(arguments)


def test_a_tool_choice_naming_no_tool_is_refused(client):
    with pytest.raises(openai.BadRequestError, match="tool_choice"):
        client.chat.completions.create(
            model=MODEL, messages=_ask(), tools=[TIME], max_tokens=10,
            tool_choice={"type": "function", "function": {"name": "nope"}})


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_tokenize_detokenize_version_and_ping(sim):
    root = sim.url.removesuffix("/v1")
    text = "Summarise the quarterly report, please."
    status, tokens = _call(f"{root}/tokenize", {"model": MODEL, "prompt": text})
    assert status == 200
    assert tokens["count"] == len(tokens["tokens"]) == 1 + count_tokens(text)
    _, back = _call(f"{root}/detokenize", {"model": MODEL, "tokens": tokens["tokens"][1:]})
    assert back["prompt"].strip() == text
    messages = [{"role": "user", "content": text}]
    _, chat = _call(f"{root}/tokenize", {"model": MODEL, "messages": messages})
    with openai.OpenAI(base_url=sim.url, api_key="unused", max_retries=0) as c:
        done = c.chat.completions.create(model=MODEL, messages=messages, max_tokens=2)
    assert chat["count"] == done.usage.prompt_tokens
    status, bad = _call(f"{root}/detokenize", {"tokens": [10**9]})
    assert status == 400 and "vocabulary" in bad["error"]["message"]
    status, version = _call(f"{root}/version")
    assert status == 200 and "version" in version
    assert _call(f"{root}/ping")[0] == 200


def test_n_choices_each_run_and_are_counted(client, sim):
    done = client.chat.completions.create(model=MODEL, messages=_ask(), n=3, max_tokens=20,
                                          extra_body={"ignore_eos": True})
    assert [c.index for c in done.choices] == [0, 1, 2]
    assert len({c.message.content for c in done.choices}) == 3
    assert done.usage.completion_tokens == 60
    assert sum(count_tokens(c.message.content) for c in done.choices) == 60
    stream = client.chat.completions.create(
        model=MODEL, messages=_ask(), n=2, max_tokens=12, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    texts, finishes, used = {0: "", 1: ""}, {}, None
    for event in stream:
        if event.usage is not None:
            used = event.usage.completion_tokens
        for choice in event.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert finishes == {0: "length", 1: "length"} and used == 24
    assert [count_tokens(t) for t in texts.values()] == [12, 12]


def _count(metrics: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith(name + "_count{"))


def test_metrics_use_vllm_0_11_names_and_semantics(client, sim):
    url = sim.url.removesuffix("/v1") + "/metrics"

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.read().decode()

    before = scrape()
    for _ in range(2):
        client.chat.completions.create(model=MODEL, messages=_ask(), max_tokens=10,
                                       extra_body={"ignore_eos": True})
    after = scrape()
    assert 'engine="0"' in after

    def grew(name: str) -> float:
        return _count(after, name) - _count(before, name)

    assert grew("vllm:inter_token_latency_seconds") == 2 * 9  # every gap
    assert grew("vllm:request_time_per_output_token_seconds") == 2  # one per request
    assert grew("vllm:request_decode_time_seconds") == 2
