"""Launch lines a user can paste for a sized deployment: vLLM, SGLang, TGI, TensorRT-LLM,
Ollama. Pure: strings from a ``Sizing``. A MoE layout (expert parallel, data-parallel
attention) becomes each engine's own flags; an engine without the layout gets no line."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from breakeven.catalog.engine import Engine
from breakeven.planner.checkpoint import Weights, weights_for
from breakeven.planner.formats import moe_layout_refusal, quant_refusal
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


# The file trtllm-serve reads LLM-API options from that it has no flag for (attention DP,
# the KV cache's dtype).
TRT_OPTIONS = "extra-llm-api-config.yml"


@dataclass(frozen=True)
class _Launch:
    """What every engine's line is made of."""

    weights: Weights
    model_len: int
    max_input: int
    seqs: int  # sequences the replica runs at once (all its DP ranks together)
    util: str  # the engine's own memory figure for this deployment


def _per_rank(seqs: int, ranks: int) -> int:
    return max(1, math.ceil(seqs / ranks))


def _load(flag: str, x: _Launch) -> list[str]:
    """The weights flags of a line whose engine names what it serves with ``flag``: the
    name clients ask for when the checkpoint is another one, and its quantize-at-load
    flag."""
    w = x.weights
    return ([f"{flag} {w.served}"] if w.renamed else []) + ([w.flag] if w.flag else [])


def _vllm(dep: Deployment, x: _Launch) -> str:
    # docs.vllm.ai serving/expert_parallel_deployment and data_parallel_deployment
    # (v0.10-0.12): --enable-expert-parallel gives the MoE layers an EP group of TP x DP
    # GPUs; attention runs data-parallel with --data-parallel-size N at
    # --tensor-parallel-size 1, each DP rank an engine core process with its own scheduler
    # (vllm-project/vllm#13923), so --max-num-seqs counts one rank's sequences
    tp = 1 if dep.layout == "dp-ep" else dep.tp
    line = [f"vllm serve {x.weights.repo}", f"--tensor-parallel-size {tp}"]
    if dep.pp > 1:
        line.append(f"--pipeline-parallel-size {dep.pp}")
    if dep.layout == "dp-ep":
        line.append(f"--data-parallel-size {dep.tp}")
    if dep.layout != "tp":
        line.append("--enable-expert-parallel")
    line += [f"--max-model-len {x.model_len}", f"--gpu-memory-utilization {x.util}",
             f"--max-num-seqs {_per_rank(x.seqs, dep.ranks)}"]
    # the step budget the figures assume, always pinned (per DP rank): vLLM's default
    # moves with the GPU and the release (16,384 tokens on GPUs of 160 GiB+ from 0.28)
    line.append(f"--max-num-batched-tokens {_per_rank(dep.batched_tokens, dep.ranks)}")
    line += _load("--served-model-name", x)
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
    line = [f"python -m sglang.launch_server --model-path {x.weights.repo}", f"--tp {dep.tp}"]
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
    line += _load("--served-model-name", x)
    if dep.kv_dtype == "fp8":  # SGLang's auto is the model's 16-bit dtype
        line.append("--kv-cache-dtype fp8_e4m3")
    return " ".join(line)


def _trtllm(dep: Deployment, x: _Launch) -> str:
    # trtllm-serve (TensorRT-LLM 1.0, the DeepSeek-R1 examples under examples/serve):
    # --ep_size sets the LLM API's moe_expert_parallel_size; attention DP has no flag, only
    # enable_attention_dp in the --extra_llm_api_options YAML. Each attention-DP rank runs
    # its own executor and max_batch_size caps that rank, not the replica (traced through
    # TensorRT-LLM's pyexecutor in ai-dynamo/dynamo#11982), so it counts one rank's requests
    line = [f"trtllm-serve {x.weights.repo}", f"--tp_size {dep.tp}", f"--pp_size {dep.pp}"]
    if dep.layout != "tp":
        line.append(f"--ep_size {dep.tp}")
    line += [f"--max_seq_len {x.model_len}",
             f"--max_batch_size {_per_rank(x.seqs, dep.ranks)}",
             f"--kv_cache_free_gpu_memory_fraction {x.util}"]
    if dep.max_batched_tokens:  # per attention-DP rank, as max_batch_size
        line.append(f"--max_num_tokens {dep.max_batched_tokens}")
    # an FP8 cache is kv_cache_config.dtype in that file (InferenceX's
    # benchmarks/single_node/fixed_seq_len/dsr1_fp8_b200_trt.sh at 843c625; the default,
    # auto, follows the checkpoint's kv_cache_quant_algo)
    options = (["enable_attention_dp: true"] if dep.layout == "dp-ep" else []) + (
        ["kv_cache_config:", "  dtype: fp8"] if dep.kv_dtype == "fp8" else [])
    if not options:
        return " ".join(line)
    line.append(f"--extra_llm_api_options {TRT_OPTIONS}")
    yaml = "".join(f"{o}\\n" for o in options)
    return f"printf '{yaml}' > {TRT_OPTIONS} && " + " ".join(line)


def _tgi(dep: Deployment, x: _Launch) -> str:
    # text-generation-inference launcher/src/main.rs (db931fc, 2026-01-08): --quantize fp8
    # and eetq quantize any model, awq/gptq need a checkpoint in that format, whose
    # config.json quantization_config the launcher reads; --kv-cache-dtype fp8_e4m3fn
    line = [f"text-generation-launcher --model-id {x.weights.repo}", f"--num-shard {dep.gpus}",
            f"--max-input-tokens {x.max_input}", f"--max-total-tokens {x.model_len}",
            f"--max-concurrent-requests {x.seqs}"]
    if x.weights.flag:
        line.append(x.weights.flag)
    if dep.kv_dtype == "fp8":
        line.append("--kv-cache-dtype fp8_e4m3fn")
    return " ".join(line)


def _ollama(dep: Deployment, x: _Launch) -> str:
    # the tag is read first, so an unset placeholder stops the line before the server
    # starts; `ollama pull` and `cp` need the server up (`ollama list` fails until it is);
    # the copy is the name the gateway asks for (checkpoint.weights_for), tagged "latest"
    return (f"tag={x.weights.repo}; OLLAMA_NUM_PARALLEL={min(x.seqs, 16)} "
            f"OLLAMA_CONTEXT_LENGTH={x.model_len} ollama serve & "
            "until ollama list >/dev/null 2>&1; do sleep 1; done; "
            f'ollama pull "$tag" && ollama cp "$tag" {dep.model.id}; wait')


_LINES: dict[str, Callable[[Deployment, _Launch], str]] = {
    "vllm": _vllm, "sglang": _sglang, "tgi": _tgi, "tensorrt-llm": _trtllm, "ollama": _ollama}


def _emits(dep: Deployment, engine: str, rows: dict[str, Engine]) -> bool:
    """Whether a line for ``engine`` describes ``dep``: TensorRT-LLM on NVIDIA only, Ollama
    on one GPU only; for an engine other than the sized one, only where its catalog row
    serves the weight format on this GPU and accepts the MoE layout."""
    if engine == "tensorrt-llm" and dep.gpu.vendor != "nvidia":
        return False
    if engine == "ollama" and dep.gpus != 1:
        return False
    if engine == dep.engine.id:
        return True
    row = rows.get(engine)
    if row is None:
        return dep.layout == "tp"
    return (quant_refusal(dep.gpu, row, dep.quant) is None
            and (dep.layout == "tp" or moe_layout_refusal(dep.model, row, dep.layout,
                                                          dep.tp) is None))


def _util(dep: Deployment, row: Engine | None) -> str:
    """The engine's own memory figure for ``dep`` (each engine's flag means its own thing:
    vLLM's share of the GPU, SGLang's static fraction, TensorRT-LLM's share of the memory
    left after the weights); the sized one's where the engine has no catalog row."""
    on = dep if row is None or row.id == dep.engine.id else replace(dep, engine=row)
    return f"{on.memory_utilization:.2f}"


def launch_lines(sizing: Sizing, context: Context | None = None,
                 engines: Iterable[Engine] = ()) -> dict[str, str]:
    """One command per engine that can serve this sizing; the sized engine comes first.
    ``context`` sets the longest request accepted (default: the sizing's mean request).
    Each line loads the weights in the format sized (``checkpoint.weights_for``). An
    engine other than the sized one gets a line only where its row among ``engines``
    (catalog rows) serves the format and the MoE layout."""
    dep = sizing.deployment
    model_len = context.model_len if context else sizing.max_model_len
    max_input = (min(context.max_input, model_len - 1) if context
                 else sizing.input_len)
    rows = {e.id: e for e in engines}
    lines = {name: make(dep, _Launch(
        weights_for(dep.model, dep.quant, name, dep.gpu.vendor), model_len, max_input,
        sizing.max_seqs, _util(dep, rows.get(name))))
        for name, make in _LINES.items() if _emits(dep, name, rows)}
    order = [dep.engine.id] + [k for k in lines if k != dep.engine.id]
    return {k: lines[k] for k in order if k in lines}
