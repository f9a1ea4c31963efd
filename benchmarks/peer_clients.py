"""Other load clients run on the same load as ``breakeven bench``, their figures read back
under one set of names (times in ms, medians; rates per second). Used by
``bench_client.py``; each tool lives in its own virtualenv (``benchmarks/.peers/NAME``,
git-ignored: ``python3 -m venv benchmarks/.peers/guidellm && .../bin/pip install guidellm``,
likewise ``aiperf`` and ``inference-perf``) and runs offline: prompts come from a file or a
local word-level tokenizer made here (``local_tokenizer``), nothing is downloaded.

The shared names, with each tool's own definition aligned to bench's (docs/schemas.md):
``ttft_ms`` send to first content token; ``tpot_ms`` (e2e - ttft) / (output tokens - 1)
(GuideLLM's ``inter_token_latency_ms``, AIPerf's ``inter_token_latency``,
inference-perf's ``time_per_output_token``); ``itl_ms`` every gap between chunks, pooled
(AIPerf's ``inter_chunk_latency``, inference-perf's ``inter_token_latency``); ``e2e_ms``;
``rps`` completed requests/s; ``out_tps`` output tokens/s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
WORDS = ("the model serving engine token cache memory request latency batch traffic cost "
         "price budget region policy audit answer question data value").split()


def exe(tool: str, name: str | None = None) -> Path | None:
    path = PEERS / tool / "bin" / (name or tool)
    return path if path.exists() else None


def prompt(i: int, tokens: int) -> str:
    """``tokens`` words the sim counts as one token each, distinct per ``i``."""
    return " ".join([str(i)] + [WORDS[(i * 7 + k) % len(WORDS)] for k in range(tokens - 1)])


def local_tokenizer(directory: Path) -> Path:
    """A word-level Hugging Face tokenizer (``tokenizer.json``), built here with the
    ``tokenizers`` package of a peer's virtualenv: every word and punctuation mark is one
    token (an unknown word is ``unk``, one word: a peer that writes its prompts by decoding
    token ids must not get ``[UNK]``, which the sim counts as three), as the sim counts its
    words, so no tokenizer is downloaded and the peers' token counts match the sim's."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["unk", "bos", "eos", *WORDS, *".,?;:"]
    script = f"""
import json, sys
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
vocab = {{w: i for i, w in enumerate({json.dumps(vocab)})}}
tok = Tokenizer(models.WordLevel(vocab, unk_token="unk"))
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                             pre_tokenizers.Punctuation()])
tok.decoder = decoders.WordPiece(prefix="##")
tok.save(sys.argv[1] + "/tokenizer.json")
json.dump({{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "bos",
           "eos_token": "eos", "unk_token": "unk", "model_max_length": 131072}},
          open(sys.argv[1] + "/tokenizer_config.json", "w"))
json.dump({{"model_type": "llama"}}, open(sys.argv[1] + "/config.json", "w"))
"""
    python = next(p for p in (exe(t, "python") for t in ("aiperf", "inference-perf", "guidellm"))
                  if p is not None)
    subprocess.run([str(python), "-c", script, str(directory)], check=True,
                   env={**os.environ, **OFFLINE})
    return directory


def _run(cmd: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              env={**os.environ, **(OFFLINE if env is None else env)},
                              check=False)
    if done.returncode:
        sys.exit(f"{cmd[0]} failed ({done.returncode}); see {log}")
    return time.perf_counter() - start


def guidellm(url: str, model: str, tmp: Path, concurrency: int, count: int, inp: int,
             out: int) -> dict[str, Any]:
    path = exe("guidellm")
    assert path is not None
    data = tmp / "guidellm-prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": prompt(10_000 + i, inp),
                                        "output_tokens_count": out}) + "\n"
                            for i in range(count + 50)))
    report = tmp / "guidellm.json"
    wall = _run([str(path), "run", "--backend",
                 f"kind=openai_http,target={url.removesuffix('/v1')},model={model}",
                 "--profile", f"kind=concurrent,streams={concurrency}", "--constraint",
                 f"kind=max_requests,count={count}", "--data", f"kind=json_file,path={data}",
                 "--output", f"kind=json,path={report}", "--disable-console"], tmp,
                tmp / "guidellm.log")
    metrics = json.loads(report.read_text())["benchmarks"][0]["metrics"]

    def stat(name: str, key: str = "median") -> float | None:
        value = (metrics.get(name, {}).get("successful") or {}).get(key)
        return None if value is None else float(value)

    e2e = stat("request_latency")
    return {"ttft_ms": stat("time_to_first_token_ms"), "tpot_ms": stat("inter_token_latency_ms"),
            "itl_ms": None, "e2e_ms": None if e2e is None else e2e * 1e3,
            "rps": stat("requests_per_second", "mean"),
            "out_tps": stat("output_tokens_per_second", "mean"), "wall_s": wall}


def aiperf(url: str, model: str, tmp: Path, concurrency: int, count: int, inp: int,
           out: int, *, rate: float | None = None, stream: bool = True) -> dict[str, Any]:
    """AIPerf (0.13) with the local word-level tokenizer and the server's usage counts
    (``--use-server-token-count``), ``ignore_eos`` so every answer has ``out`` tokens; a
    closed loop of ``concurrency``, or constant arrivals at ``rate``."""
    path = exe("aiperf")
    assert path is not None
    artifacts = tmp / f"aiperf-{rate or concurrency}"
    load = ["--request-rate", f"{rate:g}", "--request-rate-mode", "constant"] if rate else [
        "--concurrency", str(concurrency)]
    wall = _run([str(path), "profile", "--model", model, "--url", url.removesuffix("/v1"),
                 "--endpoint-type", "chat", *(["--streaming"] if stream else []),
                 "--tokenizer", str(local_tokenizer(tmp / "tokenizer")),
                 "--use-server-token-count", *load, "--request-count", str(count),
                 "--isl", str(inp), "--isl-stddev", "0", "--osl", str(out), "--osl-stddev",
                 "0", "--extra-inputs", "ignore_eos:true", "--random-seed", "7",
                 "--artifact-dir", str(artifacts), "--ui", "none"], tmp, tmp / "aiperf.log",
                # AIPerf's offline mode reads only the Hugging Face cache, not a path; a
                # path is loaded as files without the hub (nothing is reachable here)
                env={"HF_HUB_DISABLE_TELEMETRY": "1"})
    metrics = json.loads((artifacts / "profile_export_aiperf.json").read_text())

    def stat(name: str, key: str = "p50") -> float | None:
        entry = metrics.get(name)
        value = entry.get(key) if isinstance(entry, dict) else None
        return None if value is None else float(value)

    return {"ttft_ms": stat("time_to_first_token"), "tpot_ms": stat("inter_token_latency"),
            "itl_ms": stat("inter_chunk_latency"), "e2e_ms": stat("request_latency"),
            "rps": stat("request_throughput", "avg"),
            "out_tps": stat("output_token_throughput", "avg"), "wall_s": wall}


# inference-perf is not here: every release on PyPI (0.1.1 to 0.7.0) requires Python >=
# 3.12, and this machine has 3.11 (Debian 12 packages no 3.12); ``pip install
# --ignore-requires-python`` fails building the numpy it then pulls in.
RUNNERS = {"guidellm": guidellm, "aiperf": aiperf}
