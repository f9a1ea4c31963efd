"""The engine's prefix cache (block hashes, sharing, LRU eviction), the phase times each
sequence records, and the live server's clock (on a fake wall clock)."""

from __future__ import annotations

import math
import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.bench.workload import Lengths, synthetic
from breakeven.sim.clock import SimClock
from breakeven.sim.drive import run
from breakeven.sim.engine import Sequence, SimEngine
from breakeven.sim.offline import simulate
from breakeven.sim.prefix import block_hashes
from tests.support.engines import held_units, toy_config


def _prompt(shared: int, own: int, tag: int) -> list[str]:
    return [f"s{i}" for i in range(shared)] + [f"{tag}-{i}" for i in range(own)]


def _seq(tokens: list[str], out: int, arrival: float = 0.0) -> Sequence:
    return Sequence(len(tokens), out, arrival, hashes=block_hashes(tokens))


def test_block_hashes_chain_over_full_blocks_only():
    a = block_hashes(_prompt(40, 9, 1))
    b = block_hashes(_prompt(40, 9, 2))
    assert len(a) == 3 and len(b) == 3  # 49 tokens: three full blocks, the rest has none
    assert a[:2] == b[:2] and a[2] != b[2]  # block 3 holds 8 tokens of each own part
    # the same 16 tokens after a different prefix are a different block
    assert block_hashes(["x"] * 16 + ["y"] * 16)[1] != block_hashes(["z"] * 16 + ["y"] * 16)[1]


def test_a_shared_prefix_skips_its_prefill_and_counts_as_vllm_does():
    engine = SimEngine(toy_config(blocks=400, budget=2048))
    first = _seq(_prompt(512, 40, 1), 20)
    run(engine, [first])
    second = _seq(_prompt(512, 40, 2), 20, arrival=engine.now)
    prefilled = engine.prompt_tokens_total
    run(engine, [second])
    assert first.cached_tokens == 0 and second.cached_tokens == 512
    assert engine.prompt_tokens_total - prefilled == 552 - 512  # only its own part ran
    assert second.first_token - second.arrival < first.first_token - first.arrival
    assert engine.prefix.queries == 2 * 552 and engine.prefix.hits == 512
    assert engine.free_units == engine.config.units  # cached blocks count as free


def test_a_full_hit_still_computes_the_last_token_and_caching_can_be_off():
    on = SimEngine(toy_config(blocks=100))
    prompt = _prompt(64, 0, 0)
    run(on, [_seq(prompt, 5)])
    again = _seq(prompt, 5, arrival=on.now)
    run(on, [again])
    assert again.cached_tokens == 48  # 4 full blocks, but the last token is computed
    off = SimEngine(toy_config(blocks=100, prefix_caching=False))
    run(off, [_seq(prompt, 5)])
    later = _seq(prompt, 5, arrival=off.now)
    run(off, [later])
    assert later.cached_tokens == 0 and off.prefix is None


def test_cached_blocks_are_evicted_least_recently_used_first():
    engine = SimEngine(toy_config(blocks=20, budget=512))  # 320 tokens of KV in all
    old, new = _prompt(0, 96, 1), _prompt(0, 96, 2)
    run(engine, [_seq(old, 2)])
    run(engine, [replace(_seq(new, 2), arrival=engine.now)])
    # a long request needs most of the cache: the older prefix goes first
    run(engine, [replace(_seq(_prompt(0, 200, 3), 2), arrival=engine.now)])
    again_new = _seq(new, 2, arrival=engine.now)
    run(engine, [again_new])
    again_old = _seq(old, 2, arrival=engine.now)
    run(engine, [again_old])
    assert again_new.cached_tokens > 0 and again_old.cached_tokens == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200), st.integers(1, 80),
                          st.floats(0, 0.3)), min_size=1, max_size=30),
       st.integers(30, 90), st.sampled_from([None, (1, 1, 3), (2, 1, 2)]))
def test_shared_blocks_are_conserved_under_preemption_and_eviction(reqs, blocks, window):
    """Several prompts share one of four prefixes; a small cache preempts and evicts. A
    block is never handed out twice nor lost: the blocks in use are exactly those the
    running sequences hold, counting a shared one once; with local layers too (their
    window is each sequence's own, the cache holds the global layers' blocks)."""
    prefixes = [_prompt(n, 0, 0) for n in (0, 48, 130, 300)]
    engine = SimEngine(toy_config(blocks, window=window))
    seqs = []
    for k, (p, own, out, at) in enumerate(reqs):
        tokens = prefixes[p] + [f"own{k}-{i}" for i in range(own)]
        if tokens and len(tokens) + out <= blocks * 16:
            seqs.append(_seq(tokens, out, at))

    def conserved(_step: object) -> None:
        assert engine.prefix is not None
        g = engine.config.global_layers
        assert 0 <= len(engine.prefix.evictable) * g <= engine.free_units
        assert engine.config.units - engine.free_units == held_units(engine)

    run(engine, seqs, after_step=conserved)
    assert engine.free_units == engine.config.units
    assert all(refs == 0 for refs in engine.prefix.refs.values())
    for q in seqs:
        assert q.generated == q.output_tokens
        assert q.arrival <= q.scheduled <= q.first_token <= q.finished


def test_each_sequence_records_when_it_was_first_scheduled():
    engine = SimEngine(toy_config(blocks=400, seqs=2))
    seqs = [Sequence(100, 30) for _ in range(4)]
    run(engine, seqs)
    first, _, third, _ = seqs
    assert first.scheduled == 0.0  # admitted in the first step
    assert third.scheduled > 0.0  # two seats: it queued until one freed
    assert third.scheduled >= min(q.finished for q in seqs[:2])
    assert all(q.scheduled < q.first_token for q in seqs)


class _Wall:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_wall_clock_keeps_its_timeline_and_the_virtual_one_stops():
    wall = _Wall()
    clock = SimClock(wall, 0.01)
    wall.t += 0.5
    assert math.isclose(clock.now(), 50.0)
    clock.slide(0.2)
    clock.pause()  # a wall clock cannot stop
    wall.t += 0.1
    assert math.isclose(clock.now(), 60.0)
    virtual = SimClock(wall, 0.01, kind="virtual", slack_s=0.005)
    assert virtual.now() == 0.0
    wall.t += 0.003
    virtual.slide(0.003)  # within the slack: kept, later steps catch up
    assert virtual.slid_s == 0.0 and math.isclose(virtual.now(), 0.3)
    wall.t += 0.102
    virtual.slide(0.105)  # 0.1 s beyond the slack: that time did not pass
    assert math.isclose(virtual.slid_s, 0.1) and math.isclose(virtual.now(), 0.5)
    virtual.pause()
    wall.t += 2.0
    assert math.isclose(virtual.now(), 0.5)  # stood still while paused
    virtual.resume()
    assert math.isclose(virtual.held_s, 2.0) and math.isclose(virtual.now(), 0.5)
    assert math.isclose(virtual.due(1.5), wall.t + 0.01)


def test_the_engine_reads_no_clock():
    """The engine reads no clock: the same trace gives the same times, twice."""
    rng = random.Random(3)
    trace = [(rng.randint(20, 300), rng.randint(1, 60), rng.random()) for _ in range(50)]

    def times() -> list[tuple[float | None, float | None]]:
        seqs = [_seq(_prompt(64, p, k), o, a) for k, (p, o, a) in enumerate(trace)]
        run(SimEngine(toy_config(blocks=200)), seqs)
        return [(q.first_token, q.finished) for q in seqs]

    assert times() == times()


def test_an_offline_trace_with_a_shared_system_prompt_hits_the_cache():
    specs = synthetic(60, Lengths.parse("fixed:300", "--input-len"),
                      Lengths.parse("fixed:20", "--output-len"), prefix_tokens=600)
    on = simulate(toy_config(blocks=4000, budget=2048), specs, rate=20.0)
    off = simulate(toy_config(blocks=4000, budget=2048, prefix_caching=False), specs, rate=20.0)
    assert off["prefix_cache_hit_rate"] == 0.0
    assert on["prefix_cache_hit_rate"] > 0.5  # ~600 of every ~910 prompt tokens, after one
    assert on["ttft_ms"]["p50"] < 0.6 * off["ttft_ms"]["p50"]
