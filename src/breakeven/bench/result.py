"""Bench result files (schema ``breakeven.bench/v1``): writing them, reading them back and
comparing two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from breakeven.errors import InputError

__all__ = ["SCHEMA", "compare", "differences", "load_result", "write_result"]

_SAME_LENGTH = 0.1  # shared levels whose mean lengths differ more measured other work

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


def _mean_tokens(doc: dict[str, Any], key: str) -> float | None:
    pairs = [(lv.get(key), lv.get("completed") or 0) for lv in doc["levels"]]
    total = sum(n for v, n in pairs if isinstance(v, int | float))
    if not total:
        return None
    return sum(v * n for v, n in pairs if isinstance(v, int | float)) / total


def differences(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(why the two runs measured different work, what else differs): mean input or output
    lengths more than 10% apart refuse the comparison; other settings, streaming and
    levels run by one only, are warnings."""
    refuse, warn = [], []
    for key, name in (("mean_input_tokens", "input"), ("mean_output_tokens", "output")):
        x, y = _mean_tokens(a, key), _mean_tokens(b, key)
        if x and y and abs(y - x) > _SAME_LENGTH * x:
            refuse.append(f"mean {name} lengths differ ({x:,.0f} vs {y:,.0f} tokens)")
    wa, wb = a.get("workload") or {}, b.get("workload") or {}
    for key in ("source", "input_distribution", "output_distribution", "prefix_tokens",
                "file"):
        if wa.get(key) != wb.get(key):
            warn.append(f"workload {key} differs ({wa.get(key)!r} vs {wb.get(key)!r})")
    if (a.get("target") or {}).get("stream") != (b.get("target") or {}).get("stream"):
        warn.append("one run streamed and the other did not")
    if (a.get("slo") or None) != (b.get("slo") or None):
        warn.append("the runs' goodput SLOs differ")
    la = [lv["level"] for lv in a["levels"]]
    lb = [lv["level"] for lv in b["levels"]]
    only = [x for x in la if x not in lb] + [x for x in lb if x not in la]
    if only:
        warn.append(f"levels run by one only (not compared): {', '.join(only)}")
    return refuse, warn
