"""Which weights an engine's launch line loads for the format a deployment was sized in.

In order: the model's own checkpoint when it already is that format; a pre-quantized
checkpoint of that format the catalog names (``OpenModel.checkpoints``; engines read the
format from the checkpoint's own config, so it needs no flag, except that vLLM is told
NVIDIA's ModelOpt method, and those exports serve NVIDIA GPUs only); the 16-bit checkpoint with
the engine's flag for quantizing as it loads, where the engine has one; else a shell
placeholder that stops the command, naming the checkpoint to fetch, rather than a line that
starts the model in a format other than the one it was sized in. Ollama always gets the
placeholder: it serves tags of its own registry. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from breakeven.catalog.schema import OpenModel, Quant

__all__ = ["CHECKPOINT_VAR", "Weights", "weights_for"]

# Flags that quantize a 16-bit checkpoint as the engine loads it, per engine and format.
# vLLM: --quantization fp8 (dynamic per-tensor FP8, docs.vllm.ai features/quantization/fp8);
# SGLang: --quantization fp8 on a BF16 checkpoint (docs.sglang.io, quantization: online
# quantization); TGI: --quantize fp8 and eetq (INT8) quantize at load (TGI launcher docs).
# TensorRT-LLM's PyTorch backend loads pre-quantized (ModelOpt) checkpoints only.
ONLINE: dict[str, dict[str, str]] = {
    "vllm": {"fp8": "--quantization fp8"},
    "sglang": {"fp8": "--quantization fp8"},
    "tgi": {"fp8": "--quantize fp8", "int8": "--quantize eetq"},
}
# A 4-bit integer deployment loads an AWQ or a GPTQ checkpoint.
_SAME: dict[Quant, tuple[Quant, ...]] = {"int4": ("int4", "awq", "gptq")}
_NAMES = {"bf16": "BF16", "fp8": "FP8", "int8": "INT8 (W8A8)", "int4": "4-bit AWQ or GPTQ",
          "awq": "AWQ", "gptq": "GPTQ", "fp4": "NVFP4", "mxfp4": "MXFP4"}
# Ollama's GGUF words for them (llama.cpp quantization types)
_GGUF = {"bf16": "F16 or BF16", "int8": "Q8_0", "int4": "Q4_K_M"}
CHECKPOINT_VAR = "CHECKPOINT"
_PLACEHOLDER = f'"${{{CHECKPOINT_VAR}:?'
# NVIDIA's own exports are TensorRT Model Optimizer (ModelOpt) checkpoints whose cards name
# NVIDIA GPUs as their hardware; vLLM, SGLang and TensorRT-LLM load them (TGI's
# quantization_config reader knows no ModelOpt method), elsewhere they are passed over.
# vLLM's recipes of 2025 pass the method (--quantization modelopt / modelopt_fp4, the
# Llama 3.3 70B recipe), which later releases also read from the checkpoint; SGLang reads
# it from the checkpoint (docs.sglang.io quantization: no flag for a quantized checkpoint).
_MODELOPT = "nvidia/"
_MODELOPT_ENGINES = ("vllm", "sglang", "tensorrt-llm")
_MODELOPT_FLAG = {("vllm", "fp8"): "--quantization modelopt",
                  ("vllm", "fp4"): "--quantization modelopt_fp4"}


# trtllm-serve (TensorRT-LLM 1.x) has no flag naming what it serves: its OpenAI server lists
# and answers under the MODEL argument it loaded (tensorrt_llm/serve/openai_server.py,
# OpenAIServer.__init__: a local directory's name, else the id as given; NVIDIA/TensorRT-LLM
# at 00209af, whose tensorrt_llm/commands/serve.py has no --served_model_name).
# TGI likewise lists its --model-id (router/src/server.rs openai_get_model_info; it ignores
# the request's model; text-generation-inference at db931fc, 2026-01-08).
_NO_RENAME = ("tensorrt-llm", "tgi")
# Ollama serves GGUF models from its own registry by tag, not Hugging Face checkpoints: the
# line pulls the tag the operator names and copies it to the catalog id (``ollama cp``, as
# docs/api/anthropic-compatibility.mdx does for fixed names; ollama at fb30760,
# 2026-08-21), which /v1/models then lists with Ollama's default tag.
_OLLAMA_TAG = "latest"


@dataclass(frozen=True)
class Weights:
    """What a line loads: ``repo`` (a Hugging Face id, or the placeholder), the engine's
    quantize-at-load ``flag`` if any, and ``served``: the name the engine answers to as
    launched, which clients and the gateway ask for. That is the model's own id where the
    engine can be told it when ``repo`` is another checkpoint (vLLM's and SGLang's
    --served-model-name), the checkpoint's id where it cannot (trtllm-serve, TGI), the
    catalog id for Ollama, which serves its own registry's tag under a copied name."""

    repo: str
    flag: str | None
    served: str

    @property
    def renamed(self) -> bool:
        return self.repo != self.served

    @property
    def known(self) -> bool:
        """False: no checkpoint of the format is named; ``repo`` is the placeholder."""
        return not self.repo.startswith(_PLACEHOLDER)


def weights_for(model: OpenModel, quant: Quant, engine: str,
                vendor: str = "nvidia") -> Weights:
    """The weights ``engine`` loads to serve ``model`` as ``quant`` on ``vendor``'s GPUs."""
    base = model.hf_ids[0] if model.hf_ids else model.id
    if engine == "ollama":
        tag = f"an Ollama tag of {base} in {_GGUF.get(quant, _NAMES[quant])}"
        return Weights(_placeholder(tag), None, f"{model.id}:{_OLLAMA_TAG}")
    if quant == model.native_quant:
        return Weights(base, None, base)
    same: tuple[Quant, ...] = _SAME.get(quant, (quant,))
    for q in same:
        repo = model.checkpoints.get(q)
        if repo is None:
            continue
        served = repo if engine in _NO_RENAME else base
        if not repo.startswith(_MODELOPT):
            return Weights(repo, None, served)
        if vendor == "nvidia" and engine in _MODELOPT_ENGINES:
            return Weights(repo, _MODELOPT_FLAG.get((engine, q)), served)
    flag = ONLINE.get(engine, {}).get(quant)
    if flag and model.native_quant == "bf16":
        return Weights(base, flag, base)
    return Weights(_placeholder(f"a checkpoint of {base} in {_NAMES[quant]}"), None, base)


def _placeholder(what: str) -> str:
    return f'{_PLACEHOLDER}set {CHECKPOINT_VAR} to {what}}}"'
