"""Launch lines a user can paste for a sized deployment: vLLM, SGLang, TGI, TensorRT-LLM,
Ollama. Pure: strings from a ``Sizing``."""

from __future__ import annotations

from breakeven.planner.sizing import Sizing

__all__ = ["launch_lines"]

_VLLM_QUANT = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "int8": "fp8", "int4": "awq"}
_TGI_QUANT = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "int8": "eetq", "int4": "awq"}


def _repo(sizing: Sizing) -> str:
    model = sizing.deployment.model
    return model.hf_ids[0] if model.hf_ids else model.id


def launch_lines(sizing: Sizing) -> dict[str, str]:
    """One command per engine that can serve this sizing; the sized engine comes first."""
    dep = sizing.deployment
    repo = _repo(sizing)
    # a checkpoint already in the chosen format (DeepSeek-V3 ships FP8) needs no flag
    q = dep.quant if dep.quant != dep.model.native_quant else "bf16"
    seqs = sizing.max_seqs
    util = f"{dep.memory_utilization:.2f}"
    lines: dict[str, str] = {}

    vllm = [f"vllm serve {repo}", f"--tensor-parallel-size {dep.tp}"]
    if dep.pp > 1:
        vllm.append(f"--pipeline-parallel-size {dep.pp}")
    vllm += [f"--max-model-len {sizing.max_model_len}", f"--gpu-memory-utilization {util}",
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
    sglang += [f"--context-length {sizing.max_model_len}", f"--mem-fraction-static {util}",
               f"--max-running-requests {seqs}"]
    if q != "bf16":
        sglang.append(f"--quantization {_VLLM_QUANT[q]}")
    lines["sglang"] = " ".join(sglang)

    tgi = [f"text-generation-launcher --model-id {repo}", f"--num-shard {dep.gpus}",
           f"--max-input-tokens {sizing.input_len}",
           f"--max-total-tokens {sizing.max_model_len}",
           f"--max-concurrent-requests {seqs}"]
    if q != "bf16":
        tgi.append(f"--quantize {_TGI_QUANT[q]}")
    lines["tgi"] = " ".join(tgi)

    if dep.gpu.vendor == "nvidia":
        trt = [f"trtllm-serve {repo}", f"--tp_size {dep.tp}", f"--pp_size {dep.pp}",
               f"--max_seq_len {sizing.max_model_len}", f"--max_batch_size {seqs}",
               f"--kv_cache_free_gpu_memory_fraction {util}"]
        lines["tensorrt-llm"] = " ".join(trt)
    if dep.gpus == 1:
        lines["ollama"] = (f"OLLAMA_NUM_PARALLEL={min(seqs, 16)} "
                           f"OLLAMA_CONTEXT_LENGTH={sizing.max_model_len} ollama serve")
    order = [dep.engine.id] + [k for k in lines if k != dep.engine.id]
    return {k: lines[k] for k in order if k in lines}
