"""Row types of the catalog. Every row carries ``source`` and ``as_of``.

Pydantic models because the rows arrive from files (the catalog's own and the user's
overrides); frozen so that a loaded catalog cannot be mutated behind the planner's back.
"""

from __future__ import annotations

import itertools
import weakref
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

__all__ = [
    "GPU",
    "MLA",
    "MOE",
    "PRICE_TABLES",
    "TASKS",
    "TIERS",
    "Engine",
    "GPUOffer",
    "HostedModel",
    "Interconnect",
    "KVCacheDtype",
    "ModelKind",
    "OpenModel",
    "Pricing",
    "QualityRow",
    "Quant",
    "Task",
    "Tier",
]

# A Hugging Face repo id (owner/name: letters, digits, '.', '_', '-'). Ids go into the shell
# launch lines and the gateway config as they are, so nothing else gets through.
HfId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")]
Quant = Literal["bf16", "fp8", "int8", "int4", "awq", "gptq", "fp4", "mxfp4"]
KVCacheDtype = Literal["bf16", "fp8"]
Pricing = Literal["on_demand", "reserved", "spot"]
ModelKind = Literal["chat", "embedding"]
Tier = Literal["small", "mid", "high", "frontier"]
Task = Literal["extraction", "chat", "rag", "code", "reasoning", "long_context", "embeddings"]
TIERS: tuple[Tier, ...] = ("small", "mid", "high", "frontier")
TASKS: tuple[Task, ...] = (
    "extraction", "chat", "rag", "code", "reasoning", "long_context", "embeddings",
)


PRICE_TABLES = ("offers", "hosted")  # the tables whose figures go stale (prices move)


# GPU architecture generations (a closed list, so a misspelt one is an error, not ignored)
Generation = Literal["volta", "turing", "ampere", "ada", "hopper", "blackwell", "rubin",
                     "cdna2", "cdna3", "cdna4"]

class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(min_length=3, description="where the figures came from, exactly")
    as_of: date = Field(description="when that source published the figures, or was read")


class GPU(_Row):
    id: str
    name: str
    vendor: Literal["nvidia", "amd"]
    memory_gib: float = Field(gt=0)
    bandwidth_gbs: float = Field(gt=0)
    bf16_tflops: float = Field(gt=0)
    fp8_tflops: float | None = Field(default=None, gt=0)
    fp4_tflops: float | None = Field(default=None, gt=0, description="dense FP4/MXFP4")
    interconnect: str
    interconnect_gbs: float = Field(gt=0)
    gpus_per_node: int = Field(default=8, ge=1)
    generation: Generation | None = Field(
        default=None, description="architecture generation: engines' efficiency figures are "
        "tuned per generation (Engine.by_generation)")


class GPUOffer(_Row):
    gpu: str
    provider: str
    region: str
    pricing: Pricing
    usd_per_gpu_hour: float = Field(gt=0)
    min_gpus: int = Field(default=1, ge=1)


class MLA(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kv_lora_rank: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)


class MOE(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    experts: int = Field(gt=1)
    experts_per_token: int = Field(ge=1)
    expert_params_b: float = Field(gt=0, description="all routed-expert weights, billions")


class OpenModel(_Row):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str
    family: str
    kind: ModelKind = "chat"
    hf_ids: tuple[HfId, ...] = ()
    checkpoints: dict[Quant, HfId] = Field(
        default_factory=dict, description="pre-quantized checkpoints of this model by format "
                                          "(Hugging Face ids), for the launch lines")
    license: str
    params_b: float = Field(gt=0)
    active_params_b: float = Field(gt=0)
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate: int = Field(gt=0)
    vocab: int = Field(gt=0)
    max_context: int = Field(gt=0)
    native_quant: Quant = "bf16"
    native_format: str | None = Field(
        default=None, description="the checkpoint's own format when Quant has no word for it "
                                  "(mxfp4, fp8 block-128 ...)")
    sliding_window: int | None = Field(default=None, gt=0, description="local attention span")
    sliding_window_layers: int | None = Field(
        default=None, ge=0, description="how many of the layers attend only locally")
    released: date | None = None
    mla: MLA | None = None
    moe: MOE | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OpenModel:
        if self.active_params_b > self.params_b:
            raise ValueError("active_params_b cannot exceed params_b")
        if self.moe is not None and self.moe.expert_params_b >= self.params_b:
            raise ValueError("moe.expert_params_b must be below params_b")
        if self.sliding_window_layers is not None and self.sliding_window_layers > self.layers:
            raise ValueError("sliding_window_layers cannot exceed layers")
        if (self.sliding_window is None) != (self.sliding_window_layers is None):
            raise ValueError("give sliding_window and sliding_window_layers together")
        if self.native_quant in self.checkpoints:
            raise ValueError(f"checkpoints.{self.native_quant}: the model's own checkpoint is "
                             f"already {self.native_quant} (native_quant)")
        return self


class HostedModel(_Row):
    id: str
    name: str
    provider: str
    kind: ModelKind = "chat"
    open_model: str | None = None
    same_model_as: str | None = Field(
        default=None, description="another row serving the same model (for quality tiers)")
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    batch_input_per_mtok: float | None = Field(default=None, ge=0)
    batch_output_per_mtok: float | None = Field(default=None, ge=0)
    long_context_threshold: int | None = Field(
        default=None, gt=0, description="prompts above this many tokens pay the long rates")
    long_input_per_mtok: float | None = Field(default=None, ge=0)
    long_output_per_mtok: float | None = Field(default=None, ge=0)
    context_window: int = Field(gt=0)
    regions: tuple[str, ...] = Field(min_length=1)
    trains_on_data: bool
    zero_retention: bool
    retention: str | None = Field(default=None, description="the provider's retention terms")
    pinned_weights: bool = False
    released: date | None = None
    retired: date | None = Field(default=None, description="requests fail from this date")
    successor: str | None = Field(default=None, description="what the provider says to use")

    @model_validator(mode="after")
    def _tiers(self) -> HostedModel:
        long = (self.long_input_per_mtok, self.long_output_per_mtok)
        if (self.long_context_threshold is None) != (long == (None, None)):
            raise ValueError("long_context_threshold and the long_* prices go together")
        if self.long_context_threshold is not None and None in long:
            raise ValueError("give both long_input_per_mtok and long_output_per_mtok")
        if self.retired is not None and not self.successor:
            raise ValueError("a retired model names its successor")
        if (self.batch_input_per_mtok is None) != (self.batch_output_per_mtok is None):
            raise ValueError("give batch_input_per_mtok and batch_output_per_mtok together")
        return self

    def retired_by(self, today: date) -> bool:
        return self.retired is not None and self.retired <= today


class EngineTuning(BaseModel):
    """An engine's efficiency on one GPU generation, where it differs from its defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mbu: float | None = Field(default=None, gt=0, le=1)
    mfu: float | None = Field(default=None, gt=0, le=1)
    layer_floor_us: float | None = Field(default=None, ge=0)


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
    version: str | None = None
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

    def budget_on(self, gpu: GPU) -> int:
        """The step token budget on one ``gpu``: the row's, else the engine's own by memory
        (``budget_by_memory``), else vLLM's rule (8192 tokens on GPUs of 70 GB and more,
        2048 on smaller ones)."""
        return self._defaults(self._memory(gpu))[0]

    def seqs_on(self, gpu: GPU) -> int:
        """max_num_seqs when not set, on one ``gpu`` (``seqs_by_memory``)."""
        return self._defaults(self._memory(gpu))[1]

    def _memory(self, gpu: GPU) -> float:
        return 0.0 if gpu.id in self.by_memory_except else gpu.memory_gib

    def _defaults(self, gib: float) -> tuple[int, int]:
        """(step token budget, max_num_seqs) on a GPU of ``gib``."""
        return (self.max_batched_tokens or _reached(self.budget_by_memory, gib)
                or (8192 if gib >= 70 else 2048),
                _reached(self.seqs_by_memory, gib) or self.default_max_seqs)

    @model_validator(mode="after")
    def _starts(self) -> Engine:
        # the defaults the planner launches with must be ones the engine accepts: on every
        # GPU size the default budget holds the default max_num_seqs
        for name in ("budget_by_memory", "seqs_by_memory"):
            steps = getattr(self, name)
            if any(n < 1 for _, n in steps) or any(
                    later <= earlier for (earlier, _), (later, _) in itertools.pairwise(steps)):
                raise ValueError(f"{name} {[list(p) for p in steps]}: the GiB must rise "
                                 "from pair to pair and the counts be positive")
        for gib in {0.0, 70.0} | {g for g, _ in self.budget_by_memory + self.seqs_by_memory}:
            budget, seqs = self._defaults(gib)
            if self.budget_covers_seqs and budget < seqs:
                raise ValueError(f"default max_num_seqs {seqs} is above the step token "
                                 f"budget {budget} on GPUs of {gib:g} GiB, which this engine "
                                 "refuses (budget_covers_seqs)")
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
        mine = self._tuned.get(key)
        if mine is not None and mine[0]() is self:  # not a freed copy's entry (ids recur)
            return mine[1]
        update = {k: v for k, v in tuning.model_dump().items() if v is not None}
        tuned = self.model_copy(update={**update, "by_generation": {}, "moe_by_generation": {}})
        tuned._tuning = key
        self._tuned[key] = (weakref.ref(self), tuned)
        return tuned


class Interconnect(_Row):
    """Achieved all-reduce bandwidth of a node's GPU fabric (NCCL/RCCL bus bandwidth)."""

    id: str
    name: str
    gpus: tuple[str, ...] = Field(min_length=1, description="GPU ids on this fabric")
    busbw_gbs: float = Field(gt=0, description="all-reduce bus bandwidth at 1-64 MB")
    latency_us: float = Field(gt=0, description="one small all-reduce")


class QualityRow(_Row):
    model: str
    basis: str
    extraction: Tier | None = None
    chat: Tier | None = None
    rag: Tier | None = None
    code: Tier | None = None
    reasoning: Tier | None = None
    long_context: Tier | None = None
    embeddings: Tier | None = None

    def tier(self, task: Task) -> Tier | None:
        value: Tier | None = getattr(self, task)
        return value


def _reached(steps: tuple[tuple[float, int], ...], memory_gib: float) -> int | None:
    """The count of the last (GiB at least, count) pair ``memory_gib`` reaches, if any."""
    return next((n for least, n in reversed(steps) if memory_gib >= least), None)
