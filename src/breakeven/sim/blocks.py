"""The engine's paged KV cache, counted in layer-blocks. Pure: no clock, no I/O.

A block holds ``block_size`` tokens of one sequence in every layer. Without local attention
a layer-block is a block; with it (vLLM's hybrid KV cache manager) a sequence's
``global_layers`` hold a block for every ``block_size`` tokens of its context and its
``local_layers`` only its last ``window_blocks`` blocks, so the pool counts
``global_layers x blocks + local_layers x min(blocks, window)``. With prefix caching on,
the full prompt blocks a sequence filled are registered under their hashes
(``breakeven.sim.prefix``) and reused by a later prompt that shares them; cached blocks
nobody holds count as free and are evicted, oldest first, as free blocks are handed out.
Only the global layers' blocks are cached (a hit's window is the sequence's own).
"""

from __future__ import annotations

import math

from breakeven.sim.config import EngineConfig
from breakeven.sim.prefix import PrefixCache
from breakeven.sim.waiting import Sequence

__all__ = ["BlockPool"]


class BlockPool:
    """Free layer-blocks, what each sequence holds of them, and the prefix cache."""

    def __init__(self, config: EngineConfig) -> None:
        self.size = config.block_size
        self.units = config.units
        self.free = config.units
        self.g, self.lw, self.wb = (config.global_layers, config.local_layers,
                                    config.window_blocks)
        self.prefix = PrefixCache(config.block_size) if config.prefix_caching else None

    @property
    def usage(self) -> float:
        return (self.units - self.free) / self.units if self.units else 0.0

    def allocate(self, seq: Sequence, budget: int) -> int:
        """Blocks for the next prefill chunk of ``seq``; the chunk size (0: no room). A
        fresh admission first takes what the prefix cache holds of its prompt."""
        hit = idle = 0
        # a fresh admission looks its prompt up in the prefix cache
        prefix = self.prefix if seq.computed == 0 and seq.hashes else None
        if prefix is not None:
            hit, idle = prefix.peek(seq.hashes, seq.target)
        start = max(seq.computed, hit * self.size)
        chunk = min(seq.target - start, budget)
        total = math.ceil((start + chunk) / self.size)
        need = total - max(seq.blocks, hit)  # blocks of the global layers
        units = self.g * (need + idle) + self.lw * (min(total, self.wb)
                                                    - min(seq.blocks, self.wb))
        if units > self.free:
            return 0
        if prefix is not None:
            prefix.acquire(seq.hashes[:hit])
            prefix.count(seq.prompt_tokens, hit * self.size)
            seq.cached, seq.hashed, seq.blocks = list(seq.hashes[:hit]), hit, hit
            if seq.scheduled is None:
                seq.cached_tokens = hit * self.size
        self.take(units)
        seq.blocks += need
        seq.computed = start + chunk
        if self.prefix is not None:
            self._register(seq)
        return chunk

    def take(self, units: int) -> None:
        """Hand out free layer-blocks; cached blocks nobody holds (each its global layers'
        share: local layers are never cached) are evicted to make them."""
        self.free -= units
        if self.prefix is not None:
            self.prefix.shrink(self.free // self.g)

    def release(self, seq: Sequence, blocks: int) -> None:
        """Return what ``seq``'s ``blocks`` hold: its local layers' window and its global
        layers' blocks; those in the prefix cache are only returned (and stay cached,
        evictable) when no other sequence still holds them."""
        units = self.g * (blocks - len(seq.cached)) + self.lw * min(blocks, self.wb)
        if seq.cached and self.prefix is not None:
            units += self.g * self.prefix.release(seq.cached)
            seq.cached = []
        seq.hashed = 0
        self.free += units
        seq.blocks = 0

    def _register(self, seq: Sequence) -> None:
        """Put the prompt blocks ``seq`` has just filled into the prefix cache."""
        assert self.prefix is not None
        full = min(min(seq.computed, seq.prompt_tokens) // self.size, len(seq.hashes))
        for h in seq.hashes[seq.hashed:full]:
            if self.prefix.register(h):
                seq.cached.append(h)
        seq.hashed = max(seq.hashed, full)
