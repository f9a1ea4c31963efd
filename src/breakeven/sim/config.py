"""The engine's limits, as vLLM would launch a sized deployment. Pure.

``EngineConfig`` is what the scheduler obeys (sequence slots, the step's token budget, the
paged KV cache's blocks, the context length, the scheduling policy) and the step-time
function; ``engine_config`` derives them from the sizing model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from breakeven.planner.replica import Deployment
from breakeven.planner.step import decode_step_s

__all__ = ["BLOCK", "EngineConfig", "engine_config"]

BLOCK = 16


@dataclass(frozen=True)
class EngineConfig:
    """The scheduler's limits and the step-time function."""

    max_num_seqs: int
    max_num_batched_tokens: int
    num_blocks: int
    max_model_len: int
    # (decode batch, their mean context, prefill tokens, the mean context those attend to)
    step_time: Callable[[int, float, int, float], float]
    block_size: int = BLOCK
    policy: str = "fcfs"  # or "priority"
    prefix_caching: bool = True  # vLLM V1's default (--enable-prefix-caching)
    # a request reaches the scheduler this long after it arrived (the server's front end:
    # HTTP, tokenisation, inter-process hops), counted in its TTFT; the GPU runs meanwhile
    front_end_s: float = 0.0
    # SGLang's --scheduler-recv-interval: a busy scheduler takes in the requests that have
    # reached it only once this many decode-only steps have run since it last did (a step
    # that ran prompt tokens counts as the whole interval; an idle one takes them at once)
    recv_interval: int = 1
    # TensorRT-LLM's batch waiting (batch_wait_timeout_iters, batch_wait_max_tokens_ratio x
    # the token budget): while sequences decode, new prompts are held from the steps until
    # a step would carry ``batch_wait_tokens`` or they were held ``batch_wait_iters`` steps
    batch_wait_iters: int = 0
    batch_wait_tokens: int = 0
    # TensorRT-LLM's attention-DP balance (attention_dp_config enable_balance, timeout_iters):
    # prompts are held until every one of the ``balance_ranks`` ranks has one to run (a
    # request goes to the rank with the fewest sequences), for at most ``balance_iters`` steps
    # counted since the last release, and not while some rank has nothing to decode
    balance_iters: int = 0
    balance_ranks: int = 1
    # decode tokens ride in the steps that run prompt chunks (vLLM, TensorRT-LLM); False:
    # prompt chunks take steps of their own, first, while the decoders wait (SGLang)
    mixed: bool = True
    # a request is admitted only while the cache can hold every running request's prompt
    # and output tokens whole (TensorRT-LLM's GUARANTEED_NO_EVICT): none is ever preempted
    reserve_whole: bool = False
    # local attention, per request (vLLM's hybrid KV cache manager): of a block's layers,
    # ``local_layers`` keep only a sequence's last ``window_blocks`` blocks; the cache is
    # counted in layer-blocks, ``global_layers + local_layers`` to a block of every layer
    # (1 and 0: every layer attends globally, layer-blocks are blocks)
    global_layers: int = 1
    local_layers: int = 0
    window_blocks: int = 0

    @property
    def kv_tokens(self) -> int:
        return self.num_blocks * self.block_size

    @property
    def units(self) -> int:
        """The cache in layer-blocks."""
        return self.num_blocks * (self.global_layers + self.local_layers)


def engine_config(dep: Deployment, max_model_len: int | None = None,
                  max_num_seqs: int | None = None, policy: str = "fcfs",
                  prefix_caching: bool = True) -> EngineConfig:
    """Limits as vLLM would launch ``dep``: KV blocks from the sizing model's memory budget.

    The scheduler counts a block per 16 tokens of a sequence; a model's local-attention
    layers keep only a window of each sequence (counted per request, ``local_layers``)."""
    mem = dep.mem
    m = dep.model
    model_len = max_model_len or m.max_context
    # a sequence lives on one rank: it fits that rank's share of the cache
    model_len = min(model_len, m.max_context, max(mem.kv_tokens // dep.ranks, 1))
    # a dp-ep replica's attention data-parallel ranks run here as one scheduler over their
    # pooled slots, blocks and token budgets (as ``size`` sizes them); ``max_num_seqs``
    # counts one rank's sequences, as vLLM's --max-num-seqs does per DP engine
    seqs = max_num_seqs * dep.ranks if max_num_seqs else dep.seqs
    # a local layer keeps the blocks its window spans, one more where it straddles two (the
    # catalog gives a window and its layers together, or neither)
    local = m.sliding_window_layers or 0
    window = {"global_layers": m.layers - local, "local_layers": local,
              "window_blocks": -(-(m.sliding_window or 0) // BLOCK) + 1} if local else {}

    sched = dep.scheduling

    def step_time(batch: int, context: float, prefill: int, prefill_context: float) -> float:
        return decode_step_s(dep, batch, context, prefill, prefill_context)

    return EngineConfig(
        max_num_seqs=seqs,
        max_num_batched_tokens=max(dep.batched_tokens, 1),
        num_blocks=mem.kv_tokens // BLOCK,
        max_model_len=model_len,
        step_time=step_time,
        policy=policy,
        prefix_caching=prefix_caching,
        front_end_s=dep.rates.front_end_s,
        mixed=dep.engine.mixed_batches,
        reserve_whole=dep.engine.reserves_whole_requests,
        recv_interval=sched.recv_interval,
        batch_wait_iters=sched.batch_wait_iters,
        batch_wait_tokens=int(sched.batch_wait_tokens_ratio * max(dep.batched_tokens, 1)),
        balance_iters=sched.adp_balance_iters,
        balance_ranks=dep.ranks,
        **window,
    )
