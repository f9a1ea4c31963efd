"""The engine's limits, as vLLM would launch a sized deployment. Pure.

``EngineConfig`` is what the scheduler obeys (sequence slots, the step's token budget, the
paged KV cache's blocks, the context length, the scheduling policy) and the step-time
function; ``engine_config`` derives them from the sizing model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from breakeven.planner.replica import Deployment, cached_tokens
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
    # decode tokens ride in the steps that run prompt chunks (vLLM, TensorRT-LLM); False:
    # prompt chunks take steps of their own, first, while the decoders wait (SGLang)
    mixed: bool = True

    @property
    def kv_tokens(self) -> int:
        return self.num_blocks * self.block_size


def engine_config(dep: Deployment, max_model_len: int | None = None,
                  max_num_seqs: int | None = None, policy: str = "fcfs",
                  prefix_caching: bool = True,
                  sequence_len: int | None = None) -> EngineConfig:
    """Limits as vLLM would launch ``dep``: KV blocks from the sizing model's memory budget.

    The scheduler counts a block per 16 tokens of a sequence; local-attention layers keep
    only their window, so when the requests' length is known (``sequence_len``, prompt plus
    output) the blocks are counted in tokens of sequences that long, as the sizing model
    counts them (``replica.cached_tokens``). Without it every layer is taken to hold every
    token (no credit for windows: a cache that holds at least what is stated)."""
    mem = dep.mem
    model_len = max_model_len or dep.model.max_context
    # a sequence lives on one rank: it fits that rank's share of the cache
    model_len = min(model_len, dep.model.max_context, max(mem.kv_tokens // dep.ranks, 1))
    # a dp-ep replica's attention data-parallel ranks run here as one scheduler over their
    # pooled slots, blocks and token budgets (as ``size`` sizes them); ``max_num_seqs``
    # counts one rank's sequences, as vLLM's --max-num-seqs does per DP engine
    seqs = max_num_seqs * dep.ranks if max_num_seqs else dep.seqs

    def step_time(batch: int, context: float, prefill: int, prefill_context: float) -> float:
        return decode_step_s(dep, batch, context, prefill, prefill_context)

    return EngineConfig(
        max_num_seqs=seqs,
        max_num_batched_tokens=max(dep.batched_tokens, 1),
        num_blocks=_blocks(dep, mem.kv_tokens, sequence_len),
        max_model_len=model_len,
        step_time=step_time,
        policy=policy,
        prefix_caching=prefix_caching,
        front_end_s=dep.rates.front_end_s,
        mixed=dep.engine.mixed_batches,
    )


def _blocks(dep: Deployment, kv_tokens: int, sequence_len: int | None) -> int:
    if not sequence_len:
        return kv_tokens // BLOCK
    held = cached_tokens(dep.model, sequence_len)
    return int(kv_tokens * sequence_len / held) // BLOCK if held else kv_tokens // BLOCK
