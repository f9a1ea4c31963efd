"""The paged KV cache on its own (sim/blocks.py): chunks take the blocks they fill, local
layers stop at their window, a shared prompt's blocks are held once and reused, and
everything handed out comes back."""

from __future__ import annotations

from breakeven.sim.blocks import BlockPool
from breakeven.sim.prefix import block_hashes
from breakeven.sim.waiting import Sequence
from tests.support.engines import toy_config


def _seq(prompt: int, hashes: tuple[int, ...] = ()) -> Sequence:
    seq = Sequence(prompt, 10, hashes=hashes)
    seq.target = prompt
    return seq


def test_a_chunk_takes_the_blocks_it_fills_and_stops_at_the_budget():
    pool = BlockPool(toy_config(100, prefix_caching=False))
    seq = _seq(100)
    assert pool.allocate(seq, 40) == 40 and seq.blocks == 3 and pool.free == 97
    assert pool.allocate(seq, 1000) == 60 and seq.blocks == 7 and pool.free == 93
    pool.release(seq, seq.blocks)
    assert pool.free == 100 and seq.blocks == 0


def test_no_room_allocates_nothing_and_changes_nothing():
    pool = BlockPool(toy_config(4, prefix_caching=False))
    seq = _seq(100)  # 7 blocks
    assert pool.allocate(seq, 100) == 0
    assert pool.free == 4 and seq.blocks == 0 and seq.computed == 0


def test_local_layers_hold_only_their_window():
    # 1 global and 3 local layers, the local ones keeping 2 blocks: 10 blocks of context
    # take 10 global layer-blocks and 3 x 2 local ones
    pool = BlockPool(toy_config(50, prefix_caching=False, window=(1, 3, 2)))
    seq = _seq(160)
    assert pool.allocate(seq, 160) == 160
    assert pool.units - pool.free == 10 + 3 * 2
    pool.release(seq, seq.blocks)
    assert pool.free == pool.units


def test_a_shared_prompt_is_held_once_reused_and_evicted_only_when_free_blocks_run_out():
    pool = BlockPool(toy_config(20))
    hashes = block_hashes(list(range(64)))  # 4 full blocks
    first = _seq(64, hashes)
    assert pool.allocate(first, 64) == 64 and pool.free == 16
    second = _seq(64, hashes)
    # the last prompt token is always computed: 3 blocks hit, the 4th recomputed
    assert pool.allocate(second, 64) == 16 and second.cached_tokens == 48
    assert pool.free == 15  # only the recomputed block is new
    pool.release(first, first.blocks)
    pool.release(second, second.blocks)
    assert pool.free == 20 and len(pool.prefix) == 4  # cached, evictable, counted free
    hog = _seq(20 * 16)
    assert pool.allocate(hog, 20 * 16) == 20 * 16 and pool.free == 0
    assert len(pool.prefix) == 0  # evicted to make room
