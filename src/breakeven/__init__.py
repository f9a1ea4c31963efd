"""breakeven: self-host an open-weights LLM or call a hosted API? Numbers, then a verdict.

The public API is ``__all__``: functions, classes and the exception tree, never modules;
everything else is internal. Names load lazily (PEP 562) so that the command line starts
fast, and each is cached here once resolved, so ``breakeven.plan`` is always the function.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ApiError",
    "BreakevenError",
    "Catalog",
    "CatalogError",
    "InputError",
    "Plan",
    "Sizing",
    "UpstreamError",
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
    "ApiError": "breakeven.errors",
    "BreakevenError": "breakeven.errors",
    "CatalogError": "breakeven.errors",
    "InputError": "breakeven.errors",
    "UpstreamError": "breakeven.errors",
    "WorkloadError": "breakeven.errors",
    "Catalog": "breakeven.catalog",
    "Workload": "breakeven.planner.workload",
    "Plan": "breakeven.planner.types",
    "plan": "breakeven.planner.search",
    "Sizing": "breakeven.planner.sizing",
    "size": "breakeven.planner.sizing",
    "load_catalog": "breakeven.loaders",
    "load_workload": "breakeven.loaders",
    "plan_dict": "breakeven.render.data",
    "sizing_dict": "breakeven.render.data",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'breakeven' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
