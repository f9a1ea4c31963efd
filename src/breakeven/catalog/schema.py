"""Row types of the catalog. Every row carries ``source`` and ``as_of``.

Pydantic models because the rows arrive from files (the catalog's own and the user's
overrides); frozen so that a loaded catalog cannot be mutated behind the planner's back.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "GPU",
    "MLA",
    "MOE",
    "PRICE_TABLES",
    "TASKS",
    "TIERS",
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
