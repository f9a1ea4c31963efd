"""A small engine for the simulator's own tests: a block cache of ``blocks`` 16-token blocks
and a step time linear in the batch and the prefill tokens (no GPU figures involved)."""

from __future__ import annotations

import math

from breakeven.sim.engine import EngineConfig, SimEngine


def toy_config(blocks: int, seqs: int = 8, budget: int = 256, policy: str = "fcfs",
               prefix_caching: bool = True, mixed: bool = True,
               window: tuple[int, int, int] | None = None) -> EngineConfig:
    """``window``: (global layers, local layers, blocks a local layer keeps)."""
    layers = ({"global_layers": window[0], "local_layers": window[1],
               "window_blocks": window[2]} if window else {})
    return EngineConfig(max_num_seqs=seqs, max_num_batched_tokens=budget, num_blocks=blocks,
                        max_model_len=blocks * 16, policy=policy, prefix_caching=prefix_caching,
                        mixed=mixed, **layers,
                        step_time=lambda b, ctx, pre, pctx: 0.001 + 1e-5 * b + 2e-6 * pre)


def held_units(engine: SimEngine) -> int:
    """Layer-blocks in use, counted from scratch: each running sequence's own (its global
    layers' blocks outside the prefix cache, its local layers' window) and every cached
    block some sequence references (its global layers)."""
    cfg = engine.config
    total = 0
    for q in engine.running:
        n = math.ceil(q.kv_at(engine.decode_steps) / cfg.block_size) if q.decoding else q.blocks
        total += cfg.global_layers * (n - len(q.cached)) + cfg.local_layers * min(
            n, cfg.window_blocks)
    if engine.prefix is not None:
        total += cfg.global_layers * sum(1 for r in engine.prefix.refs.values() if r > 0)
    return total
