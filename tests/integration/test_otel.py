"""OpenTelemetry out of a real gateway in front of a sim and a failing upstream, to an
OTLP/HTTP receiver on 127.0.0.1 that decodes the protobuf as a collector does: one trace
per request after the GenAI conventions, one child span per attempt (a failed one, then
the fallback), the caller's traceparent as parent, no content in any attribute, the GenAI
metrics; a stuck collector neither slows nor fails requests, its drops are counted."""

from __future__ import annotations

import json
import urllib.request

import anthropic
import openai
import pytest

from tests.support import upstreams
from tests.support.configs import GPU, KEYS, sha
from tests.support.otlp import Collector, ReceivedSpan
from tests.support.servers import InProcessGateway, free_port

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SECRET_TEXT = "Zebra-quartz-7731 wants the report; mail jane.doe@example.com"


def config(bad: str, sim: str, store: str, telemetry: str,
           vec: str = "http://127.0.0.1:9/v1") -> str:
    return f"""
store: {store}
limits: {{circuit_failures: 100}}
backends:
  - {{name: bad, url: "{bad}", model: faulty, hosting: self, gpu: {GPU}}}
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: vec, url: "{vec}", model: bge-small, hosting: self, gpu: {GPU}}}
routes:
  - {{alias: assistant, backends: [bad, llama]}}
  - {{alias: plain, backends: [llama]}}
  - {{alias: vectors, task: embeddings, backends: [vec]}}
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
telemetry: {telemetry}
"""


@pytest.fixture
def failing():
    faults = upstreams.Faults()
    faults.mode = "500"
    with upstreams.serving(upstreams.faulty_app(faults)) as url:
        yield url


@pytest.fixture
def embedder():
    with upstreams.serving(upstreams.faulty_app(upstreams.Faults())) as url:
        yield url


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.stop()


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return sorted((s for s in spans if s.parent_span_id == parent.span_id),
                  key=lambda s: s.start_ns)


def _traffic(gw: InProcessGateway) -> dict:
    client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
    traced = client.with_options(default_headers={
        "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01", "tracestate": "vendor=x"})
    chat = traced.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": SECRET_TEXT}],
        max_tokens=5, temperature=0.3)
    stream = list(client.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "count to three"}],
        max_tokens=4, stream=True, stream_options={"include_usage": True}))
    text = client.completions.create(model="plain", prompt="Once upon", max_tokens=3)
    vectors = client.with_options(default_headers={"traceparent": "00-zz-not-a-trace-01"}
                                  ).embeddings.create(model="vectors", input="Once upon a vector")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.url, api_key="k-wrong", max_retries=0).chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": "hi"}])
    return {"chat": chat, "stream": stream, "text": text, "vectors": vectors}


def test_each_request_is_a_genai_trace_with_one_span_per_attempt(tmp_path, sim_8b, failing,
                                                                   embedder, collector):
    gw = InProcessGateway(config(failing, sim_8b.url, f"sqlite:///{tmp_path}/l.db",
                                 f"{{otlp_endpoint: '{collector.url}', export_interval_s: 3600,"
                                 " service_name: test-gw}", embedder), tmp_path)
    try:
        got = _traffic(gw)
    finally:
        gw.stop()  # shutdown flushes: everything below arrived by then
    spans = collector.spans
    assert collector.content_types == {"application/x-protobuf"}
    roots = {s.attributes["breakeven.request_id"]: s for s in spans if s.kind == "SERVER"}
    assert len(roots) == 5 and all(s.resource["service.name"] == "test-gw" for s in spans)

    chat = got["chat"]
    root = next(s for s in roots.values() if s.trace_id == TRACE_ID)
    assert root.parent_span_id == CALLER_SPAN  # the caller's traceparent is the parent
    assert root.name == "chat assistant"
    a = root.attributes
    assert (a["gen_ai.operation.name"], a["gen_ai.request.model"], a["gen_ai.response.model"],
            a["gen_ai.provider.name"]) == ("chat", "assistant", "llama-3.1-8b", "openai")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        chat.usage.prompt_tokens, chat.usage.completion_tokens)
    assert a["gen_ai.response.finish_reasons"] == [chat.choices[0].finish_reason]
    assert a["gen_ai.response.id"] == chat.id
    assert (a["gen_ai.request.max_tokens"], a["gen_ai.request.temperature"]) == (5, 0.3)
    assert a["breakeven.data_class"] == "pii"  # the e-mail address was found ...
    assert (a["breakeven.route"], a["breakeven.backend"], a["http.response.status_code"]) == (
        "assistant", "llama", 200)
    assert a["breakeven.rule"].startswith("class pii: bad,llama")
    assert "error.type" not in a and root.status == "UNSET"
    bad, good = _children(spans, root)  # one child per attempt, in order
    assert all(c.kind == "CLIENT" and c.trace_id == TRACE_ID for c in (bad, good))
    assert (bad.name, bad.status, bad.attributes["error.type"],
            bad.attributes["http.response.status_code"],
            bad.attributes["breakeven.backend"]) == ("chat faulty", "ERROR", "500", 500, "bad")
    assert (good.name, good.status, good.attributes["breakeven.outcome"],
            good.attributes["gen_ai.request.model"],
            good.attributes["server.address"]) == ("chat llama-3.1-8b", "UNSET", "ok",
                                                   "llama-3.1-8b", "127.0.0.1")
    assert root.start_ns <= bad.start_ns <= bad.end_ns <= good.start_ns <= good.end_ns
    assert good.end_ns <= root.end_ns

    others = [s for s in roots.values() if s is not root]
    assert all(s.parent_span_id == "" and s.trace_id != TRACE_ID for s in others)
    streamed = next(s for s in others if s.attributes.get("breakeven.route") == "assistant")
    usage = got["stream"][-1].usage
    assert streamed.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    finish = next(c.choices[0].finish_reason for c in got["stream"]
                  if c.choices and c.choices[0].finish_reason)
    assert streamed.attributes["gen_ai.response.finish_reasons"] == [finish]
    assert [c.attributes["breakeven.outcome"] for c in _children(spans, streamed)] == [
        "http 500", "ok"]
    text = next(s for s in others if s.attributes.get("breakeven.route") == "plain")
    assert text.name == "text_completion plain"
    assert text.attributes["gen_ai.usage.output_tokens"] == got["text"].usage.completion_tokens
    vectors = next(s for s in others if s.attributes.get("breakeven.route") == "vectors")
    assert (vectors.name, vectors.attributes["gen_ai.response.model"],
            vectors.attributes["gen_ai.usage.input_tokens"]) == (
        "embeddings vectors", "bge-small", got["vectors"].usage.prompt_tokens)
    assert vectors.parent_span_id == ""  # a malformed traceparent: a trace of its own
    refused = next(s for s in others if "breakeven.route" not in s.attributes)
    assert (refused.name, refused.attributes["error.type"],
            refused.attributes["http.response.status_code"]) == ("chat", "401", 401)
    assert _children(spans, refused) == []

    everything = json.dumps([s.attributes for s in spans])  # names and counts, no content
    for leak in ("Zebra", "jane.doe", "example.com", "count to three", "Once upon", KEYS["app"],
                 chat.choices[0].message.content or "<no content>"):
        assert leak not in everything


def test_the_genai_metrics_arrive_with_their_units_and_points(tmp_path, sim_8b, failing,
                                                               embedder, collector):
    gw = InProcessGateway(config(failing, sim_8b.url, f"sqlite:///{tmp_path}/l.db",
                                 f"{{otlp_endpoint: '{collector.url}', export_interval_s: 3600}}",
                                 embedder), tmp_path)
    try:
        got = _traffic(gw)
    finally:
        gw.stop()
    points = collector.points
    units = {p.name: p.unit for p in points}
    assert units == {"gen_ai.client.operation.duration": "s",
                     "gen_ai.server.time_to_first_token": "s",
                     "gen_ai.client.token.usage": "{token}"}
    duration = [p for p in points if p.name == "gen_ai.client.operation.duration"]
    assert sum(p.count for p in duration) == 5
    assert duration[0].bounds[:3] == (0.01, 0.02, 0.04)
    failed = [p for p in duration if p.attributes.get("error.type") == "401"]
    assert [p.count for p in failed] == [1]
    ttft = [p for p in points if p.name == "gen_ai.server.time_to_first_token"]
    assert [(p.count, p.attributes["gen_ai.request.model"]) for p in ttft] == [(1, "assistant")]
    tokens = [p for p in points if p.name == "gen_ai.client.token.usage"]
    usages = [got["chat"].usage, got["stream"][-1].usage, got["text"].usage]
    by_type = {t: sum(p.sum for p in tokens if p.attributes["gen_ai.token.type"] == t)
               for t in ("input", "output")}
    assert by_type == {"input": sum(u.prompt_tokens for u in usages)
                       + got["vectors"].usage.prompt_tokens,
                       "output": sum(u.completion_tokens for u in usages)}
    assert all(p.attributes["gen_ai.provider.name"] == "openai" for p in tokens)
    assert {(p.attributes["gen_ai.operation.name"], p.attributes["gen_ai.response.model"])
            for p in tokens} == {("chat", "llama-3.1-8b"), ("text_completion", "llama-3.1-8b"),
                                 ("embeddings", "bge-small")}


def test_a_stuck_collector_neither_slows_nor_fails_requests_and_drops_are_counted(
        tmp_path, sim_8b, collector):
    collector.hold()  # the first export is taken and never answered until release()
    gw = InProcessGateway(config("http://127.0.0.1:9/v1", sim_8b.url,
                                 f"sqlite:///{tmp_path}/l.db",
                                 f"{{otlp_endpoint: '{collector.url}', export_interval_s: 3600,"
                                 " max_queue: 4, export_timeout_s: 30}"), tmp_path)
    client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)

    def ask() -> str:
        return client.completions.create(model="plain", prompt="hi", max_tokens=2).id

    try:
        first = [ask(), ask()]  # 4 spans (a request and its attempt, twice): one batch
        assert collector.held.wait(30)  # the export of that batch is held open
        later = [ask() for _ in range(4)]  # 4 spans fill the queue, 4 more are dropped
        # the spans of a call are built on the gateway's loop after its answer went out: an
        # answer to a later request proves the last call's were built (and dropped) by then
        urllib.request.urlopen(f"{gw.base}/healthz", timeout=30).close()
        assert collector.spans == []  # all answered while the export was still held
        assert len(first + later) == 6
    finally:
        collector.release()
        gw.stop()
    assert gw.logs.count("the span queue is full") == 1  # logged once, not per span
    assert "4 span(s) were dropped (queue full), 0 not taken" in gw.logs
    assert len(collector.spans) == 8  # the held batch and the queue, flushed at shutdown


def test_an_unreachable_collector_fails_no_request_and_is_logged_once(tmp_path, sim_8b):
    gw = InProcessGateway(config("http://127.0.0.1:9/v1", sim_8b.url,
                                 f"sqlite:///{tmp_path}/l.db",
                                 f"{{otlp_endpoint: 'http://127.0.0.1:{free_port()}', "
                                 "export_interval_s: 3600, export_timeout_s: 1}"), tmp_path)
    client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
    try:
        answers = [client.completions.create(model="plain", prompt="hi", max_tokens=2)
                   for _ in range(3)]
    finally:
        gw.stop()  # the one export (at shutdown) fails: said once, then counted
    assert all(a.usage.completion_tokens > 0 for a in answers)
    assert gw.logs.count("Transient error") <= 1
    assert "span(s) were dropped (queue full), 6 not taken by the collector" in gw.logs


def test_sampling_keeps_the_callers_sampled_traces_and_every_metric(tmp_path, sim_8b,
                                                                     collector):
    gw = InProcessGateway(config("http://127.0.0.1:9/v1", sim_8b.url,
                                 f"sqlite:///{tmp_path}/l.db",
                                 f"{{otlp_endpoint: '{collector.url}', export_interval_s: 3600,"
                                 " sample_ratio: 0}"), tmp_path)
    client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
    traced = client.with_options(default_headers={
        "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"})
    try:
        for c in (client, traced, client):
            c.completions.create(model="plain", prompt="hi", max_tokens=2)
    finally:
        gw.stop()
    assert {(s.trace_id, s.kind) for s in collector.spans} == {(TRACE_ID, "SERVER"),
                                                              (TRACE_ID, "CLIENT")}
    duration = [p for p in collector.points if p.name == "gen_ai.client.operation.duration"]
    assert sum(p.count for p in duration) == 3


def test_an_anthropic_backend_is_provider_anthropic_with_its_finish_reason(tmp_path,
                                                                           collector):
    with upstreams.serving(upstreams.anthropic_app()) as claude:
        gw = InProcessGateway(f"""
store: sqlite:///{tmp_path}/l.db
backends:
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-upstream,
      hosting: hosted, price: {{input_per_mtok: 3, output_per_mtok: 15}},
      api_key_env: TEST_ANTHROPIC_KEY}}
routes: [{{alias: smart, backends: [claude]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
telemetry: {{otlp_endpoint: '{collector.url}', export_interval_s: 3600}}
""", tmp_path, env={"TEST_ANTHROPIC_KEY": "sk-ant-secret-123"})
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            answer = client.chat.completions.create(
                model="smart", messages=[{"role": "user", "content": "Zebra-quartz-7731"}])
        finally:
            gw.stop()
    root = next(s for s in collector.spans if s.kind == "SERVER")
    (attempt,) = _children(collector.spans, root)
    assert (root.name, root.attributes["gen_ai.provider.name"],
            root.attributes["gen_ai.response.model"],
            root.attributes["gen_ai.response.finish_reasons"]) == (
        "chat smart", "anthropic", "claude-upstream", [answer.choices[0].finish_reason])
    assert root.attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert (attempt.name, attempt.attributes["gen_ai.provider.name"]) == (
        "chat claude-upstream", "anthropic")
    everything = json.dumps([s.attributes for s in collector.spans])
    assert "Zebra" not in everything and "sk-ant" not in everything


def test_messages_and_responses_are_chat_spans_under_the_callers_trace(tmp_path, sim_8b,
                                                                       collector):
    gw = InProcessGateway(config("http://127.0.0.1:9/v1", sim_8b.url,
                                 f"sqlite:///{tmp_path}/l.db",
                                 f"{{otlp_endpoint: '{collector.url}', export_interval_s: 3600}}"),
                          tmp_path)
    parent = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}
    try:
        claude = anthropic.Anthropic(base_url=gw.base, api_key=KEYS["app"], max_retries=0,
                                     default_headers=parent)
        message = claude.messages.create(model="plain", max_tokens=4, messages=[
            {"role": "user", "content": SECRET_TEXT}])
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0,
                               default_headers=parent)
        response = client.responses.create(model="plain", input=SECRET_TEXT,
                                           max_output_tokens=4)
    finally:
        gw.stop()
    roots = [s for s in collector.spans if s.kind == "SERVER"]
    assert sorted(s.name for s in roots) == ["chat plain", "chat plain"]
    assert {s.parent_span_id for s in roots} == {CALLER_SPAN}
    assert sorted(s.attributes["gen_ai.usage.output_tokens"] for s in roots) == sorted(
        [message.usage.output_tokens, response.usage.output_tokens])
    everything = json.dumps([s.attributes for s in collector.spans])
    assert "Zebra" not in everything and "jane.doe" not in everything
