"""The sim's prefix caching and vLLM's request-phase histograms, seen from outside: the
bench's ``--prefix-tokens`` against a sim in this process (the CLI in a subprocess), the
official openai SDK for ``usage.prompt_tokens_details``, and ``/metrics`` as Prometheus
reads it."""

from __future__ import annotations

import json
import re
import statistics
import urllib.request

import openai
import pytest

from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


def _metrics(sim: InProcessSim) -> dict[str, float]:
    with urllib.request.urlopen(f"{sim.base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z0-9_:]+)(\{.*\})? (\S+)$", line)
        if m:
            le = re.search(r'le="([^"]+)"', m.group(2) or "")
            name = m.group(1) + (f"[{le.group(1)}]" if le else "")
            out[name] = out.get(name, 0.0) + float(m.group(3))
    return out


def _bench_ttft(run_cli, tmp_path, *sim_args: str, prefix: int) -> tuple[float, float]:
    """(median TTFT on the engine's clock in ms, the prefix cache's hit rate) of a closed
    loop of 4 callers sending 1,000-token prompts behind a shared ``prefix``."""
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.02",
                       "--clock", "virtual", *sim_args)
    try:
        finished = sim.watch()
        out = tmp_path / f"p{prefix}{len(sim_args)}.json"
        result = run_cli("bench", "--url", sim.url, "--model", MODEL, "--quiet",
                         "--concurrency", "4", "--requests", "40", "--input-len", "1000",
                         "--output-len", "fixed:20", "--prefix-tokens", str(prefix),
                         "--json", str(out))
        assert result.returncode == 0, result.stderr
        data = json.loads(out.read_text())
        level = data["levels"][0]
        assert level["completed"] == 40
        metrics = _metrics(sim)
    finally:
        sim.stop()
    queries = metrics["vllm:prefix_cache_queries_total"]
    hits = metrics["vllm:prefix_cache_hits_total"]
    # the bench reads the sim's counters for its level (the preflight is before it)
    assert level.get("prefix_cache_hit_rate", 0.0) == pytest.approx(
        hits / queries if queries else 0.0, abs=0.05)
    ttft = statistics.median((q.first_token - q.arrival) * 1e3 for q in finished)
    return ttft, hits / queries if queries else 0.0


@pytest.mark.slow
def test_a_shared_system_prompt_is_served_from_the_prefix_cache(run_cli, tmp_path):
    alone, alone_rate = _bench_ttft(run_cli, tmp_path, prefix=0)
    shared, shared_rate = _bench_ttft(run_cli, tmp_path, prefix=1024)
    off, off_rate = _bench_ttft(run_cli, tmp_path, "--no-enable-prefix-caching", prefix=1024)
    print(f"TTFT ms: no prefix {alone:.1f}, 1024-token prefix {shared:.1f} "
          f"(caching off {off:.1f}); hit rate {alone_rate:.3f} {shared_rate:.3f} {off_rate}")
    assert alone_rate < 0.1  # prompts differ from their first block on (the warm-up repeats)
    assert shared_rate > 0.4  # ~1,024 of every ~2,030 prompt tokens come from the cache
    assert off_rate == 0.0
    # the prefill of the shared half is skipped: the first token comes sooner than
    # without caching, and sooner than a prompt of half the length would need in full
    assert shared < 0.75 * off
    assert shared < alone * 1.25


def test_cached_tokens_are_reported_as_vllm_reports_them():
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.01",
                       "--enable-prompt-tokens-details")
    plain = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.01")
    system = {"role": "system", "content": " ".join(["policy"] * 300)}
    try:
        with openai.OpenAI(base_url=sim.url, api_key="x", max_retries=0) as client:
            first = client.chat.completions.create(
                model=MODEL, max_tokens=4, messages=[system, {"role": "user", "content": "a"}])
            second = client.chat.completions.create(
                model=MODEL, max_tokens=4, messages=[system, {"role": "user", "content": "b"}])
            stream = client.chat.completions.create(
                model=MODEL, max_tokens=4, stream=True, stream_options={"include_usage": True},
                messages=[system, {"role": "user", "content": "c"}])
            usage = [c.usage for c in stream if c.usage is not None][-1]
        with openai.OpenAI(base_url=plain.url, api_key="x", max_retries=0) as client:
            for _ in range(2):
                quiet = client.chat.completions.create(
                    model=MODEL, max_tokens=4, messages=[system, {"role": "user", "content": "d"}])
    finally:
        sim.stop()
        plain.stop()
    assert first.usage.prompt_tokens_details is None  # nothing cached yet: vLLM omits it
    # the system message and its template (305 tokens) fill 19 whole blocks
    assert second.usage.prompt_tokens_details.cached_tokens == 19 * 16
    assert usage.prompt_tokens_details.cached_tokens == 19 * 16
    assert quiet.usage.prompt_tokens_details is None  # only with the flag, as in vLLM


def test_phase_histograms_add_up_as_vllm_defines_them(sim_8b):
    before = _metrics(sim_8b)
    with openai.OpenAI(base_url=sim_8b.url, api_key="x", max_retries=0) as client:
        for k in range(6):
            client.chat.completions.create(model=MODEL, max_tokens=30,
                                           extra_body={"ignore_eos": True},
                                           messages=[{"role": "user", "content": f"q{k}"}])
    after = _metrics(sim_8b)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    for name in ("e2e_request_latency", "request_queue_time", "request_prefill_time",
                 "request_decode_time", "request_inference_time"):
        assert delta(f"vllm:{name}_seconds_count") == 6
        # vLLM's request_latency_buckets, from 0.3 s to 7680 s
        assert f"vllm:{name}_seconds_bucket[0.3]" in after
        assert f"vllm:{name}_seconds_bucket[7680.0]" in after
    e2e, queue = delta("vllm:e2e_request_latency_seconds_sum"), delta(
        "vllm:request_queue_time_seconds_sum")
    inference = delta("vllm:request_inference_time_seconds_sum")
    prefill = delta("vllm:request_prefill_time_seconds_sum")
    decode = delta("vllm:request_decode_time_seconds_sum")
    assert e2e == pytest.approx(queue + inference, rel=1e-6)
    assert inference == pytest.approx(prefill + decode, rel=1e-6)
    assert decode > prefill > 0  # 29 decode steps against one prefill of a short prompt
