"""Division and rounding shared by the report's passes. Pure.

Invariants: ``ratio`` never divides by zero (no denominator, no figure: ``None``), and
``rounded`` passes ``None`` through, so a missing figure stays missing in the JSON.
"""

from __future__ import annotations

__all__ = ["ratio", "rounded"]


def ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def rounded(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)
