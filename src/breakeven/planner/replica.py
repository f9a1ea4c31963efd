"""One replica's layout and memory: a model in a quantisation on ``tp * pp`` GPUs. Pure.

Memory follows vLLM's accounting: the engine may use ``gpu_memory_utilization`` of each
GPU (TensorRT-LLM: that fraction of what the weights leave free; SGLang, without one
given, its own default, ``static_fraction``); weights (split over tensor- and pipeline-
parallel ranks), a runtime overhead and the activation peak of one batched-token budget
(not on SGLang: it reserves that outside the fraction) come off it; the rest is paged KV
cache. KV bytes per token are ``2 * layers * kv_heads * head_dim * bytes`` (GQA; KV heads
are replicated when TP exceeds them) or ``layers * (kv_lora_rank + rope_dim) * bytes`` for
MLA, whose latent is replicated on every TP rank. Layers that attend only locally (a
sliding window: gpt-oss, Gemma 3; Llama 4's chunked attention) keep and read at most their
window of a sequence, as vLLM's hybrid KV-cache manager and TensorRT-LLM's per-layer
attention windows allocate them: ``cached_tokens`` turns a sequence's length into the
whole-model token slots it holds. Quantisation formats and the layouts engines accept live
in ``breakeven.planner.formats``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from breakeven.catalog.engine import Engine
from breakeven.catalog.schema import GPU, Interconnect, KVCacheDtype, OpenModel, Quant
from breakeven.planner.formats import (
    bytes_per_weight,
    compute_tflops,
    kv_default,
    layout_refusal,
    weight_bytes,
)
from breakeven.planner.moe_layouts import Layout
from breakeven.planner.scheduling import Scheduling
from breakeven.planner.static_fraction import static_fraction

__all__ = [
    "GIB",
    "Deployment",
    "KVDtype",
    "Layout",
    "Memory",
    "Rates",
    "Scheduling",
    "bytes_per_weight",
    "cached_tokens",
    "kv_bytes_per_token",
    "layout_refusal",
    "layouts",
    "memory",
]

GIB = 1024**3
KVDtype = KVCacheDtype
KVChoice = Literal["auto", "bf16", "fp8"]
_BLOCK = 16  # vLLM's default KV block size in tokens
_NCCL_GIB = 0.5  # non-torch memory taken by NCCL buffers when TP/PP > 1
_MAX_TP_STEPS = (1, 2, 4, 8)
_LINK_SHARE = 0.4  # achieved busbw over the datasheet's two-way total (360 / 900 on H100)
_LINK_LATENCY_S = 10e-6
_NODE_HOP_S = 50e-6  # pipeline stage hand-off across nodes
_TIED = ("gemma",)  # families whose lm_head is the embedding table (then it is streamed)
# Bytes per token per routed expert copy that an expert-parallel MoE layer moves: dispatch
# in FP8 (1 byte per element, DeepEP's and vLLM's EP kernels) plus combine in BF16 (2).
_A2A_BYTES = 3


@dataclass(frozen=True)
class Rates:
    """What one step of a deployment costs per unit, computed once per deployment: bytes
    streamed (dense part without the embedding look-up, routed experts), the achieved
    bandwidth and FLOP rates, KV bytes and attention FLOPs per cached token, the fabric."""

    dense_bytes: float
    expert_bytes: float
    expert_share: float  # experts per token / experts (0: dense)
    bandwidth: float  # bytes/s one GPU reads
    gemm_flops: float  # FLOP/s of the replica's GEMMs
    attention_flops: float  # FLOP/s of attention (BF16)
    active_flops_per_token: float
    kv_bytes_per_token: float  # per GPU
    attention_flops_per_token: float  # per query and cached token, all layers
    busbw: float
    link_latency_s: float
    fixed_s: float
    replicated_bytes: float = 0.0  # dense bytes every GPU reads whole (DP attention's)
    a2a_bytes_per_token: float = 0.0  # per GPU, per MoE layer: dispatch + combine
    per_sequence_s: float = 0.0  # the engine's per-step cost of each running sequence
    floor_s: float = 0.0  # the least a step's GPU work takes: layers x the layer floor
    front_end_s: float = 0.0  # the server's latency per request outside the steps
    eager_prefill_s: float = 0.0  # host time of a step carrying prompt tokens (no graph)
    activation_s_per_token: float = 0.0  # elementwise passes over a token's residual stream
    fabric_s: float = 0.0  # the fabric's fixed time per step (latencies; 0 without TP)
    fabric_per_token_s: float = 0.0  # and its time per token the step carries
    window: float = 0.0  # local-attention span in tokens (0: every layer attends globally)
    local_share: float = 0.0  # layers that attend only within the window / layers
    # the step's rates per unit, from the figures above (a step runs ~10^5 times a plan)
    dense_read_s: float = 0.0  # one GPU's read of its dense weights
    expert_read_s: float = 0.0  # and of its share of every expert
    gemm_s_per_token: float = 0.0
    kv_read_s_per_token: float = 0.0  # per cached token a sequence attends to
    attend_s_per_token: float = 0.0  # per query and cached token


@dataclass(frozen=True)
class Deployment:
    """One replica: a model in a quantisation on ``tp * pp`` GPUs of one type.

    ``kv_dtype="auto"`` resolves at construction to the engine's default for the weight
    format (``Engine.fp8_kv_for``), so ``dep.kv_dtype`` is always concrete. ``max_num_seqs``
    and ``max_batched_tokens`` default to the engine's; ``link`` is the node's fabric (None:
    40% of the GPU row's datasheet figure). ``layout`` says how a MoE model uses the ``tp``
    GPUs of a stage: ``tp`` splits every matrix; ``ep`` keeps attention tensor-parallel and
    gives each GPU whole experts (an all-to-all dispatch and combine per MoE layer instead of
    its all-reduce); ``dp-ep`` also runs attention data-parallel: each GPU holds the
    attention weights whole and its own batch and KV cache (``ranks`` of them, each with the
    engine's max_num_seqs and token budget, as vLLM's DP engines have).
    """

    model: OpenModel
    gpu: GPU
    engine: Engine
    quant: Quant
    tp: int = 1
    pp: int = 1
    kv_dtype: KVChoice = "auto"
    gpu_memory_utilization: float | None = None
    link: Interconnect | None = None
    max_num_seqs: int | None = None
    max_batched_tokens: int | None = None
    layout: Layout = "tp"
    scheduling: Scheduling = field(default_factory=Scheduling)
    # prefill steps run as CUDA graphs (piecewise: TensorRT-LLM's torch_compile_config,
    # SGLang's --enable-piecewise-cuda-graph), so they pay no eager launch time
    prefill_graphs: bool = False

    def __post_init__(self) -> None:
        # the engine's efficiency figures for this GPU's generation and this kind of model
        # (dense or MoE), where it has them
        object.__setattr__(self, "engine", self.engine.tuned_for(
            self.gpu.generation, moe=self.model.moe is not None))
        if self.kv_dtype == "auto":
            object.__setattr__(self, "kv_dtype", kv_default(self.engine, self.quant))

    @property
    def kv(self) -> KVDtype:
        return "fp8" if self.kv_dtype == "fp8" else "bf16"

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def memory_utilization(self) -> float:
        if self.gpu_memory_utilization:
            return self.gpu_memory_utilization
        if self.engine.static_fraction_rule:
            return static_fraction(self.gpu.memory_gib, self.tp, self.pp,  # the flag's
                                   self.batched_tokens, self.ranks)  # chunk: the replica's
        return self.engine.memory_fraction

    @property
    def ranks(self) -> int:
        """Attention data-parallel ranks: each GPU of a ``dp-ep`` stage, else 1."""
        return self.tp if self.layout == "dp-ep" else 1

    @cached_property
    def batched_tokens(self) -> int:
        """The step's token budget: the deployment's or the engine's default
        (``Engine.budget_on``); per rank, times the ranks (an engine whose default is the
        replica's, ``budget_split_over_dp``, gives each rank its share)."""
        if self.max_batched_tokens:
            return self.max_batched_tokens * self.ranks
        budget = self.engine.budget_on(self.gpu)
        return budget if self.engine.budget_split_over_dp else budget * self.ranks

    @cached_property
    def seqs(self) -> int:
        """max_num_seqs, the deployment's or the engine's on this GPU, per rank x ranks."""
        return (self.max_num_seqs or self.engine.seqs_on(self.gpu)) * self.ranks

    @property
    def peak_flops(self) -> float:
        return compute_tflops(self.gpu, self.quant) * 1e12

    @cached_property
    def memo(self) -> dict[tuple[int, int, int], Any]:
        """Analytic operating points already solved for this deployment (they are pure
        functions of it): the planner asks for the same ones several times."""
        return {}

    @cached_property
    def mem(self) -> Memory:
        """``memory(self)``, computed once."""
        return memory(self)

    @cached_property
    def rates(self) -> Rates:
        m, e = self.model, self.engine
        total = weight_bytes(m, self.quant)
        experts = m.moe.expert_params_b * 1e9 * bytes_per_weight(self.quant) if m.moe else 0.0
        dense = total - experts
        if not m.family.lower().startswith(_TIED):
            emb = "bf16" if self.quant == "mxfp4" else self.quant
            dense -= m.vocab * m.hidden * bytes_per_weight(emb)
        if m.mla is not None:
            per = 2 * m.heads * (2 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim)
        else:
            per = 4 * m.heads * m.head_dim
        if self.link is not None:
            busbw, latency = self.link.busbw_gbs * 1e9, self.link.latency_us * 1e-6
        else:
            busbw, latency = self.gpu.interconnect_gbs * 1e9 * _LINK_SHARE, _LINK_LATENCY_S
        a2a = 0.0
        if self.layout != "tp" and m.moe is not None and self.tp > 1:
            # each GPU dispatches its share of the step's tokens, top-k copies each, to the
            # experts' owners, and takes the results back; (g - 1) / g of it leaves the GPU
            g = self.tp
            a2a = m.moe.experts_per_token * m.hidden * _A2A_BYTES * (g - 1) / g / g
        kv_tp = 1 if self.layout == "dp-ep" else self.tp
        # all-reduces per layer: TP attention and MLP; EP attention only; DP attention none
        allreduces = {"tp": 2, "ep": 1, "dp-ep": 0}[self.layout]
        fabric, per_token = _fabric(self.tp, m.layers, m.hidden, allreduces, busbw, latency,
                                    a2a)
        dense = max(dense, 0.0)
        replicated = min(_attention_bytes(m, self.quant), dense) if self.layout == "dp-ep" else 0.0
        bandwidth = self.gpu.bandwidth_gbs * 1e9 * e.mbu
        kv_bytes = kv_bytes_per_token(m, self.kv, kv_tp) / self.ranks
        gemm_flops = self.peak_flops * e.mfu * self.tp
        attention_flops = self.gpu.bf16_tflops * 1e12 * e.mfu * self.tp
        active, attend = 2 * m.active_params_b * 1e9, per * m.layers
        return Rates(
            dense_bytes=dense, expert_bytes=experts,
            expert_share=m.moe.experts_per_token / m.moe.experts if m.moe else 0.0,
            bandwidth=bandwidth, gemm_flops=gemm_flops, attention_flops=attention_flops,
            active_flops_per_token=active,
            kv_bytes_per_token=kv_bytes, attention_flops_per_token=attend,
            busbw=busbw, link_latency_s=latency,
            fixed_s=e.step_overhead_ms / 1e3 + (self.pp - 1) * _NODE_HOP_S,
            replicated_bytes=replicated,
            a2a_bytes_per_token=a2a, fabric_s=fabric, fabric_per_token_s=per_token,
            per_sequence_s=e.sequence_overhead_us / 1e6,
            floor_s=e.layer_floor_us * m.layers / 1e6,
            front_end_s=e.front_end_ms / 1e3,
            eager_prefill_s=(0.0 if self.prefill_graphs or m.mla is None
                             else e.eager_mla_layer_us * m.layers / 1e6),
            # every TP rank holds each token's whole residual stream; a DP rank only its own
            activation_s_per_token=(e.activation_passes * m.layers * m.hidden * 2
                                    / self.ranks / bandwidth),
            window=float(m.sliding_window or 0),
            local_share=(m.sliding_window_layers or 0) / m.layers,
            dense_read_s=((dense - replicated) / self.tp + replicated) / bandwidth,
            expert_read_s=experts / self.tp / (bandwidth * e.moe_efficiency),
            gemm_s_per_token=active / gemm_flops, kv_read_s_per_token=kv_bytes / bandwidth,
            attend_s_per_token=attend / attention_flops)


def _fabric(tp: int, layers: int, hidden: int, allreduces: int, busbw: float, latency: float,
            a2a_bytes: float) -> tuple[float, float]:
    """(fixed, per token) seconds of a step on the fabric: ring all-reduces of the
    activations across the TP ranks (two per layer; one under expert parallelism, none with
    data-parallel attention) and, in an expert-parallel layout, each MoE layer's all-to-all
    dispatch and combine (two exchanges) at the fabric's achieved bandwidth."""
    if tp == 1:
        return 0.0, 0.0
    ring = 2 * (tp - 1) / tp * hidden * 2 / busbw
    fixed = allreduces * layers * latency
    per_token = allreduces * layers * ring
    if a2a_bytes:
        fixed += layers * 2 * latency
        per_token += layers * a2a_bytes / busbw
    return fixed, per_token


def cached_tokens(model: OpenModel, tokens: float) -> float:
    """Whole-model token slots a sequence of ``tokens`` holds in the KV cache (and reads per
    step): every token in the global-attention layers, at most the window in the local
    ones. ``tokens`` itself for models without local attention."""
    if not model.sliding_window or not model.sliding_window_layers:
        return tokens
    local = model.sliding_window_layers / model.layers
    return tokens - local * max(0.0, tokens - model.sliding_window)


def kv_bytes_per_token(model: OpenModel, kv_dtype: str = "bf16", tp: int = 1) -> float:
    """KV-cache bytes one token occupies on one GPU of a ``tp``-way replica (all layers)."""
    size = 1 if kv_dtype == "fp8" else 2
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


def _attention_bytes(model: OpenModel, quant: Quant) -> float:
    """Attention weight bytes (all layers), what data-parallel attention replicates: Q, K,
    V and O projections for GQA; for MLA about 4 x hidden^2 per layer (DeepSeek-V3's
    q_a/q_b/kv_a/kv_b/o come to 187M per layer against 4 x 7168^2 = 206M). gpt-oss keeps
    attention in BF16 under MXFP4."""
    if model.mla is not None:
        per_layer = 4 * model.hidden**2
    else:
        per_layer = model.hidden * model.head_dim * 2 * (model.heads + model.kv_heads)
    fmt: Quant = "bf16" if quant == "mxfp4" else quant
    return model.layers * per_layer * bytes_per_weight(fmt)


def _weights_per_gpu(dep: Deployment, weights: float) -> float:
    """Weight bytes on one GPU: split over all of them, except that data-parallel attention
    keeps the attention weights whole on every GPU of a stage (the experts, the embeddings
    and the rest stay split, as SGLang and vLLM shard them)."""
    if dep.layout != "dp-ep":
        return weights / dep.gpus
    attention = _attention_bytes(dep.model, dep.quant)
    return attention / dep.pp + (weights - attention) / dep.gpus


def memory(dep: Deployment) -> Memory:
    model = dep.model
    weights = weight_bytes(model, dep.quant)
    per_gpu = _weights_per_gpu(dep, weights)
    budget = dep.batched_tokens // dep.ranks  # one rank's step
    activations = budget * (4 * model.hidden + 2 * model.intermediate / dep.tp) * 2
    overhead = dep.engine.runtime_overhead_gib * GIB
    if not dep.engine.static_fraction_rule:  # SGLang reserves them outside its fraction
        overhead += activations
    if dep.gpus > 1:
        overhead += _NCCL_GIB * GIB
    total = dep.gpu.memory_gib * GIB
    if dep.engine.kv_fraction_of_free:  # TensorRT-LLM: a fraction of what is left
        usable = per_gpu + overhead + max(0.0, total - per_gpu - overhead) * dep.memory_utilization
    else:
        usable = total * dep.memory_utilization
    kv_budget = max(0.0, usable - per_gpu - overhead)
    kv_tp = 1 if dep.layout == "dp-ep" else dep.tp  # a DP rank keeps its sequences' KV whole
    kv_per_gpu = kv_bytes_per_token(model, dep.kv, kv_tp) / dep.pp
    if kv_per_gpu > 0:  # every rank holds its own sequences
        kv_tokens = int(kv_budget // kv_per_gpu) // _BLOCK * _BLOCK * dep.ranks
    else:  # encoders keep no cache: memory only has to hold the weights
        kv_tokens = model.max_context if kv_budget > 0 else 0
    return Memory(
        weights_gib=weights / GIB,
        weights_gib_per_gpu=per_gpu / GIB,
        overhead_gib_per_gpu=overhead / GIB,
        kv_cache_gib_per_gpu=kv_budget / GIB,
        kv_bytes_per_token=kv_bytes_per_token(model, dep.kv, 1),
        kv_bytes_per_token_per_gpu=kv_per_gpu,
        kv_tokens=kv_tokens,
        usable_gib_per_gpu=usable / GIB,
    )


def layouts(model: OpenModel, gpu: GPU, max_gpus: int = 64,
            engine: Engine | None = None) -> list[tuple[int, int]]:
    """(tp, pp) pairs in increasing GPU count that the engine accepts: TP within a node,
    then pipeline stages across nodes."""
    out = [
        (tp, 1)
        for tp in _MAX_TP_STEPS
        if tp <= max_gpus and layout_refusal(model, gpu, engine, tp, 1) is None
    ]
    if out:
        tp = out[-1][0]
        pp = 2
        while tp * pp <= max_gpus and pp <= 8:
            out.append((tp, pp))
            pp *= 2
    return out
