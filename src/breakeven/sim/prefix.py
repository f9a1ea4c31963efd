"""Automatic prefix caching, as vLLM's KV cache manager does it. Pure.

A prompt's KV cache is cut into blocks of ``block_size`` tokens (16, vLLM's default); each
*full* block is named by a hash chained over the blocks before it (``block_hashes``), so
two prompts share a block exactly when they share every token up to its end. A block a
running sequence computed is registered under its hash; when the sequence ends, the block
stays cached but becomes evictable (reference count 0), least recently used first. A new
request looks up its leading hashes: every hit block is reused instead of prefilled (and
counted once however many sequences share it); at least the prompt's last token is always
computed, so a full hit still prefills one token, as in vLLM.

The cache never holds memory of its own: evictable blocks are counted among the engine's
free blocks, and ``shrink`` evicts the oldest ones when the engine hands free blocks out.
Counters follow vLLM's ``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits``: prompt
tokens looked up, and tokens found.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence

__all__ = ["PrefixCache", "block_hashes"]


def block_hashes(tokens: Sequence[int | str], block_size: int = 16) -> tuple[int, ...]:
    """The chained hash of every full block of ``tokens`` (a partial last block has none)."""
    out: list[int] = []
    parent = b""
    for end in range(block_size, len(tokens) + 1, block_size):
        piece = "\x1f".join(map(str, tokens[end - block_size:end])).encode()
        parent = hashlib.blake2b(parent + b"\x1e" + piece, digest_size=8).digest()
        out.append(int.from_bytes(parent, "big"))
    return tuple(out)


class PrefixCache:
    """Cached full blocks by hash: reference counts, and an LRU of the unreferenced."""

    def __init__(self, block_size: int) -> None:
        self.block_size = block_size
        self.refs: dict[int, int] = {}
        self.evictable: OrderedDict[int, None] = OrderedDict()  # oldest first
        self.queries = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self.refs)

    def peek(self, hashes: Sequence[int], prompt_tokens: int) -> tuple[int, int]:
        """(blocks hit, of which evictable) for a prompt of ``prompt_tokens``: the leading
        run of ``hashes`` cached, leaving at least one prompt token to compute."""
        most = (prompt_tokens - 1) // self.block_size
        hit = idle = 0
        for h in hashes[:most]:
            refs = self.refs.get(h)
            if refs is None:
                break
            hit += 1
            idle += refs == 0
        return hit, idle

    def acquire(self, hashes: Iterable[int]) -> None:
        """Reference blocks found by ``peek`` (taking the evictable ones off the LRU)."""
        for h in hashes:
            if self.refs[h] == 0:
                del self.evictable[h]
            self.refs[h] += 1

    def count(self, prompt_tokens: int, hit_tokens: int) -> None:
        self.queries += prompt_tokens
        self.hits += hit_tokens

    def register(self, h: int) -> bool:
        """A block the caller just filled: cached under ``h`` unless the hash is already
        there (then the caller's copy stays private). True when registered."""
        if h in self.refs:
            return False
        self.refs[h] = 1
        return True

    def release(self, hashes: Iterable[int]) -> int:
        """Drop one reference from each block; the number that became evictable (free)."""
        freed = 0
        for h in hashes:
            self.refs[h] -= 1
            if self.refs[h] == 0:
                self.evictable[h] = None
                freed += 1
        return freed

    def shrink(self, free_blocks: int) -> None:
        """Evict least recently used blocks until no more are evictable than are free."""
        while len(self.evictable) > free_blocks:
            h, _ = self.evictable.popitem(last=False)
            del self.refs[h]
