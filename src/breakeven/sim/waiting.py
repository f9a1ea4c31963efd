"""A request inside the simulated engine, and the queue it waits in. Pure.

``Sequence`` carries a request's outcome (first token, finish, preemptions) and the
scheduler's state for it (prefill progress, blocks held, the step it entered decode at);
``Waiting`` orders the sequences not yet running: first come first served, or by
(priority, arrival) under the priority policy.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field

__all__ = ["POLICIES", "Sequence", "Waiting"]

POLICIES = ("fcfs", "priority")


@dataclass(eq=False)
class Sequence:
    """One request inside the engine, and what happened to it (times in engine seconds)."""

    prompt_tokens: int
    output_tokens: int
    arrival: float = 0.0
    key: object = None  # the caller's handle (an HTTP stream, a trace row)
    priority: int = 0  # lower runs first under the priority policy
    hashes: tuple[int, ...] = ()  # the prompt's full-block hashes (prefix caching)
    # the output tokens admission reserves under EngineConfig.reserve_whole: the request's
    # max_tokens, where it may stop sooner (0: output_tokens)
    max_tokens: int = 0
    # outcome
    scheduled: float | None = None  # first admitted (queue time ends, prefill begins)
    cached_tokens: int = 0  # prompt tokens the prefix cache held at the first admission
    first_token: float | None = None
    finished: float | None = None
    generated: int = 0
    preemptions: int = 0
    # scheduler state
    computed: int = 0  # tokens with KV in this admission (prefill phase)
    target: int = 0  # tokens to prefill in this admission: prompt + generated so far
    blocks: int = 0  # blocks held while prefilling (decode derives them)
    decoding: bool = False
    step0: int = 0  # first decode step
    gen0: int = 0  # generated tokens at step0
    kv0: int = 0  # KV tokens at step0
    epoch: int = 0  # bumps on preemption; stale heap entries carry an old epoch
    under: bool = False  # decoding and still within its window (local layers still grow)
    cached: list[int] = field(default_factory=list)  # prefix-cache blocks referenced
    hashed: int = 0  # leading prompt blocks looked up or registered in this admission
    rank: int = 0  # the attention-DP rank it runs on (where the engine balances them)

    def kv_at(self, step: int) -> int:
        return self.kv0 + (step - self.step0)

    @property
    def done(self) -> bool:
        return self.finished is not None


class Waiting:
    """The waiting queue: first come first served, or a heap on (priority, arrival)."""

    def __init__(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown scheduling policy {policy!r}")
        self.by_priority = policy == "priority"
        self._fifo: deque[Sequence] = deque()
        self._heap: list[tuple[int, float, int, Sequence]] = []
        self._serial = 0

    def __len__(self) -> int:
        return len(self._heap) if self.by_priority else len(self._fifo)

    def add(self, seq: Sequence, *, front: bool = False) -> None:
        """Queue ``seq``; ``front`` (a preempted sequence) puts it at the head under FCFS."""
        if self.by_priority:
            self._serial += 1
            heapq.heappush(self._heap, (seq.priority, seq.arrival, self._serial, seq))
        elif front:
            self._fifo.appendleft(seq)
        else:
            self._fifo.append(seq)

    def first(self, n: int) -> list[Sequence]:
        """The ``n`` sequences admission would take next, in its order."""
        if self.by_priority:
            return [entry[3] for entry in heapq.nsmallest(n, self._heap)]
        return list(itertools.islice(self._fifo, max(n, 0)))

    def head(self) -> Sequence:
        return self._heap[0][3] if self.by_priority else self._fifo[0]

    def pop(self) -> Sequence:
        return heapq.heappop(self._heap)[3] if self.by_priority else self._fifo.popleft()

    def remove(self, seq: Sequence) -> bool:
        if not self.by_priority:
            try:
                self._fifo.remove(seq)
            except ValueError:
                return False
            return True
        kept = [entry for entry in self._heap if entry[3] is not seq]
        if len(kept) == len(self._heap):
            return False
        heapq.heapify(kept)
        self._heap = kept
        return True
