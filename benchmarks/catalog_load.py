"""How long loading the packaged catalog takes (in-process, after imports), and how many
rows it holds. Catalog loading is out of the CLI start-up budget (`--help` never loads it).

    python benchmarks/catalog_load.py [--runs 15]

Prints the median and spread; record them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from breakeven.loaders import load_catalog


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    load_catalog()  # warm-up: module imports, page cache
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        cat = load_catalog()
        times.append(time.perf_counter() - start)
    rows = (len(cat.gpus), len(cat.offers), len(cat.models), len(cat.hosted),
            len(cat.engines), len(cat.quality_rows))
    print(f"machine: {platform.machine()}, Python {platform.python_version()}; "
          f"{args.runs} runs after one warm-up")
    names = ("gpus", "offers", "models", "hosted", "engines", "quality")
    print("rows: " + ", ".join(f"{name} {n}" for name, n in zip(names, rows, strict=True)))
    ms = [t * 1000 for t in times]
    print(f"load_catalog()  median {statistics.median(ms):7.1f} ms  min {min(ms):6.1f}  "
          f"max {max(ms):6.1f}")


if __name__ == "__main__":
    main()
