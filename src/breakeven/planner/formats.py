"""Weight formats and the layouts engines accept. Pure.

A format fixes the bytes a weight occupies (4-bit formats carry their block scales: AWQ and
GPTQ an fp16 scale per 128 weights, NVFP4 an FP8 scale per 16, MXFP4 an 8-bit scale per
32, i.e. 4.25 bits) and the tensor-core rate its GEMMs run at: weight-only formats (int4,
AWQ, GPTQ; MXFP4 on GPUs without FP4 tensor cores, as vLLM runs gpt-oss on Hopper)
dequantise to BF16 and compute at the BF16 rate; FP8 and INT8 (W8A8) at the 8-bit rate;
NVFP4 only where the GPU row has ``fp4_tflops`` (Blackwell). gpt-oss keeps attention,
embeddings and router in BF16 and only its experts in MXFP4, so MXFP4 applies to a MoE's
expert weights only.
"""

from __future__ import annotations

from breakeven.catalog.engine import Engine
from breakeven.catalog.schema import GPU, KVCacheDtype, OpenModel, Quant
from breakeven.planner.moe_layouts import Layout

__all__ = [
    "accepted_layouts",
    "budget_refusal",
    "bytes_per_weight",
    "compute_tflops",
    "kv_default",
    "layout_refusal",
    "moe_layout_refusal",
    "quant_refusal",
    "weight_bytes",
]

_BYTES: dict[str, float] = {
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5 + 2.0 / 128,
    "awq": 0.5 + 2.0 / 128,
    "gptq": 0.5 + 2.0 / 128,
    "fp4": 0.5 + 1.0 / 16,
    "mxfp4": 4.25 / 8,
}


def bytes_per_weight(quant: Quant) -> float:
    """Bytes per parameter, block scales included."""
    return _BYTES[quant]


def weight_bytes(model: OpenModel, quant: Quant) -> float:
    """All weight bytes of ``model`` in ``quant`` (MXFP4: experts only, the rest BF16)."""
    params = model.params_b * 1e9
    if quant == "mxfp4" and model.moe is not None:
        experts = model.moe.expert_params_b * 1e9
        return experts * _BYTES["mxfp4"] + (params - experts) * _BYTES["bf16"]
    return params * _BYTES[quant]


def compute_tflops(gpu: GPU, quant: Quant) -> float:
    """Dense tensor TFLOPs the GEMMs of ``quant`` weights run at on ``gpu``. MXFP4 (gpt-oss)
    runs W4A8 on NVIDIA Blackwell (MXFP8 activations against MXFP4 experts: the FP8 rate)
    and weight-only on Hopper (BF16 activations), per TensorRT-LLM's gpt-oss deployment
    guide's MoE backend matrix (nvidia.github.io/TensorRT-LLM, deployment-guide for
    GPT-OSS, 1.2-1.4) and vLLM's FlashInfer MXFP4 x MXFP8 kernels; on AMD parts with FP4
    tensor cores it is taken at the FP4 rate (not checked against a source)."""
    if quant == "mxfp4" and gpu.fp4_tflops and gpu.vendor == "nvidia":
        return gpu.fp8_tflops or gpu.fp4_tflops
    if quant in ("fp4", "mxfp4") and gpu.fp4_tflops:
        return gpu.fp4_tflops
    if quant == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops
    if quant == "int8":
        return gpu.fp8_tflops or 2 * gpu.bf16_tflops
    return gpu.bf16_tflops


def kv_default(engine: Engine, quant: Quant) -> KVCacheDtype:
    """What ``--kv-dtype auto`` means: the engine's KV cache for this weight format."""
    return "fp8" if quant in engine.fp8_kv_for else "bf16"


def quant_refusal(gpu: GPU, engine: Engine, quant: Quant) -> str | None:
    """Why ``engine`` cannot serve ``quant`` weights on ``gpu`` (None: it can)."""
    if quant not in engine.quantizations:
        return f"{engine.name} does not serve {quant.upper()} weights"
    if quant == "fp4" and not gpu.fp4_tflops:
        return (f"NVFP4 needs FP4 tensor cores (Blackwell); {gpu.name} has none (fp8, "
                f"int4 and mxfp4 run on it)")
    return None


_SCHEDULER_OPTIONS = {
    "recv_interval": "scheduler receive interval (SGLang's --scheduler-recv-interval)",
    "batch_wait": "batch waiting (TensorRT-LLM's batch_wait_timeout_iters / "
                  "batch_wait_max_tokens_ratio)",
    "adp_balance": "attention-DP balancing (TensorRT-LLM's attention_dp_config)",
}


def scheduling_refusal(engine: Engine, options: tuple[str, ...], layout: str) -> str | None:
    """Why ``engine`` has no such scheduler ``options`` (``Scheduling.options``) in this
    MoE ``layout``, None when it does. TensorRT-LLM waits for batches only without
    attention DP and balances only with it (PyExecutor._schedule)."""
    for option in options:
        if option not in engine.scheduler_options:
            return f"{engine.name} has no {_SCHEDULER_OPTIONS[option]}"
    if "adp_balance" in options and layout != "dp-ep":
        return "attention-DP balancing needs the dp-ep layout (attention data-parallel)"
    if "batch_wait" in options and layout == "dp-ep":
        return f"{engine.name} waits for batches only without attention DP (layout dp-ep)"
    return None


def budget_refusal(engine: Engine, max_num_seqs: int, max_batched_tokens: int) -> str | None:
    """Why ``engine`` will not start with these limits (one rank's), None when it will."""
    if engine.budget_covers_seqs and max_batched_tokens < max_num_seqs:
        return (f"{engine.name} refuses max_batched_tokens {max_batched_tokens:,} below "
                f"max_num_seqs {max_num_seqs:,}: a step holds a decode token for every running "
                "sequence; raise the budget or run fewer sequences")
    return None


def layout_refusal(model: OpenModel, gpu: GPU, engine: Engine | None, tp: int,
                   pp: int) -> str | None:
    """Why an engine refuses ``tp`` x ``pp`` for ``model`` on ``gpu`` (None: it accepts)."""
    if tp > gpu.gpus_per_node:
        return (f"tensor parallelism {tp} spans more than one {gpu.gpus_per_node}-GPU node; "
                f"engines keep TP inside a node (use pipeline stages across nodes)")
    if model.heads % tp:
        return (f"tensor parallelism {tp} does not divide the {model.heads} attention heads "
                f"of {model.name}")
    kv = model.kv_heads
    if (engine is not None and engine.tp_divides_kv_heads and model.mla is None
            and kv % tp and tp % kv):
        return (f"tensor parallelism {tp} neither divides nor is a multiple of the {kv} KV "
                f"heads of {model.name} ({engine.name} refuses it)")
    if pp > model.layers:
        return f"{pp} pipeline stages exceed the {model.layers} layers of {model.name}"
    return None


def moe_layout_refusal(model: OpenModel, engine: Engine, layout: str, tp: int) -> str | None:
    """Why ``engine`` cannot run ``model`` with the MoE ``layout`` (``ep``: expert
    parallelism across the ``tp`` GPUs of a stage; ``dp-ep``: with data-parallel attention
    too) on ``tp`` GPUs (None: it can; ``tp`` never needs a reason)."""
    if layout == "tp":
        return None
    if model.moe is None:
        return f"{model.name} is dense: expert-parallel layouts apply to MoE models only"
    if layout not in engine.moe_layouts:
        have = [e for e in ("ep", "dp-ep") if e in engine.moe_layouts]
        return (f"{engine.name} has no {layout} layout"
                + (f" (it offers {', '.join(have)})" if have else " (tensor parallelism only)"))
    if tp < 2:
        return f"the {layout} layout needs 2 or more GPUs per stage"
    if model.moe.experts % tp:
        return f"{tp} GPUs do not split the {model.moe.experts} experts of {model.name} evenly"
    return None


def accepted_layouts(model: OpenModel, engine: Engine,
                     tp: int) -> tuple[Layout, ...]:
    """The MoE layouts ``engine`` runs ``model`` with on a stage of ``tp`` GPUs: ``tp``
    always, then each of the engine's ``moe_layouts`` that ``moe_layout_refusal`` lets
    through (none for a dense model, a single GPU, or an engine with tensor parallelism
    only)."""
    if model.moe is None or not engine.moe_layouts:  # the planner asks for every config
        return ("tp",)
    return ("tp", *(layout for layout in engine.moe_layouts
                    if moe_layout_refusal(model, engine, layout, tp) is None))
