"""Launch lines a user can paste for a sized deployment: vLLM, SGLang, TGI, TensorRT-LLM,
Ollama. Pure: strings from a ``Sizing``. A MoE layout (expert parallel, data-parallel
attention) becomes each engine's own flags; an engine without the layout gets no line."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from breakeven.catalog.schema import Engine
from breakeven.planner.formats import moe_layout_refusal
from breakeven.planner.sizing import Deployment, Sizing

__all__ = ["TAIL_MULTIPLE", "TAIL_SIGMA", "TRT_OPTIONS", "Context", "context_for",
           "launch_lines", "p99_multiple"]

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
# The file trtllm-serve reads LLM-API options from that it has no flag for (attention DP).
TRT_OPTIONS = "extra-llm-api-config.yml"


@dataclass(frozen=True)
class _Launch:
    """What every engine's line is made of."""

    repo: str
    model_len: int
    max_input: int
    seqs: int  # sequences the replica runs at once (all its DP ranks together)
    util: str
    quant: str  # the flag's format, "bf16" for none


def _repo(sizing: Sizing) -> str:
    model = sizing.deployment.model
    return model.hf_ids[0] if model.hf_ids else model.id


def _per_rank(seqs: int, ranks: int) -> int:
    return max(1, math.ceil(seqs / ranks))


def _vllm(dep: Deployment, x: _Launch) -> str:
    # docs.vllm.ai serving/expert_parallel_deployment and data_parallel_deployment
    # (v0.10-0.12): --enable-expert-parallel gives the MoE layers an EP group of TP x DP
    # GPUs; attention runs data-parallel with --data-parallel-size N at
    # --tensor-parallel-size 1, each DP rank an engine core process with its own scheduler
    # (vllm-project/vllm#13923), so --max-num-seqs counts one rank's sequences
    tp = 1 if dep.layout == "dp-ep" else dep.tp
    line = [f"vllm serve {x.repo}", f"--tensor-parallel-size {tp}"]
    if dep.pp > 1:
        line.append(f"--pipeline-parallel-size {dep.pp}")
    if dep.layout == "dp-ep":
        line.append(f"--data-parallel-size {dep.tp}")
    if dep.layout != "tp":
        line.append("--enable-expert-parallel")
    line += [f"--max-model-len {x.model_len}", f"--gpu-memory-utilization {x.util}",
             f"--max-num-seqs {_per_rank(x.seqs, dep.ranks)}"]
    if dep.max_batched_tokens:  # a budget of the deployment's own, per DP rank
        line.append(f"--max-num-batched-tokens {dep.max_batched_tokens}")
    if x.quant != "bf16":
        line.append(f"--quantization {_VLLM_QUANT[x.quant]}")
    if dep.kv_dtype == "fp8":
        line.append("--kv-cache-dtype fp8")
    if dep.model.kind == "embedding":
        line.append("--task embed")
    return " ".join(line)


def _sglang(dep: Deployment, x: _Launch) -> str:
    # SGLang's server arguments (docs.sglang.io advanced_features/server_arguments and
    # dp_dpa_smg_guide): --ep-size splits the experts over the --tp GPUs;
    # --enable-dp-attention with --dp-size N runs attention data-parallel inside them.
    # --max-running-requests stays the replica's total (SGLang's model runner takes
    # max_running_requests // dp_size per worker under enable_dp_attention)
    line = [f"python -m sglang.launch_server --model-path {x.repo}", f"--tp {dep.tp}"]
    if dep.pp > 1:
        line.append(f"--pp-size {dep.pp}")
    if dep.layout == "dp-ep":
        line += [f"--dp-size {dep.tp}", "--enable-dp-attention"]
    if dep.layout != "tp":
        line.append(f"--ep-size {dep.tp}")
    line += [f"--context-length {x.model_len}", f"--mem-fraction-static {x.util}",
             f"--max-running-requests {x.seqs}"]
    if dep.max_batched_tokens:  # SGLang divides the chunk over the DP ranks itself
        line.append(f"--chunked-prefill-size {dep.batched_tokens}")
    if x.quant != "bf16":
        line.append(f"--quantization {_VLLM_QUANT[x.quant]}")
    if dep.kv_dtype == "fp8":  # SGLang's auto is the model's 16-bit dtype
        line.append("--kv-cache-dtype fp8_e4m3")
    return " ".join(line)


def _trtllm(dep: Deployment, x: _Launch) -> str:
    # trtllm-serve (TensorRT-LLM 1.0, the DeepSeek-R1 examples under examples/serve):
    # --ep_size sets the LLM API's moe_expert_parallel_size; attention DP has no flag, only
    # enable_attention_dp in the --extra_llm_api_options YAML. Each attention-DP rank runs
    # its own executor and max_batch_size caps that rank, not the replica (traced through
    # TensorRT-LLM's pyexecutor in ai-dynamo/dynamo#11982), so it counts one rank's requests
    line = [f"trtllm-serve {x.repo}", f"--tp_size {dep.tp}", f"--pp_size {dep.pp}"]
    if dep.layout != "tp":
        line.append(f"--ep_size {dep.tp}")
    line += [f"--max_seq_len {x.model_len}",
             f"--max_batch_size {_per_rank(x.seqs, dep.ranks)}",
             f"--kv_cache_free_gpu_memory_fraction {x.util}"]
    if dep.max_batched_tokens:  # per attention-DP rank, as max_batch_size
        line.append(f"--max_num_tokens {dep.max_batched_tokens}")
    if dep.layout == "dp-ep":
        line.append(f"--extra_llm_api_options {TRT_OPTIONS}")
        return f"printf 'enable_attention_dp: true\\n' > {TRT_OPTIONS} && " + " ".join(line)
    return " ".join(line)


def _tgi(dep: Deployment, x: _Launch) -> str:
    line = [f"text-generation-launcher --model-id {x.repo}", f"--num-shard {dep.gpus}",
            f"--max-input-tokens {x.max_input}", f"--max-total-tokens {x.model_len}",
            f"--max-concurrent-requests {x.seqs}"]
    if x.quant != "bf16":
        line.append(f"--quantize {_TGI_QUANT[x.quant]}")
    return " ".join(line)


def _ollama(dep: Deployment, x: _Launch) -> str:
    return f"OLLAMA_NUM_PARALLEL={min(x.seqs, 16)} OLLAMA_CONTEXT_LENGTH={x.model_len} ollama serve"


_LINES: dict[str, Callable[[Deployment, _Launch], str]] = {
    "vllm": _vllm, "sglang": _sglang, "tgi": _tgi, "tensorrt-llm": _trtllm, "ollama": _ollama}


def _emits(dep: Deployment, engine: str, rows: dict[str, Engine]) -> bool:
    """Whether a line for ``engine`` describes ``dep``: TensorRT-LLM on NVIDIA only, Ollama
    on one GPU only, and a MoE layout only where the engine's catalog row accepts it (the
    sized engine did)."""
    if engine == "tensorrt-llm" and dep.gpu.vendor != "nvidia":
        return False
    if engine == "ollama" and dep.gpus != 1:
        return False
    if dep.layout == "tp" or engine == dep.engine.id:
        return True
    row = rows.get(engine)
    return row is not None and moe_layout_refusal(dep.model, row, dep.layout, dep.tp) is None


def launch_lines(sizing: Sizing, context: Context | None = None,
                 engines: Iterable[Engine] = ()) -> dict[str, str]:
    """One command per engine that can serve this sizing; the sized engine comes first.
    ``context`` sets the longest request accepted (default: the sizing's mean request). A
    MoE layout other than ``tp`` is emitted as each engine's own flags, and only for the
    engines among ``engines`` (catalog rows) that accept it."""
    dep = sizing.deployment
    model_len = context.model_len if context else sizing.max_model_len
    max_input = (min(context.max_input, model_len - 1) if context
                 else sizing.input_len)
    # a checkpoint already in the chosen format (DeepSeek-V3 ships FP8) needs no flag
    q = dep.quant if dep.quant != dep.model.native_quant else "bf16"
    x = _Launch(_repo(sizing), model_len, max_input, sizing.max_seqs,
                f"{dep.memory_utilization:.2f}", q)
    rows = {e.id: e for e in engines}
    lines = {name: make(dep, x) for name, make in _LINES.items() if _emits(dep, name, rows)}
    order = [dep.engine.id] + [k for k in lines if k != dep.engine.id]
    return {k: lines[k] for k in order if k in lines}
