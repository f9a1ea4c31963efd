"""SGLang's default ``--mem-fraction-static``: the share of a GPU that weights and the KV
pool may take, the rest reserved for activations, CUDA graphs and metadata. Pure.

As ``ServerArgs._handle_gpu_memory_settings`` in ``python/sglang/srt/server_args.py``
computes it when the flag is not given (sgl-project/sglang at 469c63e): reserved MiB =
512 + 1.5 per token of the chunked-prefill budget (at least 2,048) + 2 per CUDA-graph batch
size + 1,024 per 8 GPUs of TP x PP; with data-parallel attention 3 more per graph batch
size and rank (4.5 past 300); at least 10 GiB on GPUs over 60 GB; the fraction
``round((memory - reserved) / memory, 3)``. ``cuda_graph_max_bs`` follows the GPU's memory
and the TP degree as the same function sets it.
"""

from __future__ import annotations

MIB_PER_GIB = 1024


def cuda_graph_max_bs(memory_mib: float, tp: int) -> int:
    """The largest batch SGLang captures a decode CUDA graph for, by GPU memory."""
    small_tp = tp < 4
    if memory_mib < 20 * 1024:  # T4, 4080
        return 8
    if memory_mib < 35 * 1024:  # A10, 4090, 5090
        return 24 if small_tp else 80
    if memory_mib < 60 * 1024:  # A100 40GB, L40
        return 32 if small_tp else 160
    if memory_mib < 160 * 1024:  # H100, A100 80GB, H20, H200
        return 256 if small_tp else 512
    return 512  # B200, MI300X


def static_fraction(memory_gib: float, tp: int, pp: int, step_tokens: int,
                    dp_attention_ranks: int = 1) -> float:
    """SGLang's default mem_fraction_static on a GPU of ``memory_gib`` (what the driver
    exposes) for a ``tp`` x ``pp`` layout with a chunked-prefill budget of
    ``step_tokens``; ``dp_attention_ranks`` > 1 with data-parallel attention."""
    memory = memory_gib * MIB_PER_GIB
    graphs = cuda_graph_max_bs(memory, tp)
    reserved = 512 + max(step_tokens, 2048) * 1.5 + graphs * 2 + tp * pp / 8 * 1024
    if dp_attention_ranks > 1:
        reserved += graphs * dp_attention_ranks * (4.5 if graphs > 300 else 3)
    if memory > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    return round((memory - reserved) / memory, 3)
