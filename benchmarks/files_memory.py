"""Peak RSS of a gateway process while a 90 MB file is uploaded and downloaded through
``/v1/files`` (the official openai SDK as the client).

A ``breakeven gateway`` subprocess (SQLite store in a temporary directory) gets one upload
and then one download of a 90 MB file; its RSS and peak RSS (VmHWM, from /proc) are printed
after start, after the upload and after the download. Each figure is the median of
``--runs`` fresh gateways. Run it against another checkout with ``PYTHONPATH=.../src``.

    python benchmarks/files_memory.py [--mb 90] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import openai

KEY = "bench-key"


def _status(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


def _config(store: Path) -> str:
    return f"""
store: sqlite:///{store}
backends:
  - {{name: local, url: "http://127.0.0.1:9/v1", model: m, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 1000}}}}
routes:
  - {{alias: chat, backends: [local]}}
keys:
  - {{name: app, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
"""


def one(mb: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.yaml"
        path.write_text(_config(Path(tmp) / "ledger.db"))
        proc = subprocess.Popen(
            [sys.executable, "-c", "from breakeven.cli import main; main()", "gateway",
             "--config", str(path), "--port", "0", "--log-level", "error"],
            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            start = _status(proc.pid)
            data = os.urandom(1 << 20) * mb
            client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=600)
            try:
                f = client.files.create(file=("big.jsonl", data), purpose="batch")
                upload = _status(proc.pid)
                got = client.files.content(f.id).read()
                assert got == data
                download = _status(proc.pid)
            finally:
                client.close()
            return {"start_rss": start["VmRSS"], "upload_peak": upload["VmHWM"],
                    "download_peak": download["VmHWM"]}
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one(args.mb) for _ in range(args.runs)]
    for name in ("start_rss", "upload_peak", "download_peak"):
        print(f"{name}: {statistics.median(r[name] for r in runs):.0f} MiB "
              f"(runs: {', '.join(f'{r[name]:.0f}' for r in runs)})")


if __name__ == "__main__":
    main()
