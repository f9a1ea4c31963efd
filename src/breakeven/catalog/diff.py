"""What changed between two catalogs: prices and lineups. Pure.

``diff`` compares hosted models (by id: added, removed, retired, each price that moved),
GPU offers (by GPU, provider, region and pricing), open models and GPUs (added, removed).
Each change is one ``Change``; ``breakeven catalog diff`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from breakeven.catalog._catalog import Catalog
from breakeven.catalog.schema import GPUOffer, HostedModel

__all__ = ["HOSTED_PRICES", "Change", "diff"]

HOSTED_PRICES = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                 "batch_input_per_mtok", "batch_output_per_mtok", "long_input_per_mtok",
                 "long_output_per_mtok", "context_window")


@dataclass(frozen=True)
class Change:
    table: str
    what: Literal["added", "removed", "changed", "retired"]
    row: str
    detail: str = ""

    def line(self) -> str:
        mark = {"added": "+", "removed": "-", "changed": "~", "retired": "x"}[self.what]
        return f"{mark} {self.table} {self.row}" + (f": {self.detail}" if self.detail else "")


def _fmt(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _hosted(a: dict[str, HostedModel], b: dict[str, HostedModel]) -> list[Change]:
    out = [Change("hosted", "added", k, f"{_fmt(b[k].input_per_mtok)}/"
                  f"{_fmt(b[k].output_per_mtok)} per Mtok ({b[k].provider})")
           for k in sorted(set(b) - set(a))]
    out += [Change("hosted", "removed", k) for k in sorted(set(a) - set(b))]
    for k in sorted(set(a) & set(b)):
        moved = [f"{f} {_fmt(getattr(a[k], f))} -> {_fmt(getattr(b[k], f))}"
                 for f in HOSTED_PRICES if getattr(a[k], f) != getattr(b[k], f)]
        if moved:
            out.append(Change("hosted", "changed", k, "; ".join(moved)))
        gone = b[k].retired
        if gone is not None and a[k].retired != gone:
            out.append(Change("hosted", "retired", k, f"on {gone.isoformat()}, "
                              f"successor {b[k].successor}"))
    return out


def _offer_key(o: GPUOffer) -> str:
    return f"{o.gpu} {o.provider} {o.region} {o.pricing}"


def _offers(a: Catalog, b: Catalog) -> list[Change]:
    old = {_offer_key(o): o for o in a.offers}
    new = {_offer_key(o): o for o in b.offers}
    out = [Change("offers", "added", k, f"${new[k].usd_per_gpu_hour:g}/GPU-hour")
           for k in sorted(set(new) - set(old))]
    out += [Change("offers", "removed", k) for k in sorted(set(old) - set(new))]
    out += [Change("offers", "changed", k, f"${old[k].usd_per_gpu_hour:g} -> "
                   f"${new[k].usd_per_gpu_hour:g}/GPU-hour")
            for k in sorted(set(old) & set(new))
            if old[k].usd_per_gpu_hour != new[k].usd_per_gpu_hour]
    return out


def _lineup(table: str, a: set[str], b: set[str]) -> list[Change]:
    return ([Change(table, "added", k) for k in sorted(b - a)]
            + [Change(table, "removed", k) for k in sorted(a - b)])


def diff(a: Catalog, b: Catalog) -> list[Change]:
    """Every change from catalog ``a`` to catalog ``b``."""
    return [
        *_hosted({h.id: h for h in a.hosted}, {h.id: h for h in b.hosted}),
        *_offers(a, b),
        *_lineup("models", {m.id for m in a.models}, {m.id for m in b.models}),
        *_lineup("gpus", {g.id for g in a.gpus}, {g.id for g in b.gpus}),
    ]
