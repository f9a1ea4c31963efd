"""``breakeven sim`` over HTTP (in this process), driven by the official openai SDK and raw
requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest

from breakeven.prometheus import samples
from breakeven.sim.text import count_tokens
from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


@pytest.fixture(scope="module")
def client(sim_8b):
    with openai.OpenAI(base_url=sim_8b.url, api_key="unused", max_retries=0) as c:
        yield c


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_chat_usage_matches_the_text(client):
    out = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Summarise the plan in a line."}],
        max_tokens=40, extra_body={"ignore_eos": True})
    choice = out.choices[0]
    assert choice.finish_reason == "length"
    assert out.usage.completion_tokens == 40 == count_tokens(choice.message.content)
    assert out.usage.prompt_tokens > count_tokens("Summarise the plan in a line.")
    assert out.usage.total_tokens == out.usage.prompt_tokens + 40


def test_streaming_with_usage(client):
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}], max_tokens=25,
        stream=True, stream_options={"include_usage": True},
        extra_body={"ignore_eos": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and
              c.choices[0].finish_reason]
    assert finish == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 25
    assert count_tokens(text) == 25


def test_completions_with_logprobs(client):
    out = client.completions.create(model=MODEL, prompt="The cost of", max_tokens=12,
                                    logprobs=3, extra_body={"ignore_eos": True})
    lp = out.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 12
    assert "".join(lp.tokens) == out.choices[0].text
    assert all(v <= 0 for v in lp.token_logprobs)
    assert all(len(top) == 3 for top in lp.top_logprobs)
    assert lp.text_offset[0] == 0 and lp.text_offset[1] == len(lp.tokens[0])


def test_chat_logprobs_follow_the_confidence(client):
    def mean_logprob(confidence: float) -> float:
        out = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "classify this"}],
            max_tokens=30, logprobs=True, top_logprobs=2,
            extra_body={"ignore_eos": True, "sim_confidence": confidence})
        content = out.choices[0].logprobs.content
        assert len(content) == 30 and all(len(t.top_logprobs) == 2 for t in content)
        return sum(t.logprob for t in content) / len(content)

    assert mean_logprob(0.3) < -0.8 < -0.2 < mean_logprob(0.95)


def test_stop_seed_and_natural_length(client):
    msgs = [{"role": "user", "content": "write a long answer"}]
    out = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=200,
                                         stop=["."], extra_body={"ignore_eos": True})
    assert out.choices[0].finish_reason == "stop" and "." not in out.choices[0].message.content
    a = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=30, seed=7)
    b = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=30, seed=7)
    assert a.choices[0].message.content == b.choices[0].message.content
    natural = client.chat.completions.create(model=MODEL, messages=msgs, max_tokens=5000,
                                             extra_body={"min_tokens": 3})
    assert 3 <= natural.usage.completion_tokens < 5000
    assert natural.choices[0].finish_reason == "stop"


def test_errors_in_the_openai_format(client, sim_8b):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}])
    one = [{"role": "user", "content": "x"}]
    # vLLM's SamplingParams wording: a VLLMValidationError names its parameter and value
    refusals = [({"n": 0}, "n must be at least 1, got 0.", None),
                ({"n": 500}, "n must be at most 128, got 500.", None),
                ({"temperature": -1}, "temperature must be non-negative, got -1.0. "
                 "(parameter=temperature, value=-1.0)", "temperature"),
                ({"top_p": 0}, "top_p must be in (0, 1], got 0.0. (parameter=top_p, "
                 "value=0.0)", "top_p"),
                ({"max_tokens": 0}, "max_tokens must be at least 1, got 0. "
                 "(parameter=max_tokens, value=0)", "max_tokens"),
                ({"max_tokens": 5, "min_tokens": 9},
                 "min_tokens must be less than or equal to max_tokens=5, got 9.", None)]
    for fields, message, param in refusals:
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model=MODEL, messages=one, extra_body=fields)
        assert bad.value.body == {"message": message, "type": "BadRequestError",
                                  "param": param, "code": 400}, fields
    hot = client.chat.completions.create(model=MODEL, messages=one, max_tokens=3,
                                         temperature=2.5)  # vLLM has no upper bound
    assert hot.usage.completion_tokens <= 3
    with pytest.raises(openai.BadRequestError) as too_large:
        client.chat.completions.create(model=MODEL, max_tokens=10**6,
                                       messages=[{"role": "user", "content": "x"}])
    limit = sim_8b.server.config.max_model_len
    # vLLM's wording (get_max_tokens), with its VLLMValidationError suffix, and its shape:
    # type is the exception's class name, code the HTTP status as an integer
    assert too_large.value.body == {
        "message": f"'max_tokens' or 'max_completion_tokens' is too large: 1000000. This "
                   f"model's maximum context length is {limit} tokens and your request has "
                   f"10 input tokens (1000000 > {limit} - 10). (parameter=max_tokens, "
                   "value=1000000)",
        "type": "BadRequestError", "param": "max_tokens", "code": 400}
    with pytest.raises(openai.BadRequestError) as too_long:
        client.completions.create(model=MODEL, prompt=[7] * (limit + 5))
    assert too_long.value.body["message"] == (
        f"This model's maximum context length is {limit} tokens. However, your request has "
        f"{limit + 5} input tokens. Please reduce the length of the input messages. "
        f"(parameter=input_tokens, value={limit + 5})")
    with pytest.raises(openai.NotFoundError) as unknown:
        client.completions.create(model="gpt-x", prompt="x")
    assert unknown.value.body == {"message": "The model `gpt-x` does not exist.",
                                  "type": "NotFoundError", "param": "model", "code": 404}
    with pytest.raises(openai.BadRequestError) as priority:
        client.chat.completions.create(model=MODEL, extra_body={"priority": 3},
                                       messages=[{"role": "user", "content": "x"}])
    assert priority.value.body["message"] == (
        "Got priority 3 but Priority scheduling is not enabled.")
    with pytest.raises(openai.BadRequestError, match="'priority' must be an integer"):
        client.chat.completions.create(model=MODEL, extra_body={"priority": "high"},
                                       messages=[{"role": "user", "content": "x"}])
    status, body = _post(f"{sim_8b.url}/chat/completions", b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = _post(f"{sim_8b.url}/chat/completions",
                         json.dumps({"model": MODEL, "messages": "hi"}).encode())
    assert status == 400 and body["error"]["param"] == "messages"


def test_models_health_and_metrics(client, sim_8b):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    status, text = _get(sim_8b.url.removesuffix("/v1") + "/health")
    assert status == 200
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                   max_tokens=5)
    status, text = _get(sim_8b.url.removesuffix("/v1") + "/metrics")
    assert status == 200
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total",
                 "vllm:time_to_first_token_seconds_bucket", "breakeven_sim_lag_seconds"):
        assert name in text
    generated = next(line for line in text.splitlines()
                     if line.startswith("vllm:generation_tokens_total"))
    assert float(generated.split()[-1]) >= 5
    # the cache's configuration, as routers read capacity off vLLM: blocks x block size
    (labels, value), = samples(text, "vllm:cache_config_info")
    assert value == 1.0 and labels["engine"] == "0"
    _, listing = _get(sim_8b.url + "/models")
    card = json.loads(listing)["data"][0]["breakeven"]
    assert int(labels["num_gpu_blocks"]) * int(labels["block_size"]) == card["kv_cache_tokens"]
    assert labels["cache_dtype"] == "auto" and labels["enable_prefix_caching"] == "True"
    assert float(labels["gpu_memory_utilization"]) == 0.92


def test_api_key_is_required_when_configured():
    sim = InProcessSim("--model", "qwen2.5-7b", "--gpu", "l4", "--time-scale", "0.01",
                     "--api-key-env", "SIM_KEY", env={"SIM_KEY": "s3cret"})
    try:
        with openai.OpenAI(base_url=sim.url, api_key="wrong", max_retries=0) as bad, \
                pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with openai.OpenAI(base_url=sim.url, api_key="s3cret", max_retries=0) as good:
            assert good.models.list().data[0].id == "qwen2.5-7b"
    finally:
        sim.stop()


def test_a_tensorrt_llm_sim_reserves_what_each_request_may_generate():
    """``sim --engine tensorrt-llm`` admits as TensorRT-LLM's GUARANTEED_NO_EVICT does: the
    engine reserves each request's max_tokens (what it may still generate), taken from the
    request as the SDK sends it, and the memory setting sizes its cache."""
    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8",
                       "--engine", "tensorrt-llm", "--gpu-memory-utilization", "0.5",
                       "--time-scale", "0.001")
    try:
        assert sim.server.engine.config.reserve_whole
        small = sim.server.engine.config.num_blocks
        finished = sim.watch()
        with openai.OpenAI(base_url=sim.url, api_key="x", max_retries=0) as client:
            out = client.completions.create(model="llama-3.1-8b", prompt="hello there",
                                            max_tokens=300, temperature=0)
        assert 1 <= out.usage.completion_tokens <= 300
        (seq,) = finished
        assert seq.max_tokens == 300 and seq.output_tokens == out.usage.completion_tokens
        assert sim.server.engine.reserved_units == 0  # given back when it finished
    finally:
        sim.stop()
    more = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8",
                        "--engine", "tensorrt-llm", "--gpu-memory-utilization", "0.9")
    try:
        assert more.server.engine.config.num_blocks > 1.5 * small
    finally:
        more.stop()
