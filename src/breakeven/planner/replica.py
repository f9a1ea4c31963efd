"""One replica's layout and memory: a model in a quantisation on ``tp * pp`` GPUs. Pure.

Memory follows vLLM's accounting: the engine may use ``gpu_memory_utilization`` of each GPU;
weights (split over tensor- and pipeline-parallel ranks), a runtime overhead and the
activation peak of one batched-token budget come off it; the rest is paged KV cache.
KV bytes per token are ``2 * layers * kv_heads * head_dim * bytes`` (GQA; KV heads are
replicated when TP exceeds them) or ``layers * (kv_lora_rank + rope_dim) * bytes`` for MLA,
whose latent is replicated on every TP rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from breakeven.catalog.schema import GPU, Engine, OpenModel, Quant

__all__ = [
    "GIB",
    "Deployment",
    "KVDtype",
    "Memory",
    "bytes_per_weight",
    "kv_bytes_per_token",
    "layouts",
    "memory",
]

GIB = 1024**3
KVDtype = Literal["bf16", "fp8"]
_BLOCK = 16  # vLLM's default KV block size in tokens
_NCCL_GIB = 0.5  # non-torch memory taken by NCCL buffers when TP/PP > 1
_MAX_TP_STEPS = (1, 2, 4, 8)


def bytes_per_weight(quant: Quant) -> float:
    """Bytes per parameter; 4-bit formats carry an fp16 scale per group of 128 weights."""
    if quant == "bf16":
        return 2.0
    if quant in ("fp8", "int8"):
        return 1.0
    return 0.5 + 2.0 / 128


@dataclass(frozen=True)
class Deployment:
    """One replica: a model in a quantisation on ``tp * pp`` GPUs of one type."""

    model: OpenModel
    gpu: GPU
    engine: Engine
    quant: Quant
    tp: int = 1
    pp: int = 1
    kv_dtype: KVDtype = "bf16"
    gpu_memory_utilization: float | None = None

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def memory_utilization(self) -> float:
        return self.gpu_memory_utilization or self.engine.gpu_memory_utilization

    @property
    def batched_tokens(self) -> int:
        """vLLM's max_num_batched_tokens default: 8192 on large GPUs, 2048 on small ones."""
        return 8192 if self.gpu.memory_gib >= 70 else 2048

    @property
    def peak_flops(self) -> float:
        if self.quant == "fp8" and self.gpu.fp8_tflops:
            return self.gpu.fp8_tflops * 1e12
        if self.quant == "int8":
            return (self.gpu.fp8_tflops or 2 * self.gpu.bf16_tflops) * 1e12
        return self.gpu.bf16_tflops * 1e12


def kv_bytes_per_token(model: OpenModel, kv_dtype: KVDtype = "bf16", tp: int = 1) -> float:
    """KV-cache bytes one token occupies on one GPU of a ``tp``-way replica (all layers)."""
    size = 2 if kv_dtype == "bf16" else 1
    if model.kind == "embedding":
        return 0.0
    if model.mla is not None:
        return model.layers * (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * size
    heads_per_gpu = math.ceil(model.kv_heads / tp)
    return 2 * model.layers * heads_per_gpu * model.head_dim * size


@dataclass(frozen=True)
class Memory:
    weights_gib: float
    weights_gib_per_gpu: float
    overhead_gib_per_gpu: float
    kv_cache_gib_per_gpu: float
    kv_bytes_per_token: float
    kv_bytes_per_token_per_gpu: float
    kv_tokens: int
    usable_gib_per_gpu: float


def memory(dep: Deployment) -> Memory:
    model = dep.model
    weights = model.params_b * 1e9 * bytes_per_weight(dep.quant)
    per_gpu = weights / dep.gpus
    activations = dep.batched_tokens * (4 * model.hidden + 2 * model.intermediate / dep.tp) * 2
    overhead = dep.engine.runtime_overhead_gib * GIB + activations
    if dep.gpus > 1:
        overhead += _NCCL_GIB * GIB
    usable = dep.gpu.memory_gib * GIB * dep.memory_utilization
    kv_budget = max(0.0, usable - per_gpu - overhead)
    kv_per_gpu = kv_bytes_per_token(model, dep.kv_dtype, dep.tp) / dep.pp
    if kv_per_gpu > 0:
        kv_tokens = int(kv_budget // kv_per_gpu) // _BLOCK * _BLOCK
    else:  # encoders keep no cache: memory only has to hold the weights
        kv_tokens = model.max_context if kv_budget > 0 else 0
    return Memory(
        weights_gib=weights / GIB,
        weights_gib_per_gpu=per_gpu / GIB,
        overhead_gib_per_gpu=overhead / GIB,
        kv_cache_gib_per_gpu=kv_budget / GIB,
        kv_bytes_per_token=kv_bytes_per_token(model, dep.kv_dtype, 1),
        kv_bytes_per_token_per_gpu=kv_per_gpu,
        kv_tokens=kv_tokens,
        usable_gib_per_gpu=usable / GIB,
    )


def layouts(model: OpenModel, gpu: GPU, max_gpus: int = 64) -> list[tuple[int, int]]:
    """(tp, pp) pairs in increasing GPU count: TP within a node, then pipeline across nodes."""
    out = [
        (tp, 1)
        for tp in _MAX_TP_STEPS
        if tp <= gpu.gpus_per_node and tp <= max_gpus and model.heads % tp == 0
    ]
    if out:
        tp = out[-1][0]
        pp = 2
        while tp * pp <= max_gpus and pp <= 8:
            out.append((tp, pp))
            pp *= 2
    return out

