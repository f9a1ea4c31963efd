"""The interactive load the gateway sends each self-hosted backend, as the batch
scheduler reads it: requests sent (their times), time to first token, tokens per request.

The request path writes here and never calls the scheduler; the scheduler reads here and
never reaches into the request path. Pure (times are passed in or read from the monotonic
clock given)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

__all__ = ["Load", "ewma"]

_WINDOW_S = 2.0  # the interactive load is the requests of the last two seconds


def ewma(averages: dict[str, float], key: str, value: float) -> None:
    """Fold ``value`` into a moving average (the first value starts it)."""
    was = averages.get(key)
    averages[key] = value if was is None else 0.9 * was + 0.1 * value


class Load:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.ttft: dict[str, deque[tuple[float, float]]] = defaultdict(
            lambda: deque(maxlen=500))  # backend -> (monotonic, interactive TTFT ms)
        self.arrivals: dict[str, deque[float]] = defaultdict(
            lambda: deque(maxlen=20_000))  # backend -> interactive requests sent (monotonic)
        self.request_tokens: dict[str, float] = {}  # EWMA of an interactive request's tokens

    def sent(self, backend: str) -> None:
        """An interactive request sent to a self-hosted backend."""
        self.arrivals[backend].append(self.clock())

    def first_token(self, backend: str, ttft_ms: float) -> None:
        self.ttft[backend].append((self.clock(), ttft_ms))

    def finished(self, backend: str, tokens: int) -> None:
        """An interactive request's tokens (in + out), once known."""
        ewma(self.request_tokens, backend, tokens)

    def recent_ttft(self, backend: str, now: float, window_s: float) -> list[float]:
        return [ms for t, ms in self.ttft[backend] if t >= now - window_s]

    def tokens_per_s(self, backend: str, now: float) -> float:
        """The interactive token rate sent over the last two seconds."""
        arrivals = self.arrivals[backend]
        while arrivals and arrivals[0] < now - _WINDOW_S:
            arrivals.popleft()
        return len(arrivals) / _WINDOW_S * self.request_tokens.get(backend, 0.0)
