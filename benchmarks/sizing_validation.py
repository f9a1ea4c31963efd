"""Sizing predictions against published measurements (tests/data/measured_throughput.yaml).

    python benchmarks/sizing_validation.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

from breakeven.loaders import load_catalog
from breakeven.planner.sizing import size

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "measured_throughput.yaml"


def main() -> None:
    cat = load_catalog()
    print("| measurement | metric | measured | predicted | error | in 25% aim |")
    print("|---|---|---:|---:|---:|---|")
    for p in yaml.safe_load(DATA.read_text())["points"]:
        conc = None if p["concurrency"] == "max" else p["concurrency"]
        s = size(cat.model(p["model"]), cat.gpu(p["gpu"]), cat.engine(p["engine"]),
                 quant=p["quant"], gpus=p["gpus"], input_len=p["input_len"],
                 output_len=p["output_len"], concurrency=conc)
        pred = getattr(s.point, p["metric"])
        err = pred / p["measured"] - 1
        print(f"| {p['name']} | {p['metric']} | {p['measured']:,.2f} | {pred:,.2f} | "
              f"{err:+.1%} | {'yes' if p['in_scope'] else 'recorded only'} |")


if __name__ == "__main__":
    main()
