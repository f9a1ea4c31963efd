"""Launch lines a user can paste for a sized deployment: vLLM, SGLang, TGI, TensorRT-LLM,
Ollama. Pure: strings from a ``Sizing``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from breakeven.planner.sizing import Sizing

__all__ = ["TAIL_MULTIPLE", "TAIL_SIGMA", "Context", "context_for", "launch_lines",
           "p99_multiple"]

# Request lengths are long-tailed: a lognormal with this sigma (log-space spread) around the
# stated mean is the assumption when the workload states no maximum. Its p99 is
# exp(2.326 sigma - sigma^2 / 2) times the mean: about 3.4x at 0.6.
TAIL_SIGMA = 0.6
_Z99 = 2.3263


def p99_multiple(sigma: float = TAIL_SIGMA) -> float:
    """p99 over mean of a lognormal with log-space spread ``sigma``."""
    return math.exp(_Z99 * sigma - sigma * sigma / 2)


TAIL_MULTIPLE = p99_multiple()


@dataclass(frozen=True)
class Context:
    """The longest request a replica is launched to accept, and why."""

    max_input: int
    max_output: int
    model_len: int  # --max-model-len: input + output, rounded up to 1,024, capped
    note: str


def context_for(mean_in: int, mean_out: int, model_context: int,
                max_input: int | None = None, max_output: int | None = None,
                kv_tokens: int | None = None) -> Context:
    """The launch context for requests of mean ``mean_in`` + ``mean_out`` tokens: the stated
    maxima (``traffic.max_input_tokens``/``max_output_tokens``), else the p99 of a lognormal
    around each mean; rounded up to 1,024 tokens and capped by the model's context and by
    the KV cache (an engine refuses to start with a context one sequence cannot hold)."""
    top_in = max(max_input or math.ceil(mean_in * TAIL_MULTIPLE), mean_in)
    top_out = max(max_output if max_output is not None else math.ceil(mean_out * TAIL_MULTIPLE),
                  mean_out)
    want = math.ceil((top_in + top_out) / 1024) * 1024
    caps = [(model_context, "the model's context")]
    if kv_tokens:
        caps.append((max(1024, kv_tokens // 1024 * 1024), "what the KV cache holds"))
    cap, cap_why = min(caps)
    model_len = min(cap, want)
    stated = [name for name, v in (("max_input_tokens", max_input),
                                   ("max_output_tokens", max_output)) if v is not None]
    how = (f"traffic.{' and '.join(stated)}" if len(stated) == 2 else
           f"p99 of a lognormal (sigma {TAIL_SIGMA:g}) around the means: {TAIL_MULTIPLE:.1f}x"
           + (f"; traffic.{stated[0]}" if stated else ""))
    note = (f"context {model_len:,} tokens for inputs up to {top_in:,} and outputs up to "
            f"{top_out:,} ({how}; means {mean_in:,} and {mean_out:,})")
    if model_len < want:
        note += (f"; capped at {cap_why} ({cap:,}): the engine refuses longer requests")
    return Context(min(top_in, model_len), top_out, model_len, note)


_VLLM_QUANT = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "int8": "fp8", "int4": "awq"}
_TGI_QUANT = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "int8": "eetq", "int4": "awq"}


def _repo(sizing: Sizing) -> str:
    model = sizing.deployment.model
    return model.hf_ids[0] if model.hf_ids else model.id


def launch_lines(sizing: Sizing, context: Context | None = None) -> dict[str, str]:
    """One command per engine that can serve this sizing; the sized engine comes first.
    ``context`` sets the longest request accepted (default: the sizing's mean request)."""
    dep = sizing.deployment
    model_len = context.model_len if context else sizing.max_model_len
    max_input = (min(context.max_input, model_len - 1) if context
                 else sizing.input_len)
    repo = _repo(sizing)
    # a checkpoint already in the chosen format (DeepSeek-V3 ships FP8) needs no flag
    q = dep.quant if dep.quant != dep.model.native_quant else "bf16"
    seqs = sizing.max_seqs
    util = f"{dep.memory_utilization:.2f}"
    lines: dict[str, str] = {}

    vllm = [f"vllm serve {repo}", f"--tensor-parallel-size {dep.tp}"]
    if dep.pp > 1:
        vllm.append(f"--pipeline-parallel-size {dep.pp}")
    vllm += [f"--max-model-len {model_len}", f"--gpu-memory-utilization {util}",
             f"--max-num-seqs {seqs}"]
    if q != "bf16":
        vllm.append(f"--quantization {_VLLM_QUANT[q]}")
    if dep.kv_dtype == "fp8":
        vllm.append("--kv-cache-dtype fp8")
    if dep.model.kind == "embedding":
        vllm.append("--task embed")
    lines["vllm"] = " ".join(vllm)

    sglang = [f"python -m sglang.launch_server --model-path {repo}", f"--tp {dep.tp}"]
    if dep.pp > 1:
        sglang.append(f"--pp-size {dep.pp}")
    sglang += [f"--context-length {model_len}", f"--mem-fraction-static {util}",
               f"--max-running-requests {seqs}"]
    if q != "bf16":
        sglang.append(f"--quantization {_VLLM_QUANT[q]}")
    lines["sglang"] = " ".join(sglang)

    tgi = [f"text-generation-launcher --model-id {repo}", f"--num-shard {dep.gpus}",
           f"--max-input-tokens {max_input}",
           f"--max-total-tokens {model_len}",
           f"--max-concurrent-requests {seqs}"]
    if q != "bf16":
        tgi.append(f"--quantize {_TGI_QUANT[q]}")
    lines["tgi"] = " ".join(tgi)

    if dep.gpu.vendor == "nvidia":
        trt = [f"trtllm-serve {repo}", f"--tp_size {dep.tp}", f"--pp_size {dep.pp}",
               f"--max_seq_len {model_len}", f"--max_batch_size {seqs}",
               f"--kv_cache_free_gpu_memory_fraction {util}"]
        lines["tensorrt-llm"] = " ".join(trt)
    if dep.gpus == 1:
        lines["ollama"] = (f"OLLAMA_NUM_PARALLEL={min(seqs, 16)} "
                           f"OLLAMA_CONTEXT_LENGTH={model_len} ollama serve")
    order = [dep.engine.id] + [k for k in lines if k != dep.engine.id]
    return {k: lines[k] for k in order if k in lines}
