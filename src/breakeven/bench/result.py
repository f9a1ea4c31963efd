"""Bench result files (schema ``breakeven.bench/v1``): writing them, reading them back and
comparing two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from breakeven.errors import InputError

__all__ = ["SCHEMA", "compare", "load_result", "write_result"]

SCHEMA = "breakeven.bench/v1"

_COMPARED = (  # (metric path, label, higher is better)
    (("request_throughput",), "req/s", True),
    (("output_throughput",), "output tok/s", True),
    (("goodput",), "goodput req/s", True),
    (("ttft_ms", "p50"), "TTFT p50 ms", False),
    (("ttft_ms", "p99"), "TTFT p99 ms", False),
    (("tpot_ms", "p50"), "TPOT p50 ms", False),
    (("tpot_ms", "p99"), "TPOT p99 ms", False),
    (("e2e_ms", "p50"), "E2E p50 ms", False),
)


def write_result(result: dict[str, Any], path: str | Path) -> None:
    """Write ``result`` (as ``run_bench`` returns it) where ``load_result`` reads it back."""
    Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def load_result(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"not a readable JSON file: {exc}", where=str(path)) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else None
        raise InputError(f"not a bench result (schema {found!r}, expected {SCHEMA!r}); "
                         "write one with 'breakeven bench --json FILE'", where=str(path))
    if not isinstance(data.get("levels"), list):
        raise InputError("field 'levels' must be a list", where=str(path))
    return data


def _get(level: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = level
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for every level label the two runs share (in A's order), metric by metric."""
    b_levels = {lv["level"]: lv for lv in b["levels"]}
    rows = []
    for level in a["levels"]:
        other = b_levels.get(level["level"])
        if other is None:
            continue
        for path, label, higher in _COMPARED:
            x, y = _get(level, path), _get(other, path)
            if x is None and y is None:
                continue
            change = (y - x) / x if x and y is not None else None
            rows.append({"level": level["level"], "metric": label, "a": x, "b": y,
                         "change": change, "higher_is_better": higher})
    return rows
