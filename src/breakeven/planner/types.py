"""The planner's value types: what a plan is made of. Frozen, pure, no logic beyond
derived properties; every planner module imports them from here, so nothing in the
planner imports in a circle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from breakeven.catalog.schema import GPUOffer, Quant, Task, Tier
from breakeven.planner.economics import Breakeven, Demand, Pool
from breakeven.planner.sizing import Layout, Sizing, SloTarget
from breakeven.planner.workload import Workload

__all__ = ["Option", "Placement", "Plan", "SegmentSpec", "SelfDeployment"]


@dataclass(frozen=True)
class SegmentSpec:
    name: str
    share: float
    task: Task
    quality: Tier
    data_class: str
    mode: str
    route: str | None
    kind: str
    demand: Demand
    slo: SloTarget
    sensitive: bool
    allow_hosted: bool

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.task, self.data_class, self.mode, self.kind)



@dataclass(frozen=True)
class Placement:
    segment: str
    side: str  # "hosted" | "self_hosted"
    model: str
    monthly_usd: float  # hosted: its bill; self-hosted: its share of the pool by load


@dataclass(frozen=True)
class SelfDeployment:
    model: str
    model_name: str
    gpu: str
    engine: str
    engine_production: bool
    quant: Quant
    tp: int
    pp: int
    offer: GPUOffer
    pool: Pool
    sizings: tuple[tuple[str, Sizing], ...]  # per segment served
    # makes the launch lines when first read (``launch``): a plan prices far more
    # deployments than it shows
    lines: Callable[[], dict[str, str]] = field(repr=False, compare=False)
    context_note: str = ""  # how the launch context was chosen (the tail it accepts)
    layout: Layout = "tp"  # how a MoE model uses the tp GPUs of a stage (tp, ep, dp-ep)

    @cached_property
    def launch(self) -> dict[str, str]:
        """One launch line per engine that can serve this deployment, the sized one first."""
        return self.lines()

    @property
    def pricing(self) -> str:
        return self.offer.pricing

    @property
    def utilisation(self) -> float:
        return self.pool.utilisation

    @property
    def measured(self) -> bool:
        """Every segment's throughput comes from a benchmark, not the roofline."""
        return all(not s.estimated for _, s in self.sizings)


@dataclass(frozen=True)
class Option:
    kind: str  # "hosted" | "self_host" | "hybrid"
    label: str
    monthly_usd: float
    hosted_usd: float
    self_usd: float
    placements: tuple[Placement, ...]
    deployment: SelfDeployment | None
    price_dates: tuple[tuple[str, date], ...] = ()


@dataclass(frozen=True)
class Plan:
    workload: Workload
    segments: tuple[SegmentSpec, ...]
    verdict: str
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    chosen: Option | None
    options: tuple[Option, ...]
    eliminated: tuple[tuple[str, str], ...]
    breakeven: Breakeven | None
    sensitivity: tuple[tuple[str, float | None], ...]
    best_hosted: Option | None
    best_self: Option | None
