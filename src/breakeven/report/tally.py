"""One pass over the usage rollup: the tallies every figure of the report is derived from.
Pure.

The rows are the ledger's hourly rollup (``store.usage``): one row per (hour, key, route,
backend, data class, task, batch, status, other side), with requests, tokens, what they
cost (``usd``) and what they would have cost on the other side (``usd_other``).

Invariants:

- traffic is every row of the window but identity probes (none for an empty window);
  each is read once, in order, so every sum is added up in the rows' order;
- a row's hosting is its backend's in the config, else the ledger's;
- the window's edges cut hours: a row outside the covered hours is counted in the nearest;
- **hosted** spend is what the ledger recorded; a **self-hosted** row's hosted price is
  its ``usd_other`` (``unpriced``: requests with no counterfactual price), which the
  gateway records at the Batch API's rates for batch lines where the config's price has
  them (``interactive_priced``: the hosted backends that had none);
- a row may **move** to the other side only where the gateway's own rules (route, data
  class, the key's regions) would have let it reach that backend; a self-hosted row that
  may not is ``bound`` (and ``held``: by route, why, for the report's notes), hosted
  spend that may not reach a pool is ``hosted_kept``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from breakeven.gateway.config import Backend, GatewayConfig
from breakeven.report.movable import Movable, Mover, Moving, frozen
from breakeven.report.pools import Pool, Served
from breakeven.report.window import H, Settings, Window, iso

__all__ = ["Batch", "Hour", "SelfSide", "Tally", "Volume", "input_notes", "tally"]


@dataclass(frozen=True)
class Hour:
    """One covered hour's traffic."""

    requests: int
    errors: int
    tokens_self: int
    tokens_hosted: int
    hosted_usd: float  # spent on the hosted side
    other_usd: float  # what the self-hosted side's traffic would have cost hosted


@dataclass(frozen=True)
class SelfSide:
    """The traffic served self-hosted, and its price on the hosted side."""

    requests: int
    tokens: int
    usd: float  # on the hosted API
    unpriced: int  # requests with no hosted price
    bound: int  # requests the rules keep self-hosted


@dataclass(frozen=True)
class Batch:
    """The traffic flagged ``batch`` in the ledger, on either side."""

    requests: int
    tokens: int
    hosted_equivalent_usd: float  # of the batch work done on the self-hosted side
    # hosted backends that priced it with no Batch API rates in the config (interactive)
    interactive_priced: tuple[str, ...] = ()

    def section(self) -> dict[str, Any]:
        return {"requests": self.requests, "tokens": self.tokens,
                "hosted_equivalent_usd": self.hosted_equivalent_usd}


@dataclass(frozen=True)
class Volume:
    """Requests, tokens and outcomes in all, and grouped (busiest group first)."""

    requests: int
    tokens_in: int
    tokens_out: int
    errors: int
    fallbacks: int
    escalations: int
    by_route: list[dict[str, Any]]
    by_backend: list[dict[str, Any]]
    by_data_class: list[dict[str, Any]]


@dataclass(frozen=True)
class Tally:
    """Everything the pass over the rows added up."""

    rows: int  # traffic rows in the window
    unknown: tuple[str, ...]  # backends in the ledger but not in the config, sorted
    volume: Volume
    hours: dict[int, Hour]  # every covered hour, ascending
    served: Served
    hosted_usd: float
    hosted_kept: float  # hosted spend that could not move to a self-hosted backend
    ledger_self_usd: float  # the ledger's amortised self-hosted cost
    self_side: SelfSide
    batch: Batch
    # route -> pool key -> the traffic that may move
    to_hosted: dict[str, dict[str, Movable]]
    to_self: dict[str, dict[str, Movable]]
    # route -> why its self-hosted traffic may not reach the hosted side -> requests
    held: dict[str, dict[str, int]]

    def volume_section(self, by_day: list[dict[str, Any]]) -> dict[str, Any]:
        v = self.volume
        return {
            "requests": v.requests, "tokens_in": v.tokens_in, "tokens_out": v.tokens_out,
            "errors": v.errors, "fallbacks": v.fallbacks, "escalations": v.escalations,
            "batch_requests": self.batch.requests,
            "by_route": v.by_route, "by_backend": v.by_backend,
            "by_data_class": v.by_data_class,
            "by_hour": [{"hour": iso(h * H), "requests": int(s.requests),
                         "errors": int(s.errors), "tokens_self": int(s.tokens_self),
                         "tokens_hosted": int(s.tokens_hosted)}
                        for h, s in sorted(self.hours.items())],
            "by_day": by_day,
        }


_ZERO: dict[str, Any] = {"requests": 0, "tokens_in": 0, "tokens_out": 0, "errors": 0,
                         "fallbacks": 0, "escalations": 0, "usd": 0.0}


def _fold(g: dict[str, Any], r: dict[str, Any]) -> None:
    """Add a row's volume to ``g`` (keys as ``_ZERO``)."""
    g["requests"] += r["requests"]
    g["tokens_in"] += r["tokens_in"]
    g["tokens_out"] += r["tokens_out"]
    g["errors"] += r["requests"] if r["status"] >= 400 else 0
    g["fallbacks"] += r["fallbacks"]
    g["escalations"] += r["escalated"]
    g["usd"] += r["usd"]


class _Groups:
    """Volume grouped by one column, busiest first (ties in order of appearance)."""

    def __init__(self, key: str, extra: Iterable[str] = ()) -> None:
        self.key, self.extra = key, tuple(extra)
        self.out: dict[Any, dict[str, Any]] = {}

    def add(self, r: dict[str, Any]) -> None:
        v = r[self.key]
        _fold(self.out.setdefault(v, {self.key: v, **_ZERO,
                                      **{e: r[e] for e in self.extra}}), r)

    def rows(self) -> list[dict[str, Any]]:
        return sorted(self.out.values(), key=lambda g: -g["requests"])


class _Pass:
    """The accumulators of the one pass, row by row."""

    def __init__(self, w: Window, cfg: GatewayConfig | None, pools: dict[str, Pool]) -> None:
        self.known: dict[str, Backend] = {b.name: b for b in cfg.backends} if cfg else {}
        self.pool_of = {name: p for p in pools.values() for name in p.backends}
        self.mover = Mover(cfg) if cfg else None
        self.lo, self.hi = min(w.covered, default=0), max(w.covered, default=0)
        self.slots: dict[int, dict[str, Any]] = {
            h: {"requests": 0, "tokens_self": 0, "tokens_hosted": 0, "errors": 0,
                "hosted_usd": 0.0, "other_usd": 0.0} for h in w.covered}
        self.totals = dict(_ZERO)
        self.groups = (_Groups("alias"), _Groups("backend", ("hosting",)),
                       _Groups("data_class"))
        self.unknown: set[str] = set()
        self.interactive_priced: set[str] = set()
        self.hourly: dict[str, dict[int, float]] = {key: {} for key in pools}
        self.hourly_batch: dict[str, dict[int, float]] = {key: {} for key in pools}
        self.hosted_usd = self.hosted_kept = 0.0
        self.ledger_self_usd: float = 0  # int 0 as sum() starts: no rows, JSON ``0``
        self.self_side: dict[str, Any] = {"usd": 0.0, "tokens": 0, "unpriced": 0, "bound": 0,
                                          "requests": 0}
        self.batch: dict[str, Any] = {"requests": 0, "tokens": 0,
                                      "hosted_equivalent_usd": 0.0}
        self.to_hosted: dict[str, dict[str, Moving]] = defaultdict(
            lambda: defaultdict(Moving))
        self.to_self: dict[str, dict[str, Moving]] = defaultdict(lambda: defaultdict(Moving))
        self.held: dict[str, dict[str, int]] = {}

    def add(self, r: dict[str, Any]) -> None:
        self._volume(r)
        h = min(max(r["hour"], self.lo), self.hi)
        tokens = r["tokens_in"] + r["tokens_out"]
        slot = self.slots[h]
        slot["requests"] += r["requests"]
        slot["errors"] += r["requests"] if r["status"] >= 400 else 0
        known = self.known
        hosting = known[r["backend"]].hosting if r["backend"] in known else r["hosting"]
        if r["batch"]:
            self.batch["requests"] += r["requests"]
            self.batch["tokens"] += tokens
        if hosting == "self":
            self._self(r, h, tokens, slot)
        elif hosting == "hosted":
            self._hosted(r, h, tokens, slot)

    def _volume(self, r: dict[str, Any]) -> None:
        _fold(self.totals, r)
        by_route, by_backend, by_data_class = self.groups
        by_route.add(r)
        if r["backend"]:
            by_backend.add(r)
            if r["backend"] not in self.known:
                self.unknown.add(r["backend"])
        by_data_class.add(r)
        if r["hosting"] == "self":
            self.ledger_self_usd += r["usd"]

    def _self(self, r: dict[str, Any], h: int, tokens: int, slot: dict[str, Any]) -> None:
        slot["tokens_self"] += tokens
        slot["other_usd"] += r["usd_other"]
        pool = self.pool_of.get(r["backend"])
        if pool is not None:
            hourly = self.hourly[pool.key]
            hourly[h] = hourly.get(h, 0.0) + tokens
            if r["batch"]:
                batch = self.hourly_batch[pool.key]
                batch[h] = batch.get(h, 0.0) + tokens
        side = self.self_side
        side["requests"] += r["requests"]
        side["tokens"] += tokens
        side["usd"] += r["usd_other"]
        if r["batch"]:
            self.batch["hosted_equivalent_usd"] += r["usd_other"]
            other = self.known.get(r["other_side"])
            if other is not None and other.price is not None and not other.price.has_batch:
                self.interactive_priced.add(other.name)
        if r["other_known"] < r["requests"]:
            side["unpriced"] += r["requests"] - r["other_known"]
        why = self.mover.why_not(r, r["other_side"] or "") if self.mover else "no config"
        if why is None:
            if pool is not None:
                self.to_hosted[r["alias"]][pool.key].add(h, tokens, r["usd_other"])
        else:
            side["bound"] += r["requests"]
            if self.mover is not None:
                held = self.held.setdefault(r["alias"], {})
                held[why] = held.get(why, 0) + r["requests"]

    def _hosted(self, r: dict[str, Any], h: int, tokens: int, slot: dict[str, Any]) -> None:
        self.hosted_usd += r["usd"]
        slot["tokens_hosted"] += tokens
        slot["hosted_usd"] += r["usd"]
        target = self.pool_of.get(r["other_side"])
        if self.mover and target is not None and self.mover.may(r, r["other_side"]):
            self.to_self[r["alias"]][target.key].add(h, tokens, r["usd"])
        else:
            self.hosted_kept += r["usd"]

    def result(self, rows: int) -> Tally:
        by_route, by_backend, by_data_class = self.groups
        t = self.totals
        return Tally(
            rows=rows, unknown=tuple(sorted(self.unknown)),
            volume=Volume(requests=t["requests"], tokens_in=t["tokens_in"],
                          tokens_out=t["tokens_out"], errors=t["errors"],
                          fallbacks=t["fallbacks"], escalations=t["escalations"],
                          by_route=by_route.rows(), by_backend=by_backend.rows(),
                          by_data_class=by_data_class.rows()),
            hours={h: Hour(**s) for h, s in self.slots.items()},
            served=Served(self.hourly, self.hourly_batch),
            hosted_usd=self.hosted_usd, hosted_kept=self.hosted_kept,
            ledger_self_usd=self.ledger_self_usd,
            self_side=SelfSide(**self.self_side),
            batch=Batch(**self.batch, interactive_priced=tuple(sorted(self.interactive_priced))),
            to_hosted=frozen(self.to_hosted), to_self=frozen(self.to_self),
            held=self.held)


def tally(rows: list[dict[str, Any]], w: Window, cfg: GatewayConfig | None,
          pools: dict[str, Pool]) -> Tally:
    """The tallies of the traffic in ``rows`` over the window ``w``."""
    traffic = [r for r in rows if r["task"] != "identity"
               and w.since <= r["last_ts"] and r["first_ts"] < w.until]
    if not w.covered:  # an empty window
        traffic = []
    acc = _Pass(w, cfg, pools)
    for r in traffic:
        acc.add(r)
    return acc.result(len(traffic))


def input_notes(rows: list[dict[str, Any]], t: Tally, cfg: GatewayConfig | None,
                settings: Settings) -> list[str]:
    """What the input lacks, and so what the report cannot say."""
    notes: list[str] = []
    if not t.rows:
        notes.append("no traffic in this window: nothing to measure yet"
                     if not rows else "only identity probes in this window")
    if cfg is None:
        notes.append("no gateway config given: self-hosted GPU cost, capacity and "
                     "utilisation cannot be computed (pass --config)")
    if settings.ops_usd_per_month is None:
        notes.append("no plan given: the ops time of running GPUs is not counted "
                     "(pass --plan WORKLOAD.yaml)")
    if t.batch.interactive_priced:
        notes.append("batch work is priced at the interactive rates of "
                     f"{', '.join(t.batch.interactive_priced)}: no batch_input_per_mtok / "
                     "batch_output_per_mtok in its price (add the provider's Batch API "
                     "rates; 'plan --emit-gateway' copies them from the catalog)")
    if cfg is not None and t.unknown:
        notes.append(f"backends in the ledger but not in the config: {', '.join(t.unknown)} "
                     "(their self-hosted GPUs are not costed)")
    return notes
