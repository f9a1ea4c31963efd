"""Which weights an engine's launch line loads for the format a deployment was sized in.

In order: the model's own checkpoint when it already is that format; a pre-quantized
checkpoint of that format the catalog names (``OpenModel.checkpoints``; engines read the
format from the checkpoint's own config, so it needs no flag); the 16-bit checkpoint with
the engine's flag for quantizing as it loads, where the engine has one; else a shell
placeholder that stops the command, naming the checkpoint to fetch, rather than a line that
starts the model in a format other than the one it was sized in. Pure.
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
CHECKPOINT_VAR = "CHECKPOINT"
# NVIDIA's own exports (TensorRT Model Optimizer) name NVIDIA GPUs as their supported
# hardware on their model cards: on another vendor's GPUs they are passed over.
_NVIDIA_ONLY = "nvidia/"


@dataclass(frozen=True)
class Weights:
    """What a line loads: ``repo`` (a Hugging Face id, or the placeholder), the engine's
    quantize-at-load ``flag`` if any, and ``served``: the name clients ask for (the model's
    own id), which the engine must be told when ``repo`` is another checkpoint."""

    repo: str
    flag: str | None
    served: str
    known: bool  # False: no checkpoint of the format is named; ``repo`` is the placeholder

    @property
    def renamed(self) -> bool:
        return self.repo != self.served


def weights_for(model: OpenModel, quant: Quant, engine: str,
                vendor: str = "nvidia") -> Weights:
    """The weights ``engine`` loads to serve ``model`` as ``quant`` on ``vendor``'s GPUs."""
    base = model.hf_ids[0] if model.hf_ids else model.id
    if quant == model.native_quant:
        return Weights(base, None, base, True)
    same: tuple[Quant, ...] = _SAME.get(quant, (quant,))
    for q in same:
        repo = model.checkpoints.get(q)
        if repo and (vendor == "nvidia" or not repo.startswith(_NVIDIA_ONLY)):
            return Weights(repo, None, base, True)
    flag = ONLINE.get(engine, {}).get(quant)
    if flag and model.native_quant == "bf16":
        return Weights(base, flag, base, True)
    what = f"a checkpoint of {base} in {_NAMES[quant]}"
    return Weights(f'"${{{CHECKPOINT_VAR}:?set {CHECKPOINT_VAR} to {what}}}"', None, base,
                   False)
