"""Batch admission per backend: additive increase while nothing pushes back, halving under
sustained pressure, and no reaction to a request that waits between two engine steps."""

from __future__ import annotations

from breakeven.gateway.admission import Limit, Signals, p95


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


def test_sustained_queue_kv_or_ttft_cut_it_to_zero_within_seconds():
    for signals, most in ((Signals(waiting=5, kv_usage=0.3, ttft_p95_ms=None, in_flight=64), 9),
                          (Signals(waiting=0, kv_usage=0.99, ttft_p95_ms=None, in_flight=64), 7),
                          (Signals(waiting=0, kv_usage=None, ttft_p95_ms=400.0, in_flight=64),
                           14)):
        lim = Limit(cap=64, kv_limit=0.95, ttft_slo_ms=200, value=64)
        reads = 0
        while lim.allowed > 0:
            why = lim.update(signals)
            reads += 1
            assert why is not None or reads < 3  # the queue needs three reads
            if reads == 7:
                assert lim.allowed <= 16  # a quarter of the level within 3.5 s
        assert reads <= most, signals  # halving (queue, KV) or x0.75 (latency) to zero


def test_a_transient_queue_is_not_pressure():
    lim = Limit(cap=64, value=32)
    for waiting in (2, 0, 3, 0, 1, 0):  # arrivals between steps
        assert lim.update(Signals(waiting, 0.5, None, in_flight=0)) is None
    assert lim.allowed == 32
    for _ in range(2):
        lim.update(Signals(4, 0.5, None, in_flight=32))
    assert lim.update(Signals(4, 0.5, None, in_flight=32)) is not None  # the third read
    assert lim.allowed < 32


def test_p95():
    assert p95([]) is None
    assert p95([5.0]) == 5.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
