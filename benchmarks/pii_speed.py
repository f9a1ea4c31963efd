"""The PII detector's speed: normal chat text against adversarial text.

Prints the median of several runs (ms) and the throughput (MB/s) of ``detect`` on:

- a 4 KB ordinary English prompt (about 1,000 tokens: the gateway's overhead target is
  that the boundary work costs <= 0.1 ms at p50 for such a request), median of many runs;
- 1 MB of normal chat text (support tickets, code, prose);
- 1 MB and 100 KB of adversarial text: digit runs, ``1 2 3 ...``, long runs of ``@``, ``.``
  and ``-``, many near-miss card numbers, base64 blobs, ``%`` runs, full-width digits.

    python benchmarks/pii_speed.py [--runs 7] [--small-runs 2001]

Targets: adversarial within a small constant factor of normal; 100 KB adversarial well
under 100 ms. Deterministic inputs (seed 7), no network.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import time
from collections.abc import Callable

from breakeven.gateway.pii import detect, warm_up

PROMPT = (
    "You are a helpful assistant for our engineering team. Summarise the following design "
    "discussion and list the open questions at the end, grouped by owner. The discussion "
    "started when the team noticed that the nightly build had become slower over the last "
    "few weeks, and nobody could say exactly when it started. Some people think the new "
    "test suite is to blame, others point at the dependency cache, which was moved to a "
    "different storage tier in the spring. We agreed to collect timings for every stage "
    "of the pipeline before changing anything, and to write down what each stage is for. "
)



def _fill(pieces: list[str], size: int, rng: random.Random) -> str:
    """``size`` characters of ``pieces`` drawn at random, end to end."""
    out: list[str] = []
    n = 0
    while n < size:
        piece = rng.choice(pieces)
        out.append(piece)
        n += len(piece)
    return "".join(out)[:size]

def normal_text(size: int, rng: random.Random) -> str:
    pieces = [
        PROMPT,
        "Customer says the export button does nothing on Safari; steps: open the report, "
        "choose CSV, click Export. Expected a download, got nothing. Priority medium. ",
        "def handler(event, context):\n    items = event.get('items', [])\n    return "
        "{'count': len(items), 'status': 'ok'}\n",
        "The meeting is moved to Thursday at 10:30 in room 4.12; please bring the Q3 "
        "numbers (revenue up 12.5% to $4.2M) and the v2.3.1 release notes. ",
        "2026-11-30T12:00:01.123Z INFO request done in 42 ms (status 200, 1,024 bytes)\n",
    ]
    return _fill(pieces, size, rng)


def adversarial_text(size: int, rng: random.Random) -> str:
    blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(3000))).decode()
    text_b64 = base64.b64encode(("the quick brown fox " * 60).encode()).decode()
    pieces = [
        " ".join(str(i % 10) for i in range(2000)) + " ",
        "".join(rng.choice("0123456789") for _ in range(4000)) + " ",
        "@" * 3000 + " ", "." * 3000 + " ", "-" * 3000 + " ", "a-" * 1500 + " ",
        " ".join(f"4111 1111 1111 {rng.randrange(10**4):04d}" for _ in range(150)) + " ",
        " ".join(f"{rng.randrange(10**15, 10**16)}" for _ in range(200)) + " ",
        blob + " ", text_b64 + " ", "%4" * 2000 + " ", "１２３４５" * 500 + " ",
        "a@b." * 800 + " ", "token" * 800 + " ", "Straße-" * 500 + " ",
        "born " * 500, "DE89 " * 600, "1.2.3.4." * 400 + " ", "::" * 1500 + " ",
    ]
    return _fill(pieces, size, rng)


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--small-runs", type=int, default=2001)
    args = parser.parse_args()
    warm_up()
    rng = random.Random(7)
    prompt = normal_text(4096, rng)
    detect(prompt)
    ms = median_ms(lambda: detect(prompt), args.small_runs)
    print(f"4 KB ordinary prompt: median {ms * 1e3:.1f} us over {args.small_runs} runs "
          f"({len(prompt)} chars, {len(detect(prompt))} findings)")
    cases = [("1 MB normal chat text", normal_text(1 << 20, rng)),
             ("1 MB adversarial text", adversarial_text(1 << 20, rng)),
             ("100 KB adversarial text", adversarial_text(100 << 10, rng))]
    for name, text in cases:
        ms = median_ms(lambda t=text: detect(t), args.runs)  # type: ignore[misc]
        mb = len(text.encode()) / 1e6
        print(f"{name}: median {ms:.1f} ms over {args.runs} runs, {mb / (ms / 1e3):.1f} MB/s, "
              f"{len(detect(text))} findings")


if __name__ == "__main__":
    main()
