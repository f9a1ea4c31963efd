"""A small engine for the simulator's own tests: a block cache of ``blocks`` 16-token blocks
and a step time linear in the batch and the prefill tokens (no GPU figures involved)."""

from __future__ import annotations

from breakeven.sim.engine import EngineConfig


def toy_config(blocks: int, seqs: int = 8, budget: int = 256, policy: str = "fcfs",
               prefix_caching: bool = True, mixed: bool = True) -> EngineConfig:
    return EngineConfig(max_num_seqs=seqs, max_num_batched_tokens=budget, num_blocks=blocks,
                        max_model_len=blocks * 16, policy=policy, prefix_caching=prefix_caching,
                        mixed=mixed,
                        step_time=lambda b, ctx, pre, pctx: 0.001 + 1e-5 * b + 2e-6 * pre)
