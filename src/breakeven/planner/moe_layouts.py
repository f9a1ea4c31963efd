"""The layouts a replica runs a MoE model in, by name, and what each means. Pure, and free
of imports beyond the standard library, so the CLI can offer the names at import time.

``tp``: every matrix split over a stage's GPUs; ``ep``: the experts split whole over them,
attention tensor-parallel; ``dp-ep``: attention data-parallel too (each GPU its own batch
and KV cache), the experts split over the GPUs.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["LAYOUTS", "Layout", "describe"]

Layout = Literal["tp", "ep", "dp-ep"]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)  # simplest first

_MEANING = {
    "ep": "experts split over {g} GPUs (expert parallel), attention tensor-parallel",
    "dp-ep": "{g} attention data-parallel ranks (a batch and KV cache each), experts split "
             "over them",
}


def describe(layout: str, gpus: int) -> str:
    """``layout`` on a stage of ``gpus`` GPUs in words ("" for ``tp``, which needs none)."""
    return f"{layout}: {_MEANING[layout].format(g=gpus)}" if layout in _MEANING else ""
