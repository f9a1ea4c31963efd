"""The gateway's outcome for every upstream fault, as a table (runs
tests/integration/test_faults.py).

    python benchmarks/fault_matrix.py

Each fault is injected by a small OpenAI-format upstream on 127.0.0.1 (connection refused:
a port where nothing listens), on a route with a healthy fallback (a ``breakeven sim``) and
on one without; the faulty backend has a 0.5 s first-byte and 2 s total timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    table = Path(tempfile.mkdtemp()) / "faults.json"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/integration/test_faults.py"],
                   cwd=ROOT, check=True, env={**os.environ, "FAULT_TABLE": str(table)})
    rows = json.loads(table.read_text())
    print("| fault | request | route | caller got | status | served by | seconds | "
          "ledger status | attempts |")
    print("|---|---|---|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['fault']} | {r['mode']} | {r['route']} | {r['outcome']} | {r['status']} "
              f"| {r['served_by'] or '-'} | {r['seconds']:.2f} | {r['ledger_status']} | "
              f"{r['attempts']} |")


if __name__ == "__main__":
    main()
