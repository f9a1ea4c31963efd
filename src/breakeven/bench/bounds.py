"""How much one ``breakeven bench`` may send: a bounded load test (requests are scheduled
before a level starts, so an unbounded count is memory, not only time). Imports nothing,
so the CLI states the bounds in its options at start-up."""

MOST_REQUESTS = 1_000_000  # a level's requests, warm-up included
MOST_CALLERS = 100_000  # a closed loop's callers at once
MOST_LEVEL_S = 86_400  # a level's measured seconds
