"""What holds new requests back from an engine's steps. Pure.

Three schedulers' settings (``EngineConfig``), each with the counter its scheduler keeps:

* SGLang's ``--scheduler-recv-interval N`` (python/sglang/srt/managers/
  scheduler_recv_skipper.py): the scheduler looks for new requests when its count reaches
  N; a decode-only step counts one, any other the whole interval; idle, it looks at once.
* TensorRT-LLM's batch waiting (``batch_wait_timeout_iters``, ``batch_wait_max_tokens_ratio``;
  PyExecutor._waiting_requests): while sequences decode, the step leaves its prompts out
  until it would carry the ratio of the token budget or they waited the timeout's steps.
* TensorRT-LLM's attention-DP balancing (``attention_dp_config`` enable_balance,
  timeout_iters; PyExecutor._balance_adp_requests): prompts wait until every rank has one,
  counting steps since the last release (the count runs on while nothing waits), at most
  the timeout, and not while some rank has nothing to decode. The router puts a request on
  the rank with the fewest sequences.
"""

from __future__ import annotations

from breakeven.sim.config import EngineConfig
from breakeven.sim.waiting import Sequence, Waiting

__all__ = ["Holds"]


class Holds:
    """The counters behind an engine's holds, asked once a step."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._since_recv = 0  # towards the next look for new requests
        self._held = 0  # steps the prompts were held (batch waiting, balancing)
        self._load = [0] * config.balance_ranks  # sequences per rank, queued or running
        self._prompts_held = bool(config.balance_iters or config.batch_wait_iters
                                  or config.batch_wait_tokens)
        self.active = self._prompts_held or config.recv_interval > 1  # else: never asked

    def takes_in(self, busy: bool) -> bool:
        """Whether the scheduler takes in what has reached it, at a step's start."""
        interval = self.config.recv_interval
        if interval <= 1 or not busy or self._since_recv >= interval:
            self._since_recv = 0
            return True
        return False

    def stepped(self, prefill: int) -> None:
        """A step ran (with ``prefill`` prompt tokens)."""
        self._since_recv += self.config.recv_interval if prefill else 1

    def queued(self, seq: Sequence) -> None:
        """``seq`` joins the waiting queue: on the least loaded rank, where ranks balance."""
        if self.config.balance_iters:
            seq.rank = self._load.index(min(self._load))
            self._load[seq.rank] += 1

    def left(self, seq: Sequence) -> None:
        """``seq`` finished or went away."""
        if self.config.balance_iters:
            self._load[seq.rank] -= 1

    def holds(self, decode: int, budget: int, running: list[Sequence],
              waiting: Waiting) -> bool:
        """Whether this step, with ``decode`` of the ``running`` sequences decoding (the
        rest mid-prefill) and ``budget`` tokens left, leaves its prompts out."""
        if not self._prompts_held:
            return False
        cfg = self.config
        free = cfg.max_num_seqs - len(running)
        partial = [q for q in running if not q.decoding] if len(running) > decode else []
        prompts = partial + waiting.first(free)
        if cfg.balance_iters:
            if len({q.rank for q in prompts}) >= cfg.balance_ranks:
                self._held = 0  # every rank has a prompt to run
                return False
            self._held += 1
            if self._held >= cfg.balance_iters or decode < cfg.balance_ranks:
                self._held = 0
                return False
            return True
        if not decode or not prompts:
            return False  # nothing decodes, or nothing to hold
        pending = sum(q.target - q.computed for q in prompts)
        if (self._held >= cfg.batch_wait_iters
                or decode + min(budget, pending) >= cfg.batch_wait_tokens):
            self._held = 0
            return False
        self._held += 1
        return True
