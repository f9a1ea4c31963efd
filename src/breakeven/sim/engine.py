"""A continuous-batching serving engine as a discrete-event model. Pure: no clock, no I/O.

It schedules the way vLLM's V1 scheduler does, one engine step at a time:

* running sequences come first: each decoding sequence takes one token of the step's
  token budget (``max_num_batched_tokens``) and, when its last KV block is full, a new
  16-token block; when the paged KV cache has no free block the most recently admitted
  sequence is preempted (recompute: its blocks are freed, it returns to the head of the
  queue and later prefills its prompt *and* the tokens it had generated);
* partially prefilled prompts continue (chunked prefill), then waiting requests are admitted
  first come, first served while there are sequence slots (``max_num_seqs``), token budget
  and free blocks; admission never skips the head of the queue;
* a prompt whose last chunk ran in a step emits its first token at the end of that step;
  every decoding sequence emits one token per step.

With ``EngineConfig.mixed`` off (SGLang: prefill first, no mixed chunks) a step runs prompt
chunks alone, with the whole budget, whenever one can go on or be admitted; the decoders
wait for a step without one. With ``policy="priority"`` the queue is ordered by (priority,
arrival) and the preempted sequence is the running one with the largest, as vLLM's option
(a running sequence is never preempted just to admit a waiting one). With
``EngineConfig.reserve_whole`` (TensorRT-LLM's GUARANTEED_NO_EVICT) a request is admitted
only while the cache could hold it and every running one at their last tokens, so none is
ever preempted.

Local attention is counted per request, as vLLM's hybrid KV cache manager does: the cache
is counted in layer-blocks, and a sequence's ``local_layers`` hold only its last
``window_blocks`` blocks, so past its window a sequence takes the global layers' blocks
only. The prefix cache holds the global layers' blocks; a hit's window is the sequence's own.

A step's duration comes from the sizing model (``step.decode_step_s``) for the decode
batch, its mean context and the prefill tokens riding along. Decoding sequences advance
lazily: a sequence stores the decode step it entered decode at, so its length at any step is
arithmetic, and the blocks a step needs are counted by residue class modulo the block size;
a step costs O(1) plus O(log n) per finishing, preempted or window-outgrowing sequence.

With prefix caching on (vLLM V1's default), a sequence carrying its prompt's block hashes
reuses the full blocks another request left in the cache (``breakeven.sim.prefix``); cached
blocks nobody holds are evicted, oldest first, when free blocks are handed out.

Each sequence records when it arrived, was first scheduled, emitted its first token and
finished (vLLM's queue, prefill, decode and inference times); it reaches the waiting queue
``EngineConfig.front_end_s`` after it arrived (the server's front end), while the steps go
on; some engines' settings hold new requests back further (``breakeven.sim.holds``: SGLang's
receive interval, TensorRT-LLM's batch waiting and attention-DP balancing). Limits live in
``breakeven.sim.config``, the KV blocks in ``breakeven.sim.blocks``, a sequence and its
queue in ``breakeven.sim.waiting``; this module re-exports them.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from breakeven.sim.blocks import BlockPool
from breakeven.sim.config import BLOCK, EngineConfig, engine_config
from breakeven.sim.holds import Holds
from breakeven.sim.prefix import PrefixCache
from breakeven.sim.waiting import POLICIES, Sequence, Waiting

__all__ = ["BLOCK", "POLICIES", "EngineConfig", "Sequence", "SimEngine", "Step", "Waiting",
           "engine_config"]


@dataclass
class Step:
    """What one engine step did: its duration and the sequences that emitted a token."""

    index: int
    start: float
    duration: float
    decode_batch: int
    prefill_tokens: int
    emitted: list[Sequence] = field(default_factory=list)
    finished: list[Sequence] = field(default_factory=list)
    preempted: int = 0

    @property
    def end(self) -> float:
        return self.start + self.duration


class SimEngine:
    """The scheduler state. Drive it with ``add`` and ``step``; it never looks at a clock."""

    def __init__(self, config: EngineConfig, *, track_tokens: bool = False) -> None:
        self.config = config
        self.track_tokens = track_tokens  # list every emitting sequence in each Step
        self.now = 0.0
        self.steps = 0
        self._dsteps = 0  # steps in which the decoders advanced (every step when mixed)
        self.waiting = Waiting(config.policy)
        self.running: list[Sequence] = []  # admission order: preemption takes the last
        self.blocks = BlockPool(config)
        self.preemptions = 0
        self._reserved = 0  # layer-blocks the running requests hold whole (reserve_whole)
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self._decoding = 0
        self._context_sum = 0  # KV tokens of all decoding sequences at the current step
        self._residues = [0] * config.block_size
        self._g, self._lw, self._wb = self.blocks.g, self.blocks.lw, self.blocks.wb
        self._under = [0] * config.block_size  # decoding within their window, by residue
        self._outgrow: list[tuple[int, int, int, Sequence]] = []  # (decode step, ., epoch, seq)
        self._finish_heap: list[tuple[int, int, int, Sequence]] = []
        self._serial = 0
        # added, still in the front end: (when it reaches the waiting queue, serial, seq)
        self._incoming: list[tuple[float, int, Sequence]] = []
        self.holds = Holds(config)  # what holds new requests back (``sim.holds``)
        self.marked: tuple[float, int] | None = None  # (clock, tokens generated): a mark

    # -- public --------------------------------------------------------------------------
    @property
    def kv_usage(self) -> float:
        return self.blocks.usage

    @property
    def free_units(self) -> int:
        """Free layer-blocks (blocks, without local attention)."""
        return self.blocks.free

    @property
    def prefix(self) -> PrefixCache | None:
        return self.blocks.prefix

    @property
    def reserved_units(self) -> int:
        """Layer-blocks the running requests hold reserved whole (``reserve_whole``)."""
        return self._reserved

    @property
    def decode_steps(self) -> int:
        """Steps in which the decoding sequences advanced a token (all steps when mixed)."""
        return self._dsteps

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running or self._incoming)

    def too_long(self, prompt_tokens: int, output_tokens: int) -> bool:
        """A request that can never run: longer than max_model_len (vLLM answers 400)."""
        return prompt_tokens + output_tokens > self.config.max_model_len

    def add(self, seq: Sequence) -> None:
        if seq.output_tokens < 1 or seq.prompt_tokens < 1:
            raise ValueError("a sequence needs at least one prompt and one output token")
        if self.too_long(seq.prompt_tokens, seq.output_tokens):
            raise ValueError("sequence longer than max_model_len")
        seq.target = seq.prompt_tokens
        ready = seq.arrival + self.config.front_end_s
        if ready > self.now or self.config.recv_interval > 1:  # it waits for the scheduler
            self._serial += 1
            heapq.heappush(self._incoming, (ready, self._serial, seq))
        else:
            self.holds.queued(seq)
            self.waiting.add(seq)

    def abort(self, seq: Sequence) -> None:
        """The client went away: free what the sequence holds."""
        if seq.done:
            return
        if seq in self.running:
            self._release(seq)
            self.running.remove(seq)
            self.holds.left(seq)
        elif any(entry[2] is seq for entry in self._incoming):
            self._incoming = [entry for entry in self._incoming if entry[2] is not seq]
            heapq.heapify(self._incoming)
        elif not self.waiting.remove(seq):
            return
        else:
            self.holds.left(seq)
        seq.finished = self.now
        seq.epoch += 1

    def mark(self) -> None:
        """Note the clock and the tokens generated so far (where a measured window starts)."""
        self.marked = (self.now, self.generation_tokens_total)

    def idle_until(self, when: float) -> None:
        """Advance the clock over a period with nothing to run."""
        self.now = max(self.now, when)

    def step(self) -> Step | None:
        """Schedule and run one step; None when there is nothing to run."""
        s, d = self.steps, self._dsteps
        cfg = self.config
        # the scheduler's count towards its next look runs on whether or not anything came
        takes_in = (not self.holds.active
                    or self.holds.takes_in(bool(self.running or self.waiting)))
        if takes_in and self._incoming:
            self._through_front_end()
        preempted = decode = 0
        # unmixed (SGLang): prompt chunks take a step of their own whenever one can run
        chunks = ([] if cfg.mixed or (self.holds.active and self.holds.holds(
                      self._decoding, cfg.max_num_batched_tokens, self.running, self.waiting))
                  else self._prefill_chunks(cfg.max_num_batched_tokens, 0))
        if not chunks:
            # 1. decoding sequences whose last block is full need a new one (its local
            # layers too while it is within their window)
            if self._outgrow:
                self._past_windows(d)
            r = (-d) % cfg.block_size
            need = self._g * self._residues[r] + self._lw * self._under[r]
            while need > self.free_units and self.running:
                victim = self._victim()
                if victim.decoding and (victim.kv0 - victim.step0) % cfg.block_size == r:
                    need -= self._g + (self._lw if victim.under else 0)
                self._preempt(victim)
                preempted += 1
            self.blocks.take(need)
            decode = self._decoding
            budget = cfg.max_num_batched_tokens - decode
            if cfg.mixed and not (self.holds.active and self.holds.holds(
                    decode, budget, self.running, self.waiting)):
                chunks = self._prefill_chunks(budget, preempted)
        prefill = sum(chunk for _, chunk in chunks)
        # what the prefill tokens attend to on average: each chunk its own prompt's tokens
        # up to it (not one long prompt made of every chunk in the step)
        attended = (sum(chunk * (seq.computed - chunk / 2) for seq, chunk in chunks) / prefill
                    if prefill else 0.0)
        if decode == 0 and prefill == 0:
            if not self.running:
                return None
            # partial prefills hold every block and none can go on: recompute one
            self._preempt(self._victim())
            return self.step()
        context = self._context_sum / decode if decode else 0.0
        duration = cfg.step_time(decode, context, prefill, attended)
        step = Step(s, self.now, duration, decode, prefill, preempted=preempted)
        if self.track_tokens and decode:
            step.emitted = [q for q in self.running if q.decoding]
        self.now += duration
        self.steps = s + 1
        if self.holds.active:
            self.holds.stepped(prefill)
        if cfg.mixed or not prefill:  # the decoders advanced a token (a prompt step: not)
            self._dsteps = d + 1
            self.generation_tokens_total += decode
            self._context_sum += decode
            self._finish_decodes(step, d)
        self._finish_prefills(step, chunks)
        return step

    def _prefill_chunks(self, budget: int, preempted: int) -> list[tuple[Sequence, int]]:
        """A step's prompt chunks within ``budget`` tokens: partial prefills go on, then
        waiting requests are admitted in order while there are slots and blocks."""
        cfg = self.config
        chunks: list[tuple[Sequence, int]] = []
        for seq in self.running:
            if budget <= 0:
                break
            if not seq.decoding:
                chunk = self.blocks.allocate(seq, budget)
                if chunk:
                    chunks.append((seq, chunk))
                    budget -= chunk
        while (self.waiting and budget > 0 and len(self.running) < cfg.max_num_seqs
               and not preempted):  # vLLM admits nothing in a step that had to preempt
            seq = self.waiting.head()
            whole = self.reservation(seq) if cfg.reserve_whole else 0
            if whole and self.running and self._reserved + whole > self.blocks.units:
                break
            chunk = self.blocks.allocate(seq, budget)
            if not chunk:
                break
            self._reserved += whole
            self.waiting.pop()
            if seq.scheduled is None:
                seq.scheduled = self.now
            self.running.append(seq)
            chunks.append((seq, chunk))
            budget -= chunk
        return chunks

    def reservation(self, seq: Sequence) -> int:
        """The layer-blocks ``seq`` would hold at its last token, ``max_tokens`` in (a
        reservation under ``reserve_whole``; the prefix cache is not counted against it)."""
        out = seq.max_tokens or seq.output_tokens
        blocks = -(-(seq.prompt_tokens + out) // self.config.block_size)
        return self._g * blocks + self._lw * min(blocks, self._wb)

    # -- internals -----------------------------------------------------------------------
    def _through_front_end(self) -> None:
        """Requests whose front-end latency has passed join the waiting queue; an engine with
        nothing else to do waits for the next one."""
        incoming = self._incoming
        if not self.running and not self.waiting and incoming[0][0] > self.now:
            self.now = incoming[0][0]
        while incoming and incoming[0][0] <= self.now:
            seq = heapq.heappop(incoming)[2]
            self.holds.queued(seq)
            self.waiting.add(seq)

    def _finish_prefills(self, step: Step, chunks: list[tuple[Sequence, int]]) -> None:
        for seq, chunk in chunks:
            self.prompt_tokens_total += chunk
            if seq.computed < seq.target:
                continue
            seq.generated += 1
            self.generation_tokens_total += 1
            if seq.first_token is None:
                seq.first_token = self.now
            if self.track_tokens:
                step.emitted.append(seq)
            if seq.generated >= seq.output_tokens:
                self._release(seq)
                self.running.remove(seq)
                self.holds.left(seq)
                seq.finished = self.now
                step.finished.append(seq)
                continue
            # enter decode from the next step in which the decoders advance on
            seq.decoding = True
            seq.step0, seq.gen0, seq.kv0 = self._dsteps, seq.generated, seq.computed
            self._decoding += 1
            self._context_sum += seq.kv0
            r = (seq.kv0 - seq.step0) % self.config.block_size
            self._residues[r] += 1
            edge = self._wb * self.config.block_size  # the first token past the window
            if self._lw and seq.kv0 < edge:
                seq.under = True
                self._under[r] += 1
                heapq.heappush(self._outgrow, (seq.step0 + edge - seq.kv0, self._serial,
                                               seq.epoch, seq))
            last = seq.step0 + (seq.output_tokens - seq.gen0) - 1
            self._serial += 1
            heapq.heappush(self._finish_heap, (last, self._serial, seq.epoch, seq))

    def _finish_decodes(self, step: Step, d: int) -> None:
        """Sequences whose last token came in this step (decode step ``d``) finish."""
        heap = self._finish_heap
        while heap and heap[0][0] <= d:
            _, _, epoch, seq = heapq.heappop(heap)
            if epoch != seq.epoch or seq.done:
                continue
            seq.generated = seq.output_tokens
            self._release(seq, after_step=d)
            self.running.remove(seq)
            self.holds.left(seq)
            seq.finished = self.now
            step.finished.append(seq)

    def _release(self, seq: Sequence, after_step: int | None = None) -> None:
        """Take ``seq`` out of the decode accounting (if decoding) and free its blocks."""
        if self.config.reserve_whole:
            self._reserved -= self.reservation(seq)
        if not seq.decoding:
            self.blocks.release(seq, seq.blocks)
            return
        # KV tokens held now: after decode step ``after_step`` ran, or before the next one
        kv = seq.kv_at(after_step + 1 if after_step is not None else self._dsteps)
        self._decoding -= 1
        self._context_sum -= kv
        r = (seq.kv0 - seq.step0) % self.config.block_size
        self._residues[r] -= 1
        if seq.under:
            self._under[r] -= 1
            seq.under = False
        seq.generated = seq.gen0 + (kv - seq.kv0)
        self.blocks.release(seq, math.ceil(kv / self.config.block_size))
        seq.decoding = False

    def _past_windows(self, d: int) -> None:
        """Sequences whose next block, from decode step ``d`` on, lies past their window:
        their local layers give up a block for each they take, so they need only the
        global layers'."""
        heap, size = self._outgrow, self.config.block_size
        while heap and heap[0][0] <= d:
            _, _, epoch, seq = heapq.heappop(heap)
            if epoch == seq.epoch and seq.under:
                seq.under = False
                self._under[(seq.kv0 - seq.step0) % size] -= 1

    def _victim(self) -> Sequence:
        """The running sequence to preempt: the newest, or the lowest priority."""
        if self.waiting.by_priority:
            return max(reversed(self.running), key=lambda q: (q.priority, q.arrival))
        return self.running[-1]

    def _preempt(self, seq: Sequence) -> None:
        self._release(seq)
        if self.running[-1] is seq:
            self.running.pop()
        else:
            self.running.remove(seq)
        seq.preemptions += 1
        seq.epoch += 1
        seq.computed = 0
        seq.target = seq.prompt_tokens + seq.generated
        self.preemptions += 1
        self.waiting.add(seq, front=True)
