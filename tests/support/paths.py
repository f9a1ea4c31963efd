"""Where things are."""

from __future__ import annotations

from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATA = ROOT / "tests" / "data"
TODAY = date(2026, 11, 24)  # the planner's "today" in tests: catalog rows stay fresh
