"""The engine row of the catalog: an inference server's efficiency, defaults and what it
accepts, and the releases whose published defaults differ (``Engine.at_version``)."""

from __future__ import annotations

import functools
import itertools
import re
import weakref
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from breakeven.catalog.schema import GPU, Generation, Quant, _Row

__all__ = ["Engine", "EngineRelease", "EngineTuning", "engine_ref", "release_key"]

# A release number as engines spell them: 0.28.0, v0.11, 0.5.6.post1, 1.2.0rc6.post2.
# Possessive quantifiers: each piece of a suffix is a whole run of letters and digits, so
# a long suffix that fails at its end is refused in one pass, not by trying every split.
_RELEASE = re.compile(r"v?([0-9]++(?:\.[0-9]++)*+)(?:[.+-]?[A-Za-z0-9]++)*+")


@functools.lru_cache(maxsize=256)
def release_key(version: str) -> tuple[int, ...]:
    """The numeric part of a release number, for ordering (``0.28.0`` and ``v0.28`` are the
    same release; a suffix such as ``rc6`` or ``.post1`` counts as that release). Raises
    ``ValueError`` for anything that is not a release number."""
    m = _RELEASE.fullmatch(version.strip()) if len(version) <= 64 else None
    if m is None:
        raise ValueError(f"{version[:64]!r} is not a release number (like 0.28.0)")
    parts = [int(p) for p in m.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def engine_ref(ref: str) -> tuple[str, str | None]:
    """An engine reference as a workload writes it: ``vllm`` (the catalog's release) or
    ``vllm@0.27`` (that release), as (id, release); raises ``ValueError`` for a release
    that is not a release number (``vllm@`` included)."""
    name, at, version = ref.partition("@")
    if at:
        release_key(version)
    return name, (version.strip() if at else None)


class EngineTuning(BaseModel):
    """An engine's efficiency on one GPU generation, where it differs from its defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mbu: float | None = Field(default=None, gt=0, le=1)
    mfu: float | None = Field(default=None, gt=0, le=1)
    layer_floor_us: float | None = Field(default=None, ge=0)


class EngineRelease(_Row):
    """Defaults that an engine changed from one release on; a field left out keeps the
    value of the releases before."""

    since: str = Field(description="the first release with these defaults")
    budget_by_memory: tuple[tuple[float, int], ...] | None = None
    seqs_by_memory: tuple[tuple[float, int], ...] | None = None
    default_max_seqs: int | None = Field(default=None, gt=0)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    change: str = Field(min_length=3, description="what changed, in a line")

    @model_validator(mode="after")
    def _numbered(self) -> EngineRelease:
        release_key(self.since)
        _check_steps(self.budget_by_memory or (), "budget_by_memory")
        _check_steps(self.seqs_by_memory or (), "seqs_by_memory")
        return self


_BY_RELEASE = ("budget_by_memory", "seqs_by_memory", "default_max_seqs",
               "gpu_memory_utilization")


class Engine(_Row):
    id: str
    name: str
    production: bool
    vendors: tuple[Literal["nvidia", "amd"], ...]
    mbu: float = Field(gt=0, le=1)
    mfu: float = Field(gt=0, le=1)
    step_overhead_ms: float = Field(ge=0)
    sequence_overhead_us: float = Field(
        default=0.0, ge=0, description="time per running sequence per step that the GPU does "
        "not hide (scheduling, sampling, detokenisation, per-request bookkeeping)")
    layer_floor_us: float = Field(
        default=0.0, ge=0, description="the least time one layer's kernels take in a step "
        "however little they compute (launches, small all-reduces): a step's GPU work is at "
        "least layers x this")
    activation_passes: float = Field(
        default=0.0, ge=0, description="times each token's residual stream (hidden x 16-bit) "
        "is read or written per layer outside the GEMMs and attention (norms, residual adds, "
        "activation quantisation): memory traffic that grows with the tokens a step carries, "
        "on every tensor-parallel rank alike")
    front_end_ms: float = Field(
        default=0.0, ge=0, description="latency the server adds to every request outside "
        "the engine's steps, before its first token (HTTP, tokenisation, the hops between "
        "the front-end and scheduler processes, detokenisation): what a lone request's TTFT "
        "has beyond its prefill")
    eager_mla_layer_us: float = Field(
        default=0.0, ge=0, description="host time per MLA layer (DeepSeek-V3 style "
        "attention) of a step that carries prompt tokens: such steps run without CUDA "
        "graphs (eager), each kernel launched on the critical path; none where the "
        "deployment graphs its prefill (piecewise CUDA graphs)")
    by_generation: dict[Generation, EngineTuning] = Field(
        default_factory=dict, description="mbu, mfu and layer_floor_us per GPU generation "
        "where they differ from the row's own, for dense models")
    moe_by_generation: dict[Generation, EngineTuning] = Field(
        default_factory=dict, description="the same for mixture-of-experts models (fitted on "
        "their own measurements: an MoE's expert reads and kernels are not a dense model's)")
    gpu_memory_utilization: float = Field(gt=0, le=1)
    default_max_seqs: int = Field(gt=0)
    max_max_seqs: int = Field(gt=0)
    runtime_overhead_gib: float = Field(ge=0)
    quantizations: tuple[Quant, ...]
    version: str | None = Field(
        default=None, description="the release a plan assumes when none is named; the "
        "row's defaults are those of `defaults_since`, changed by each of `releases` up to "
        "this one")
    defaults_since: str | None = Field(
        default=None, description="the oldest release whose defaults the row's own fields "
        "describe (an older one named gets these, and is told so)")
    releases: tuple[EngineRelease, ...] = Field(
        default=(), description="later releases that changed the defaults, oldest first")
    max_batched_tokens: int | None = Field(
        default=None, gt=0, description="step token budget; None: by GPU memory "
        "(budget_by_memory, else vLLM's rule: 8192 on GPUs of 70 GB+, 2048 below)")
    budget_by_memory: tuple[tuple[float, int], ...] = Field(
        default=(), description="the engine's own default step budget by GPU memory: "
        "(GiB at least, tokens) pairs, the last that the GPU reaches applies (SGLang's "
        "chunked_prefill_size)")
    seqs_by_memory: tuple[tuple[float, int], ...] = Field(
        default=(), description="default max_num_seqs by GPU memory, as budget_by_memory; "
        "default_max_seqs below the first pair (vLLM's get_batch_defaults)")
    by_memory_except: tuple[str, ...] = Field(
        default=(), description="GPU ids given the smallest GPUs' defaults whatever their "
        "memory (vLLM's A100 exception, vllm-project/vllm#17885)")
    budget_split_over_dp: bool = Field(
        default=False, description="under data-parallel attention the engine's default "
        "step budget is the replica's, divided over its ranks (SGLang's chunked_prefill_size "
        "// dp_size), not each rank's")
    reserves_whole_requests: bool = Field(
        default=False, description="a request is admitted only when the KV cache can hold "
        "its prompt and all its output tokens on top of what the running ones may still "
        "grow to, and no running request is ever preempted (TensorRT-LLM's default "
        "capacity scheduler, GUARANTEED_NO_EVICT); False: admitted on what it needs now, "
        "preempted when the cache runs out (vLLM, SGLang)")
    mixed_batches: bool = Field(
        default=True, description="decode tokens ride in the same steps as prompt chunks "
        "(vLLM's chunked prefill, TensorRT-LLM's inflight batching); False: a step runs "
        "prompt chunks alone whenever one can be admitted, and the decoders wait (SGLang's "
        "prefill-first scheduler without --enable-mixed-chunk)")
    budget_covers_seqs: bool = Field(
        default=False, description="the engine refuses to start with a step token budget "
        "(max_batched_tokens) below max_num_seqs: every running sequence must be able to "
        "decode in one step (vLLM's SchedulerConfig)")
    fp8_kv_for: tuple[Quant, ...] = Field(
        default=(), description="weight formats whose published runs use an FP8 KV cache "
        "(what --kv-dtype auto resolves to)")
    moe_efficiency: float = Field(
        default=0.7, gt=0, le=1, description="fraction of the dense MBU that grouped expert "
        "GEMMs reach")
    tp_divides_kv_heads: bool = Field(
        default=False, description="the engine refuses TP degrees that do not divide the "
        "KV heads (and do not divide by them)")
    kv_fraction_of_free: bool = Field(
        default=False, description="gpu_memory_utilization applies to the memory left after "
        "the weights (TensorRT-LLM's kv_cache_free_gpu_mem_fraction)")
    static_fraction_rule: bool = Field(
        default=False, description="without a memory fraction of the deployment's own, the "
        "fraction is SGLang's default --mem-fraction-static for the GPU, layout and step "
        "budget (breakeven.planner.static_fraction), and it holds the weights and the KV "
        "pool only: activations and CUDA graphs live in the memory it reserves")
    scheduler_options: tuple[Literal["recv_interval", "batch_wait", "adp_balance"], ...] = Field(
        default=(), description="settings that hold new requests back from the steps: "
        "recv_interval (SGLang's --scheduler-recv-interval: taken in every N decode steps), "
        "batch_wait (TensorRT-LLM's batch_wait_timeout_iters / batch_wait_max_tokens_ratio), "
        "adp_balance (TensorRT-LLM's attention_dp_config enable_balance / timeout_iters)")
    moe_layouts: tuple[Literal["ep", "dp-ep"], ...] = Field(
        default=(), description="MoE layouts besides tensor parallelism: ep (experts split "
        "whole across the replica's GPUs, attention tensor-parallel), dp-ep (attention data-"
        "parallel: each GPU its own batch and KV cache; experts split across them)")

    _tuned: dict[str, tuple[weakref.ref[Engine], Engine]] = PrivateAttr(default_factory=dict)
    _tuning: str | None = PrivateAttr(default=None)
    _release_memo: dict[int | None, tuple[Any, tuple[Any, ...]]] = PrivateAttr(
        default_factory=dict)

    def budget_on(self, gpu: GPU) -> int:
        """The step token budget on one ``gpu``: the row's, else the engine's own by memory
        (``budget_by_memory``), else vLLM's rule (8192 tokens on GPUs of 70 GB and more,
        2048 on smaller ones)."""
        return self._defaults(self._memory(gpu))[0]

    def seqs_on(self, gpu: GPU) -> int:
        """max_num_seqs when not set, on one ``gpu`` (``seqs_by_memory``)."""
        return self._defaults(self._memory(gpu))[1]

    @property
    def memory_fraction(self) -> float:
        """gpu_memory_utilization when the deployment sets none, at this row's release."""
        fraction: float = self._released()[3]
        return fraction

    def _memory(self, gpu: GPU) -> float:
        return 0.0 if gpu.id in self.by_memory_except else gpu.memory_gib

    def _defaults(self, gib: float, upto: int | None = None) -> tuple[int, int]:
        """(step token budget, max_num_seqs) on a GPU of ``gib``, at this row's release (or
        after the first ``upto`` entries of ``releases``)."""
        budget, seqs, default_seqs, _ = self._released(upto)
        return (self.max_batched_tokens or _reached(budget, gib)
                or (8192 if gib >= 70 else 2048),
                _reached(seqs, gib) or default_seqs)

    def _released(self, upto: int | None = None) -> tuple[Any, ...]:
        """The by-release fields (``_BY_RELEASE``) at ``version``, or after the first
        ``upto`` entries of ``releases``."""
        values = (self.budget_by_memory, self.seqs_by_memory, self.default_max_seqs,
                  self.gpu_memory_utilization)
        if not self.releases:
            return values
        # every deployment asks (thousands a plan): the last answer is kept, keyed by
        # everything it is made of (copies share the memo, as they share ``_tuned``)
        key = (self.version, values, self.releases)
        memo = self._memo("_release_memo")
        last = memo.get(upto)
        if last is not None and last[0] == key:
            return cast("tuple[Any, ...]", last[1])
        found = list(values)
        for r in self.releases[:upto] if upto is not None else self._applied():
            found = [v if getattr(r, n) is None else getattr(r, n)
                     for n, v in zip(_BY_RELEASE, found, strict=True)]
        memo[upto] = (key, tuple(found))
        return tuple(found)

    def _memo(self, name: str) -> dict[Any, Any]:
        """One of the private memos, read from the private dict itself: ``self._tuned``
        goes through pydantic's ``__getattr__`` on every read, and the planner reads
        thousands of times a plan."""
        private = self.__pydantic_private__
        assert private is not None
        memo: dict[Any, Any] = private[name]
        return memo

    def _applied(self) -> tuple[EngineRelease, ...]:
        if self.version is None or not self.releases:
            return ()
        mine = release_key(self.version)
        return tuple(r for r in self.releases if release_key(r.since) <= mine)

    def at_version(self, version: str) -> Engine:
        """This engine as of ``version`` (its defaults as that release set them). Raises
        ``ValueError`` for a string that is not a release number."""
        release_key(version)
        # a row that records no releases describes its own version's defaults
        since = self.defaults_since or (None if self.releases else self.version)
        return self.model_copy(update={"version": version.strip(), "defaults_since": since})

    @property
    def defaults_of(self) -> str | None:
        """The release whose defaults apply at ``version``, with a note where ``version``
        is older than any this row describes."""
        applied = self._applied()
        if applied:
            return applied[-1].since
        if (self.version and self.defaults_since
                and release_key(self.version) < release_key(self.defaults_since)):
            return (f"{self.defaults_since}, the oldest release the catalog describes: "
                    f"{self.version}'s own are not in it")
        return self.defaults_since

    @model_validator(mode="after")
    def _starts(self) -> Engine:
        # the defaults the planner launches with must be ones the engine accepts: on every
        # GPU size the default budget holds the default max_num_seqs
        _check_steps(self.budget_by_memory, "budget_by_memory")
        _check_steps(self.seqs_by_memory, "seqs_by_memory")
        known = [release_key(v) for v in (self.defaults_since, *(r.since for r in self.releases))
                 if v is not None]
        if any(later <= earlier for earlier, later in itertools.pairwise(known)):
            raise ValueError("releases must follow defaults_since, oldest first, each later "
                             "than the one before")
        for upto in range(len(self.releases) + 1):
            budget, seqs, *_ = self._released(upto)
            for gib in {0.0, 70.0} | {g for g, _ in budget + seqs}:
                b, n = self._defaults(gib, upto)
                if self.budget_covers_seqs and b < n:
                    where = f" from {self.releases[upto - 1].since}" if upto else ""
                    raise ValueError(f"default max_num_seqs {n} is above the step token "
                                     f"budget {b} on GPUs of {gib:g} GiB{where}, which this "
                                     "engine refuses (budget_covers_seqs)")
        if self.version is not None:
            release_key(self.version)
        return self

    @property
    def tuning(self) -> str | None:
        """The (generation, kind) entry of ``by_generation`` / ``moe_by_generation`` this
        copy carries (``"hopper/moe"``), None for the engine's own figures."""
        return self._tuning

    def tuned_for(self, generation: Generation | None, moe: bool = False) -> Engine:
        """This engine with its figures for ``generation`` and the model's kind (dense, or
        ``moe``), itself when it has none; made once per (generation, kind): the planner
        builds thousands of deployments. (A copy of the row shares the memo with its
        original, so entries hold a weak reference to whose they are: an id alone is
        reused once its copy is freed, and gave a new copy a freed one's figures.)"""
        table = self.moe_by_generation if moe else self.by_generation
        tuning = table.get(generation) if generation else None
        if tuning is None or generation is None:
            return self
        key = f"{generation}/{'moe' if moe else 'dense'}"
        memo = self._memo("_tuned")
        mine = memo.get(key)
        if mine is not None and mine[0]() is self:  # not a freed copy's entry (ids recur)
            return cast("Engine", mine[1])
        update = {k: v for k, v in tuning.model_dump().items() if v is not None}
        tuned = self.model_copy(update={**update, "by_generation": {}, "moe_by_generation": {}})
        tuned._tuning = key
        memo[key] = (weakref.ref(self), tuned)
        return tuned


def _reached(steps: tuple[tuple[float, int], ...], memory_gib: float) -> int | None:
    """The count of the last (GiB at least, count) pair ``memory_gib`` reaches, if any."""
    return next((n for least, n in reversed(steps) if memory_gib >= least), None)


def _check_steps(steps: tuple[tuple[float, int], ...], name: str) -> None:
    if any(n < 1 for _, n in steps) or any(
            later <= earlier for (earlier, _), (later, _) in itertools.pairwise(steps)):
        raise ValueError(f"{name} {[list(p) for p in steps]}: the GiB must rise from pair "
                         "to pair and the counts be positive")
