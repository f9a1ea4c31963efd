"""``/metrics`` of ``breakeven sim`` in vLLM's (0.11+) names and semantics: per-gap
``vllm:inter_token_latency_seconds`` (also under the older ``time_per_output_token``
name, which vLLM kept as its alias), per-request
``vllm:request_time_per_output_token_seconds``, the queue / prefill / decode / inference /
end-to-end time histograms (vLLM's buckets), the prefix cache's query and hit counters (in
tokens), the cache's configuration as vLLM's ``vllm:cache_config_info`` info gauge (the
blocks a router reads capacity from), the ``engine`` label; times in simulated seconds;
plus the server's own lateness against its schedule. Pure."""

from __future__ import annotations

from typing import Any

__all__ = ["metrics_text"]


def metrics_text(self: Any) -> str:
    """The exposition of a ``SimServer`` (``self``)."""
    e = self.engine
    labels = f'model_name="{self.served_name}",engine="0"'
    lines = [
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{labels}}} {len(e.running)}",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{labels}}} {len(e.waiting)}",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{labels}}} {e.kv_usage:.6f}",
        "# TYPE vllm:num_preemptions_total counter",
        f"vllm:num_preemptions_total{{{labels}}} {e.preemptions}",
        "# TYPE vllm:prompt_tokens_total counter",
        f"vllm:prompt_tokens_total{{{labels}}} {e.prompt_tokens_total}",
        "# TYPE vllm:generation_tokens_total counter",
        f"vllm:generation_tokens_total{{{labels}}} {e.generation_tokens_total}",
        "# TYPE vllm:request_success_total counter",
    ]
    seen = self.observed
    lines += [f'vllm:request_success_total{{{labels},finished_reason="{reason}"}} {count}'
              for reason, count in seen.finished.items()]
    cfg, dep = self.config, self.dep
    lines += [  # an info gauge (value 1) whose labels are the cache's configuration
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig",
        "# TYPE vllm:cache_config_info gauge",
        f'vllm:cache_config_info{{engine="0",block_size="{cfg.block_size}",'
        f'cache_dtype="{"fp8" if dep.kv == "fp8" else "auto"}",'
        f'enable_prefix_caching="{cfg.prefix_caching}",'
        f'gpu_memory_utilization="{dep.memory_utilization:g}",'
        f'num_gpu_blocks="{cfg.num_blocks}"}} 1.0',
    ]
    cache = e.prefix
    lines += [
        "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number "
        "of queried tokens.",
        "# TYPE vllm:prefix_cache_queries_total counter",
        f"vllm:prefix_cache_queries_total{{{labels}}} {cache.queries if cache else 0}",
        "# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of "
        "cached tokens.",
        "# TYPE vllm:prefix_cache_hits_total counter",
        f"vllm:prefix_cache_hits_total{{{labels}}} {cache.hits if cache else 0}",
    ]
    lines += seen.ttft.lines("vllm:time_to_first_token_seconds", labels)
    lines += seen.itl.lines("vllm:inter_token_latency_seconds", labels)
    lines += seen.itl.lines("vllm:time_per_output_token_seconds", labels)  # pre-0.11
    lines += seen.tpot.lines("vllm:request_time_per_output_token_seconds", labels)
    lines += seen.e2e.lines("vllm:e2e_request_latency_seconds", labels)
    lines += seen.queue.lines("vllm:request_queue_time_seconds", labels)
    lines += seen.prefill.lines("vllm:request_prefill_time_seconds", labels)
    lines += seen.decode.lines("vllm:request_decode_time_seconds", labels)
    lines += seen.inference.lines("vllm:request_inference_time_seconds", labels)
    lines += [
        "# HELP breakeven_sim_lag_seconds How far the server ran behind the simulated "
        "schedule at its last step (wall seconds).",
        "# TYPE breakeven_sim_lag_seconds gauge",
        f"breakeven_sim_lag_seconds {self.lag_s:.6f}",
        "# TYPE breakeven_sim_max_lag_seconds gauge",
        f"breakeven_sim_max_lag_seconds {self.max_lag_s:.6f}",
        "# HELP breakeven_sim_late_steps_total Steps that ended behind the schedule.",
        "# TYPE breakeven_sim_late_steps_total counter",
        f"breakeven_sim_late_steps_total {self.late_steps}",
        "# TYPE breakeven_sim_late_seconds_total counter",
        f"breakeven_sim_late_seconds_total {self.late_s_total:.6f}",
        "# TYPE breakeven_sim_steps_total counter",
        f"breakeven_sim_steps_total {e.steps}",
    ]
    return "\n".join(lines) + "\n"
