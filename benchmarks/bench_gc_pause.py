"""How long one full garbage collection takes in ``breakeven bench`` as its records pile up.

An open loop keeps a ``Record`` (and its list of inter-token gaps) for every request until
the run ends, so a full collection walks all of them; whatever was due meanwhile goes out
late, together. This builds the records an open loop at ``--rate`` requests/s holds after
each of ``--minutes`` (20-chunk streams: 19 gaps each) and times ``gc.collect()`` over
them (median of ``--runs``), then the same after ``gc.freeze()``, which is what the client
does once a second (``bench/client.py``, ``_settle``).

    python benchmarks/bench_gc_pause.py [--rate 300] [--minutes 5 10 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from breakeven.bench.metrics import Record


def collect_ms(runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--minutes", type=float, nargs="+", default=[5.0, 10.0, 30.0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    records: list[Record] = []
    for minutes in sorted(args.minutes):
        while len(records) < args.rate * 60 * minutes:
            record = Record(scheduled=0.0)
            record.gaps.extend([0.02] * 19)
            records.append(record)
        print(f"after {minutes:g} min at {args.rate:g} req/s ({len(records):,} records): "
              f"full collection {collect_ms(args.runs):.1f} ms", flush=True)
    gc.freeze()
    print(f"the same {len(records):,} records frozen: {collect_ms(args.runs):.3f} ms")
    gc.unfreeze()


if __name__ == "__main__":
    main()
