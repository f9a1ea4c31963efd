"""The gateway config the overhead benchmarks run against a zero-latency upstream: one
self-hosted backend ``zero``, one route, one key (``KEY``), room for 4,096 in flight."""

from __future__ import annotations

import hashlib
from pathlib import Path

KEY = "bench-key"


def zero_config(tmp: Path, name: str, upstream: str, extra: str = "") -> Path:
    """``tmp/name.yaml`` (its ledger ``tmp/name.db``) routing ``zero`` to ``upstream``;
    ``extra`` is appended as top-level YAML (a ``telemetry:`` section, say)."""
    path = tmp / f"{name}.yaml"
    path.write_text(f"""
store: sqlite:///{tmp}/{name}.db
limits: {{max_in_flight: 4096}}
backends:
  - {{name: zero, url: "{upstream}", model: zero, hosting: self, max_concurrency: 4096,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: 20000}}}}
routes: [{{alias: zero, backends: [zero]}}]
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
{extra}
""")
    return path
