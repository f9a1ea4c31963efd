"""Batch admission per backend: additive increase while nothing pushes back, halving under
sustained pressure, and no reaction to a request that waits between two engine steps."""

from __future__ import annotations

from breakeven.gateway.batch.admission import Limit, Signals, p95, room


def _calm(in_flight: int) -> Signals:
    return Signals(waiting=0, kv_usage=0.3, ttft_p95_ms=50.0, in_flight=in_flight)


def test_grows_only_while_the_limit_binds_and_stops_at_the_cap():
    lim = Limit(cap=64)
    assert lim.allowed == 1
    lim.update(_calm(in_flight=0))  # not using what it has: no growth
    assert lim.allowed == 1
    steps = 0
    while lim.allowed < 64:
        lim.update(_calm(in_flight=lim.allowed))
        steps += 1
    assert steps <= 40 and lim.allowed == 64  # under 20 s at the default 0.5 s
    lim.update(_calm(in_flight=64))
    assert lim.allowed == 64


def test_sustained_queue_or_kv_cut_it_to_zero_within_seconds():
    for signals, most in ((Signals(waiting=5, kv_usage=0.3, ttft_p95_ms=None, in_flight=64), 9),
                          (Signals(waiting=0, kv_usage=0.99, ttft_p95_ms=None, in_flight=64), 7)):
        lim = Limit(cap=64, kv_limit=0.95, value=64)
        reads = 0
        while lim.allowed > 0:
            why = lim.update(signals)
            reads += 1
            assert why is not None or reads < 3  # the queue needs three reads
        assert reads <= most, signals  # halving to zero


def test_latency_cuts_a_quarter_then_waits_for_the_p95_to_show_it():
    lim = Limit(cap=64, ttft_slo_ms=200, value=64)
    slow = Signals(waiting=0, kv_usage=None, ttft_p95_ms=400.0, in_flight=64)
    levels = []
    for _ in range(11):
        assert lim.update(slow) is not None
        levels.append(lim.allowed)
    assert levels == [48] * 5 + [36] * 5 + [27]  # one cut per latency_every (5) reads
    near = Signals(waiting=0, kv_usage=None, ttft_p95_ms=180.0, in_flight=27)
    lim.update(near)
    assert lim.allowed == 27  # within 85% of the SLO: held, not grown
    lim.update(Signals(waiting=0, kv_usage=None, ttft_p95_ms=100.0, in_flight=27))
    assert lim.allowed == 33


def test_a_cut_starts_from_what_runs_not_from_an_unused_limit():
    # pacing kept 12 lines in flight under a limit of 64: halving the limit to 32 would
    # leave admission as it was; the cut must bite at once
    lim = Limit(cap=64, kv_limit=0.95, value=64)
    lim.update(Signals(waiting=0, kv_usage=0.99, ttft_p95_ms=None, in_flight=12))
    assert lim.allowed == 6
    lim = Limit(cap=64, ttft_slo_ms=100, value=64)
    lim.update(Signals(waiting=0, kv_usage=0.3, ttft_p95_ms=150.0, in_flight=12))
    assert lim.allowed == 9


def test_a_transient_queue_is_not_pressure():
    lim = Limit(cap=64, value=32)
    for waiting in (2, 0, 3, 0, 1, 0):  # arrivals between steps
        assert lim.update(Signals(waiting, 0.5, None, in_flight=0)) is None
    assert lim.allowed == 32
    for _ in range(2):
        lim.update(Signals(4, 0.5, None, in_flight=32))
    assert lim.update(Signals(4, 0.5, None, in_flight=32)) is not None  # the third read
    assert lim.allowed < 32


def test_room_is_what_interactive_load_leaves_under_fill_to():
    # 10,000 tok/s capacity filled to 90%; interactive uses 5,000; a line takes 600 tokens
    # over 1.5 s (400 tok/s): 4,000 spare tok/s hold 10 lines in flight
    assert room(10_000, 0.9, 5_000, 600, 1.5) == 10
    assert room(10_000, 0.9, 9_500, 600, 1.5) == 0  # interactive alone is over the mark
    assert room(10_000, 0.9, 8_900, 600, 1.5) == 1  # some to spare: one line at least
    assert room(10_000, 0.9, 0, 0, 1.5) == 1  # no line measured yet


def test_the_capacity_ceiling_caps_growth_and_follows_a_step_at_once():
    lim = Limit(cap=64, value=1)
    for _ in range(60):
        lim.update(Signals(0, 0.3, 50.0, in_flight=lim.allowed, room=12.7))
    assert lim.allowed == 12  # grew to the room, not to the cap
    why = lim.update(Signals(0, 0.3, 50.0, in_flight=12, room=2.4))  # interactive stepped up
    assert lim.allowed == 2 and why is not None and why.startswith("capacity")
    assert lim.update(Signals(0, 0.3, 50.0, in_flight=2, room=None)) is None  # no cap known
    assert lim.allowed == 3


def test_p95():
    assert p95([]) is None
    assert p95([5.0]) == 5.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
