"""The workload spec: what a team needs served, under which rules, by whom.

A workload has traffic (volume, token lengths, peak factor, active hours), a latency SLO,
quality and compliance needs, the team that would operate GPUs, optional segments (shares
of the traffic with their own task, data class and mode), candidate restrictions and price
overrides. Validated with ``extra="forbid"`` so a typo is an error, not a silent default.
Pure: ``breakeven.loaders.load_workload`` reads the file.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationInfo,
    field_validator,
    model_validator,
)

from breakeven.catalog.schema import ModelKind, Pricing, Quant, Task, Tier

__all__ = [
    "SLO",
    "Candidates",
    "Compliance",
    "CustomHosted",
    "CustomOffer",
    "DataClass",
    "Decision",
    "HostedPrice",
    "Prices",
    "Segment",
    "Team",
    "Traffic",
    "Workload",
]


class _Spec(BaseModel):
    # inf and nan are valid YAML floats (.inf, .nan) and no valid figure here
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# more than any one workload sends: a figure past these is a typo or a unit slip (1e30)
MAX_TOKENS_PER_DAY = 1e12
MAX_REQUESTS_PER_DAY = 1e10


class Traffic(_Spec):
    """Volume on an active day, mean token lengths per request, and its shape."""

    requests_per_day: float | None = Field(default=None, gt=0)
    tokens_per_day: float | None = Field(default=None, gt=0, description="input + output")
    input_tokens: int = Field(default=1000, gt=0)
    output_tokens: int = Field(default=250, ge=0)
    max_input_tokens: int | None = Field(
        default=None, gt=0, description="longest prompt to accept (the launch context); "
                                        "default: p99 of a lognormal around the mean")
    max_output_tokens: int | None = Field(default=None, ge=0,
                                          description="longest answer, as max_input_tokens")
    cached_input_fraction: float = Field(default=0.0, ge=0, le=1)
    peak_to_mean: float = Field(default=2.0, ge=1)
    hours_per_day: float = Field(default=24, gt=0, le=24)
    days_per_week: float = Field(default=7, gt=0, le=7)

    @field_validator("tokens_per_day", "requests_per_day")
    @classmethod
    def _plausible(cls, value: float | None, info: ValidationInfo) -> float | None:
        cap = MAX_TOKENS_PER_DAY if info.field_name == "tokens_per_day" else MAX_REQUESTS_PER_DAY
        if value is not None and value > cap:
            raise ValueError(f"{value:g} a day is past any one workload (at most {cap:g}); "
                             "check the units")
        return value

    @model_validator(mode="after")
    def _one_volume(self) -> Traffic:
        if (self.requests_per_day is None) == (self.tokens_per_day is None):
            raise ValueError("give exactly one of requests_per_day or tokens_per_day")
        return self

    @property
    def daily_requests(self) -> float:
        if self.requests_per_day is not None:
            return self.requests_per_day
        assert self.tokens_per_day is not None
        return self.tokens_per_day / (self.input_tokens + self.output_tokens)


class SLO(_Spec):
    ttft_ms: float | None = Field(default=None, gt=0)
    tpot_ms: float | None = Field(default=None, gt=0)


class Compliance(_Spec):
    residency: tuple[str, ...] = ()
    no_train: bool = True
    zero_retention: bool = False
    audit: bool = Field(
        default=False, description="pinned, verifiable weights: which model ran, unchanged"
    )
    custom_weights: bool = False


class Team(_Spec):
    ops_fte: float = Field(default=0.25, ge=0, le=20)
    engineer_monthly_usd: float = Field(default=16000, ge=0)
    can_operate_gpus: bool = True


class Candidates(_Spec):
    open_models: tuple[str, ...] | None = None
    gpus: tuple[str, ...] | None = None
    hosted: tuple[str, ...] | None = None
    engines: tuple[str, ...] = ("vllm",)
    quantizations: tuple[Quant, ...] = ("bf16", "fp8")
    pricing: tuple[Pricing, ...] = ("on_demand",)
    max_gpus: int = Field(default=64, ge=1)
    allow_non_production: bool = False


class Segment(_Spec):
    name: str = Field(min_length=1)
    share: float = Field(gt=0, le=1)
    task: Task | None = None
    quality: Tier | None = None
    data_class: str = "general"
    mode: Literal["interactive", "batch"] = "interactive"
    route: str | None = None
    input_tokens: int | None = Field(default=None, gt=0)
    output_tokens: int | None = Field(default=None, ge=0)
    slo: SLO | None = None
    allow_hosted: bool | None = None


class DataClass(_Spec):
    """A kind of data a segment carries; a sensitive one stays self-hosted unless the
    segment says ``allow_hosted: true`` (and then needs no-train, zero retention)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    sensitive: bool = False
    description: str = ""


DEFAULT_DATA_CLASSES = (
    DataClass(name="general", description="nothing personal or secret"),
    DataClass(name="pii", sensitive=True, description="personal data (GDPR, CCPA)"),
    DataClass(name="phi", sensitive=True, description="health data (HIPAA)"),
    DataClass(name="secret", sensitive=True, description="credentials, trade secrets"),
)


def _did_you_mean(value: str, names: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(value.lower(), [n.lower() for n in names], n=1)
    hint = f" (did you mean {names[[n.lower() for n in names].index(close[0])]!r}?)" \
        if close else ""
    return f"unknown data class {value!r}{hint}; declared: {', '.join(names)} (data_classes)"


class HostedPrice(_Spec):
    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    batch_input_per_mtok: float | None = Field(
        default=None, ge=0, description="Batch API rate, what mode: batch segments pay")
    batch_output_per_mtok: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _batch_pair(self) -> HostedPrice:
        if (self.batch_input_per_mtok is None) != (self.batch_output_per_mtok is None):
            raise ValueError("give batch_input_per_mtok and batch_output_per_mtok together")
        return self


class Prices(_Spec):
    gpus: dict[str, PositiveFloat] = Field(
        default_factory=dict, description="USD per GPU-hour, by GPU id: above zero")
    hosted: dict[str, HostedPrice] = Field(default_factory=dict)


class CustomHosted(_Spec):
    """A hosted model the catalog lacks (a negotiated rate, a private endpoint)."""

    id: str
    name: str | None = None
    provider: str = "custom"
    kind: ModelKind = "chat"
    open_model: str | None = None
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    batch_input_per_mtok: float | None = Field(default=None, ge=0)
    batch_output_per_mtok: float | None = Field(default=None, ge=0)
    context_window: int = Field(default=128000, gt=0)
    regions: tuple[str, ...] = ("global",)
    trains_on_data: bool = False
    zero_retention: bool = False
    quality: dict[Task, Tier] = Field(default_factory=dict)
    source: str | None = None


class CustomOffer(_Spec):
    gpu: str
    provider: str = "custom"
    region: str = "global"
    pricing: Pricing = "on_demand"
    usd_per_gpu_hour: float = Field(gt=0)
    min_gpus: int = Field(default=1, ge=1)
    source: str | None = None


class Decision(_Spec):
    min_savings: float = Field(
        default=0.2, ge=0, lt=1,
        description="self-hosting must save this fraction over hosted to be worth its risk",
    )
    target_peak_load: float = Field(
        default=0.85, gt=0, le=1, description="fraction of capacity used at peak"
    )
    max_price_age_days: int = Field(
        default=120, ge=0,
        description="warn about every compared price older than this many days (from today)",
    )
    gpu_schedule: Literal["always_on", "traffic_hours"] = Field(
        default="always_on",
        description="pay GPUs around the clock, or only in the traffic window (scale to zero)",
    )


class Workload(_Spec):
    name: str = "workload"
    description: str = ""
    as_of: date | None = Field(
        default=None, description="date of the figures this file declares (its overrides); "
                                  "ages are measured from today, not from this")
    month_days: float = Field(default=30, gt=0, le=31)
    task: Task = "chat"
    quality: Tier = "high"
    traffic: Traffic
    slo: SLO = SLO()
    compliance: Compliance = Compliance()
    team: Team = Team()
    candidates: Candidates = Candidates()
    decision: Decision = Decision()
    segments: tuple[Segment, ...] = ()
    stage: Literal["prototype", "production"] = Field(
        default="production",
        description="prototype: stays hosted unless compliance forbids it (models change "
                    "often; self-hosting locks you in)")
    data_classes: tuple[DataClass, ...] = Field(
        default=DEFAULT_DATA_CLASSES, min_length=1,
        description="the data classes segments may name, and which are sensitive")
    prices: Prices = Prices()
    hosted_models: tuple[CustomHosted, ...] = ()
    gpu_offers: tuple[CustomOffer, ...] = ()
    quality_overrides: dict[str, dict[Task, Tier]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_data_classes(self) -> Workload:
        """Every segment's data class is a declared one, matched case-insensitively and
        spelt as declared; a typo (``piii``) is an error, never silently general."""
        names = [c.name for c in self.data_classes]
        by_lower = {n.lower(): n for n in names}
        if len(by_lower) != len(names):
            raise ValueError("data_classes: names must be unique (case-insensitively)")
        fixed = []
        for i, seg in enumerate(self.segments):
            name = by_lower.get(seg.data_class.lower())
            if name is None:
                raise ValueError(f"segments[{i}].data_class: "
                                 + _did_you_mean(seg.data_class, names))
            fixed.append(seg if name == seg.data_class
                         else seg.model_copy(update={"data_class": name}))
        object.__setattr__(self, "segments", tuple(fixed))
        return self

    def sensitive(self, data_class: str) -> bool:
        return any(c.sensitive for c in self.data_classes
                   if c.name.lower() == data_class.lower())

    @field_validator("segments")
    @classmethod
    def _segments_add_up(cls, segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
        if segments:
            total = sum(s.share for s in segments)
            if abs(total - 1.0) > 1e-3:
                raise ValueError(f"segment shares must add up to 1 (they add up to {total:g})")
            names = [s.name for s in segments]
            if len(set(names)) != len(names):
                raise ValueError("segment names must be unique")
        return segments
