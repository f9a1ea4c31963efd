"""Driving a ``SimEngine`` offline: arrivals at their times, or a closed loop of callers.
Pure: the engine's own clock only.

``mark`` (the index of a sequence, in arrival or sending order) notes the engine's clock and
the tokens generated so far when that sequence is added (``SimEngine.marked``): where a
measured window that leaves out a warm-up begins.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from breakeven.sim.engine import Sequence, SimEngine, Step

__all__ = ["run", "run_closed"]


def run(engine: SimEngine, arrivals: Iterable[Sequence],
        after_step: Callable[[Step], None] | None = None, mark: int = 0) -> list[Sequence]:
    """Every sequence (sorted by arrival) through to the end, ``after_step`` (when given)
    called after each step. Returns them in arrival order."""
    pending = deque(sorted(arrivals, key=lambda q: q.arrival))
    done: list[Sequence] = list(pending)
    while pending or engine.busy:
        while pending and pending[0].arrival <= engine.now:
            if len(done) - len(pending) == mark:
                engine.mark()
            engine.add(pending.popleft())
        step = engine.step()
        if step is None:
            if not pending:
                break
            engine.idle_until(pending[0].arrival)
        elif after_step is not None:
            after_step(step)
    return done


def run_closed(engine: SimEngine, sequences: Iterable[Sequence], concurrency: int,
               mark: int = 0) -> list[Sequence]:
    """A closed loop: ``concurrency`` callers, each sending its next sequence the moment
    its previous one finishes. Returns the sequences in sending order."""
    pending = deque(sequences)
    done: list[Sequence] = list(pending)

    def send() -> None:
        if len(done) - len(pending) == mark:
            engine.mark()
        seq = pending.popleft()
        seq.arrival = engine.now
        engine.add(seq)

    for _ in range(min(concurrency, len(pending))):
        send()
    while engine.busy:
        step = engine.step()
        if step is None:
            break
        for _ in step.finished:
            if pending:
                send()
    return done
