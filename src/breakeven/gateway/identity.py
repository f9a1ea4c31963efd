"""Pinned model identity: a weights digest and a behavioural fingerprint, and their comparison.

* ``weights_digest(DIR)``: SHA-256 over every weights, config and tokenizer file of a model
  directory (safetensors, GGUF, bin, json, model, txt), in sorted relative-path order, each
  line ``path size sha256``: the same files give the same digest on any machine.
* A fingerprint: fixed probe prompts sent greedily (temperature 0, seed 0, 8 tokens, top-3
  logprobs); the tokens answered. A backend whose answers agree with the pinned fingerprint
  on fewer than ``tolerance`` of the probe tokens has *drifted*: another model, another
  quantisation, or another revision is serving under the same name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["PROBES", "fingerprint", "probe_body", "similarity", "weights_digest"]

PROBES = (
    "Complete the sentence: The capital of France is",
    "List three prime numbers.",
    "Translate to German: good morning",
    "What is 17 times 23?",
    "Write one word that rhymes with cat.",
)
_WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".json", ".model", ".txt",
                    ".tiktoken")


def weights_digest(directory: str | Path) -> tuple[str, list[str]]:
    """(digest, files) of a model directory; raises FileNotFoundError / NotADirectoryError."""
    root = Path(directory)
    if not root.is_dir():
        raise NotADirectoryError(str(root))
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    outer = hashlib.sha256()
    listed = []
    for path in files:
        inner = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                inner.update(block)
        rel = path.relative_to(root).as_posix()
        outer.update(f"{rel} {path.stat().st_size} {inner.hexdigest()}\n".encode())
        listed.append(rel)
    return outer.hexdigest(), listed


def probe_body(model: str, prompt: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}],
            "temperature": 0, "seed": 0, "max_tokens": 8, "logprobs": True, "top_logprobs": 3}


def fingerprint(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """A fingerprint from the chat completion answers to ``PROBES`` (in order)."""
    probes = []
    for prompt, answer in zip(PROBES, answers, strict=True):
        choice = (answer.get("choices") or [{}])[0]
        content = ((choice.get("logprobs") or {}).get("content")) or []
        tokens = [t.get("token", "") for t in content] or [
            (choice.get("message") or {}).get("content") or ""]
        probes.append({"prompt": prompt, "tokens": tokens})
    digest = hashlib.sha256("\x00".join("\x01".join(p["tokens"]) for p in probes)
                            .encode()).hexdigest()
    return {"schema": "breakeven.fingerprint/v1", "probes": probes, "digest": digest}


def similarity(pinned: dict[str, Any], seen: dict[str, Any]) -> float:
    """Share of probe tokens that agree position by position (1.0: the same model)."""
    same = total = 0
    for a, b in zip(pinned.get("probes") or [], seen.get("probes") or [], strict=False):
        ta, tb = a.get("tokens") or [], b.get("tokens") or []
        total += max(len(ta), len(tb))
        same += sum(1 for x, y in zip(ta, tb, strict=False) if x == y)
    return same / total if total else 0.0
