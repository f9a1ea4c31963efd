"""breakeven: self-host an open-weights LLM or call a hosted API? Numbers, then a verdict.

The public API is ``__all__``; everything else is internal. Names load lazily so that the
command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BreakevenError",
    "Catalog",
    "CatalogError",
    "InputError",
    "Plan",
    "Sizing",
    "Workload",
    "WorkloadError",
    "load_catalog",
    "load_workload",
    "plan",
    "plan_dict",
    "size",
    "sizing_dict",
]

_WHERE = {
    "BreakevenError": "breakeven.errors",
    "CatalogError": "breakeven.errors",
    "InputError": "breakeven.errors",
    "WorkloadError": "breakeven.errors",
    "Catalog": "breakeven.catalog",
    "Workload": "breakeven.workload",
    "Plan": "breakeven.plan",
    "plan": "breakeven.plan",
    "Sizing": "breakeven.sizing",
    "size": "breakeven.sizing",
    "load_catalog": "breakeven.loaders",
    "load_workload": "breakeven.loaders",
    "plan_dict": "breakeven.render.data",
    "sizing_dict": "breakeven.render.data",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'breakeven' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
