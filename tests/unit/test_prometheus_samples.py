"""Reading engines' ``/metrics``: one parser (``prometheus.samples``) for the gateway's
batch admission and the bench. It once summed vLLM's ``vllm:num_requests_waiting_by_reason``
into the queue (a name that only begins with another is another metric) and dropped both
gauges when one line did not parse."""

from __future__ import annotations

import pytest

from breakeven.gateway.batch.scheduler import _engine_gauges
from breakeven.prometheus import samples
from breakeven.sim.exposition import metrics_text

VLLM = """# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="1",model_name="m"} 2.0
# TYPE vllm:num_requests_waiting_by_reason gauge
vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 3.0
vllm:num_requests_waiting_by_reason{engine="1",model_name="m",reason="deferred"} 2.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
"""
VLLM += ('vllm:cache_config_info{block_size="16",cache_dtype="auto",engine="0",'
         'gpu_memory_utilization="0.92",num_gpu_blocks="28716",'
         'prefix="a \\"quoted\\" } value"} 1.0\n')


def test_a_metric_is_read_by_its_whole_name_with_its_labels():
    assert [v for _, v in samples(VLLM, "vllm:num_requests_waiting")] == [3.0, 2.0]
    (labels, value), = samples(VLLM, "vllm:cache_config_info")
    assert value == 1.0 and labels["num_gpu_blocks"] == "28716"
    assert labels["gpu_memory_utilization"] == "0.92"
    assert labels["prefix"] == 'a \\"quoted\\" } value'  # a brace inside a value
    assert list(samples(VLLM, "vllm:nothing_here")) == []


@pytest.mark.parametrize("junk", [
    "vllm:num_requests_waiting NaN", "vllm:num_requests_waiting +Inf",
    "vllm:num_requests_waiting", "vllm:num_requests_waiting{engine=\"0\"",
    "vllm:num_requests_waiting{} x",
    "vllm:num_requests_waiting{engine=\"0\"} ", "\x00" * 50])
def test_a_line_that_does_not_parse_is_skipped_not_the_page(junk):
    assert _engine_gauges(VLLM + junk + "\n") == (5.0, 0.5)


def test_the_queue_is_the_engines_not_twice_its_reasons():
    assert _engine_gauges(VLLM) == (5.0, 0.5)
    assert _engine_gauges("") == (None, None)
    assert _engine_gauges("vllm:gpu_cache_usage_perc 0.75\n") == (None, 0.75)  # pre-0.10


def test_the_sims_page_reads_as_vllms():
    """What the simulator exposes parses with the same reader the gateway uses on vLLM."""
    from tests.support.servers import InProcessSim

    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "a10g", "--time-scale", "0.01")
    try:
        server = sim.server
        text = metrics_text(server)
    finally:
        sim.stop()
    waiting, kv = _engine_gauges(text)
    assert waiting == 0.0 and kv == 0.0
    (labels, _), = samples(text, "vllm:cache_config_info")
    assert int(labels["num_gpu_blocks"]) == server.config.num_blocks
