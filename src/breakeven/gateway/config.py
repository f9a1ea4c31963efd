"""The gateway's configuration: backends, routes, data-class rules, keys, store, limits.

Validated with ``extra="forbid"`` and cross-checked (every route names known backends, a
cascade names backends of its route, a key names known routes), so a typo is an error
before anything starts. API keys are never in the file: a backend names the environment
variable that holds its key, and client keys are stored as SHA-256 hashes. Pure.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from breakeven.gateway.price import Price
from breakeven.gateway.responses_config import Responses
from breakeven.gateway.telemetry_config import Telemetry

__all__ = [
    "KIND_ENDPOINTS",
    "UNMASKABLE",
    "Audit",
    "Backend",
    "Batch",
    "Cascade",
    "ClassRule",
    "Dashboard",
    "GatewayConfig",
    "GpuCost",
    "Identity",
    "Key",
    "Limits",
    "Price",
    "Route",
    "hash_key",
    "strictest",
]

Hosting = Literal["self", "hosted"]
# the endpoints each backend kind serves, natively or translated (responses: as chat)
_MESSAGES = frozenset({"messages", "messages/count_tokens"})  # Anthropic's Messages API
KIND_ENDPOINTS: dict[str, frozenset[str]] = {
    "openai": frozenset({"chat/completions", "completions", "embeddings", "responses"})
    | _MESSAGES,
    "anthropic": frozenset({"chat/completions", "responses"}) | _MESSAGES,
}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuCost(_Spec):
    """Self-hosted: what the GPUs cost whether used or not, and what they can serve."""

    gpu: str
    count: int = Field(default=1, ge=1)
    usd_per_gpu_hour: float = Field(ge=0)
    capacity_tokens_per_s: float = Field(gt=0, description="input + output at full load")

    @property
    def usd_per_token(self) -> float:
        return self.usd_per_gpu_hour * self.count / 3600 / self.capacity_tokens_per_s


class Timeouts(_Spec):
    connect_s: float = Field(default=3.0, gt=0)
    first_byte_s: float = Field(default=60.0, gt=0)
    total_s: float = Field(default=600.0, gt=0)


class Identity(_Spec):
    """What a self-hosted backend is pinned to, and what happens when it drifts."""

    fingerprint: str = Field(description="file written by 'breakeven identity fingerprint'")
    weights_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    tolerance: float = Field(default=0.9, gt=0, le=1)
    on_drift: Literal["block", "alert"] = "block"
    interval_s: float = Field(default=300.0, gt=0)


class Backend(_Spec):
    name: str = Field(min_length=1)
    kind: Literal["openai", "anthropic"] = "openai"
    url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1, description="the model name the upstream expects")
    hosting: Hosting
    region: str = "unknown"
    no_train: bool = True
    retention_days: int = Field(default=0, ge=0)
    price: Price | None = None
    gpu: GpuCost | None = None
    api_key_env: str | None = None
    key_header: Literal["bearer", "x-api-key"] | None = None  # None: the kind's own way
    max_concurrency: int = Field(default=256, ge=1)
    timeouts: Timeouts = Timeouts()
    supports_logprobs: bool = True
    serves_responses: bool = False  # has /v1/responses itself (kind openai): passed through
    identity: Identity | None = None
    batch_priority: int | None = Field(default=None, ge=1, description="the engine's "
        "request priority for batch lines (vLLM --scheduling-policy priority: lower runs "
        "first; interactive requests are sent with 0)")

    @model_validator(mode="after")
    def _costed(self) -> Backend:
        if self.hosting == "hosted" and self.price is None:
            raise ValueError("a hosted backend needs 'price' (input_per_mtok, output_per_mtok)")
        if self.hosting == "self" and self.gpu is None:
            raise ValueError("a self-hosted backend needs 'gpu' (gpu, count, "
                             "usd_per_gpu_hour, capacity_tokens_per_s)")
        if self.batch_priority is not None and (self.hosting, self.kind) != ("self", "openai"):
            raise ValueError("'batch_priority' is for self-hosted OpenAI-compatible engines "
                             "(vLLM, SGLang) that schedule by request priority")
        return self

    def serves(self, endpoint: str) -> bool:
        """Whether this backend's API has an equivalent of the gateway endpoint."""
        return endpoint in KIND_ENDPOINTS[self.kind]

    def usd(self, tokens_in: int, tokens_out: int, batch: bool = False) -> float:
        """What the tokens cost here (``batch``: at the Batch API's rates where given)."""
        if self.price is not None:
            rate_in, rate_out = self.price.per_mtok(batch)
            return (tokens_in * rate_in + tokens_out * rate_out) / 1e6
        assert self.gpu is not None
        return (tokens_in + tokens_out) * self.gpu.usd_per_token


class ClassRule(_Spec):
    """Where a data class may go. ``block`` refuses it outright with a 400;
    ``pseudonymise`` replaces what was found with placeholders before any hosted backend
    (list ``hosted`` in ``hosting`` to allow one) and restores them in the answer."""

    hosting: tuple[Hosting, ...] = ("self", "hosted")
    regions: tuple[str, ...] = ()
    action: Literal["route", "block", "pseudonymise"] = "route"


DEFAULT_CLASSES = {
    "general": ClassRule(),
    "pii": ClassRule(hosting=("self",)),
    "phi": ClassRule(hosting=("self",)),
    "secret": ClassRule(hosting=("self",)),
}
# A class the gateway adds itself (never configured): a sensitive value found split over
# several strings cannot be replaced by placeholders, so it is never pseudonymised for hosting
UNMASKABLE = "unmaskable"
_BUILTIN = {UNMASKABLE: ClassRule(hosting=("self",))}
_ACTION_RANK = {"route": 0, "pseudonymise": 1, "block": 2}


def _as_strict(a: ClassRule, b: ClassRule) -> bool:
    """Whether rule ``a`` allows nothing that ``b`` refuses (no regions: any region)."""
    regions = not b.regions or (bool(a.regions) and set(a.regions) <= set(b.regions))
    return (set(a.hosting) <= set(b.hosting) and regions
            and _ACTION_RANK[a.action] >= _ACTION_RANK[b.action])


def strictest(rules: list[ClassRule]) -> ClassRule:
    """The rule that holds every one of ``rules``: hostings and regions intersect, the
    strictest action wins. Regions that do not meet leave no hosting at all."""
    hosting = [h for h in ("self", "hosted") if all(h in r.hosting for r in rules)]
    regions: set[str] | None = None
    for r in rules:
        if r.regions:
            regions = set(r.regions) if regions is None else regions & set(r.regions)
    if regions is not None and not regions:
        hosting = []  # no region satisfies them all: nothing may serve it
    action = max((r.action for r in rules), key=_ACTION_RANK.__getitem__)
    return ClassRule(hosting=tuple(hosting), regions=tuple(sorted(regions or ())),
                     action=action)


class Cascade(_Spec):
    """Open model first; re-ask a stronger one when the first answer looks weak."""

    first: tuple[str, ...] = Field(min_length=1)
    then: tuple[str, ...] = Field(min_length=1)
    min_mean_logprob: float | None = Field(default=-0.6, le=0)
    on_refusal: bool = True
    on_empty: bool = True
    on_invalid_json: bool = True


class Route(_Spec):
    alias: str = Field(min_length=1)
    backends: tuple[str, ...] = Field(min_length=1)
    task: Literal["chat", "embeddings", "batch"] = "chat"
    regions: tuple[str, ...] = ()
    cascade: Cascade | None = None
    max_attempts: int = Field(default=3, ge=1, le=10)
    store_content: bool = False
    detect_pii: bool = True
    batch_spill: bool = Field(default=False, description="a batch whose completion window "
                              "the self-hosted side cannot meet may run on this route's "
                              "hosted backends, where the data class allows")
    # detected type -> data class; types not listed make the request "pii"
    pii_classes: dict[str, str] = Field(default_factory=lambda: {"SECRET": "secret"})
    unscannable_class: str = Field(default="pii", description="the class of a request "
                                   "whose text cannot be scanned (token ids)")


class Key(_Spec):
    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    aliases: tuple[str, ...] = ()  # empty: every route
    data_class: str = "general"
    regions: tuple[str, ...] = ()
    rate_per_s: float | None = Field(default=None, gt=0)
    monthly_budget_usd: float | None = Field(default=None, ge=0)
    admin: bool = False
    revoked: bool = False


class Limits(_Spec):
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_in_flight: int = Field(default=2048, ge=1)
    circuit_failures: int = Field(default=5, ge=1)
    circuit_cooldown_s: float = Field(default=30.0, gt=0)
    retry_after_cap_s: float = Field(default=5.0, ge=0)
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="the most an upstream answer (or "
        "stream) may hold; beyond it the attempt fails as a protocol error")
    memory_trim_s: float | None = Field(
        default=10.0, gt=0, description="how often freed heap memory is handed back to the "
        "OS after traffic (glibc malloc_trim); null: never")
    body_timeout_s: float = Field(default=30.0, gt=0, description="a request body not "
                                  "received in full by then is answered 408 and dropped")
    keepalive_s: float = Field(default=75.0, gt=0, description="an idle keep-alive "
                               "connection is closed after this many seconds")
    max_reading: int = Field(default=4096, ge=1, description="request bodies read at once, "
                             "at most (503 beyond): a pool apart from max_in_flight, so "
                             "slow bodies do not take the slots of requests being served")
    default_max_tokens: int = Field(default=4096, ge=1, description="the output tokens a "
                                    "budget reserves for a request that sets no max_tokens")
    auth_failures_per_s: float = Field(default=5.0, gt=0, description="failed "
                                       "authentications a client address may make per "
                                       "second (a token bucket) before it is refused 429")
    auth_failure_burst: int = Field(default=20, ge=1)
    ready_probe_s: float = Field(default=5.0, gt=0, description="how often /readyz's "
                                 "background probe asks each self-hosted backend")
    metrics_auth: Literal["none", "key", "admin"] = Field(default="none", description=
        "what /metrics requires: nothing, any valid key, or an admin key")
    report_max_days: int = Field(default=400, ge=1, description="the furthest back "
                                 "/admin/report's 'since' may reach")


class Audit(_Spec):
    """Signed checkpoints of the ledger's hash chain."""

    signing_key_env: str | None = Field(
        default=None, description="variable holding the Ed25519 private key")
    checkpoint_every: int = Field(default=1000, ge=1)
    require_signing: bool = False

    @model_validator(mode="after")
    def _key_if_required(self) -> Audit:
        if self.require_signing and not self.signing_key_env:
            raise ValueError("require_signing needs signing_key_env")
        return self


class Batch(_Spec):
    """The Batch API: files of requests run on self-hosted backends when there is room."""

    max_file_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    max_file_bytes_per_key: int = Field(default=1024 * 1024 * 1024, ge=1024, description=
                                        "what one key's stored files may add up to")
    file_ttl_s: float | None = Field(default=30 * 86400, gt=0, description="a file is "
                                     "deleted this long after it was stored (null: kept)")
    max_lines: int = Field(default=50_000, ge=1)
    lease_s: float = Field(default=60.0, gt=0, description="a claimed line returns to the "
                           "queue when its process has not finished it by then")
    max_line_attempts: int = Field(default=3, ge=1, le=10)
    max_per_backend: int = Field(default=64, ge=1, description="batch lines in flight on "
                                 "one self-hosted backend, at most")
    queue_limit: int = Field(default=0, ge=0, description="engine queue length (waiting "
                             "requests) above which batch admission backs off")
    kv_limit: float = Field(default=0.95, gt=0, le=1, description="engine KV-cache use "
                            "above which batch admission backs off")
    ttft_slo_ms: float | None = Field(default=None, gt=0, description="interactive TTFT p95 "
                                      "(measured by the gateway) to protect")
    scrape_s: float = Field(default=0.5, gt=0, description="how often engine /metrics and "
                            "the gateway's own signals are read")
    fill_to: float | None = Field(default=0.9, gt=0, le=1, description="share of a "
                                  "backend's capacity_tokens_per_s that interactive and "
                                  "batch traffic may use together; batch gets what the "
                                  "interactive load of the last 2 s leaves (null: no cap)")


class Dashboard(_Spec):
    """``/dashboard`` and ``/admin/report``: the report over the gateway's own ledger."""

    plan: str | None = Field(default=None, description="workload file: ops cost, decision "
                             "settings, and the planner rerun on the observed traffic")
    refresh_s: float = Field(default=10.0, ge=1)


class GatewayConfig(_Spec):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    store: str = "sqlite:///breakeven-ledger.db"
    backends: tuple[Backend, ...] = Field(min_length=1)
    routes: tuple[Route, ...] = Field(min_length=1)
    data_classes: dict[str, ClassRule] = Field(default_factory=dict)
    responses: Responses = Responses()
    keys: tuple[Key, ...] = ()
    limits: Limits = Limits()
    audit: Audit = Audit()
    dashboard: Dashboard = Dashboard()
    batch: Batch = Batch()
    telemetry: Telemetry = Telemetry()  # OpenTelemetry export (telemetry_config)

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique (got {names})")
        aliases = [r.alias for r in self.routes]
        if len(set(aliases)) != len(aliases):
            raise ValueError(f"route aliases must be unique (got {aliases})")
        for i, route in enumerate(self.routes):
            for name in route.backends:
                if name not in names:
                    raise ValueError(f"routes[{i}] ({route.alias}): unknown backend "
                                     f"'{name}' (backends: {', '.join(names)})")
            for kind, cls in (*route.pii_classes.items(),
                              ("unscannable_class", route.unscannable_class)):
                if cls not in self.classes:
                    field = kind if kind == "unscannable_class" else f"pii_classes.{kind}"
                    raise ValueError(f"routes[{i}] ({route.alias}): {field} names "
                                     f"unknown data class '{cls}'")
            if route.cascade:
                for name in (*route.cascade.first, *route.cascade.then):
                    if name not in route.backends:
                        raise ValueError(f"routes[{i}] ({route.alias}): cascade backend "
                                         f"'{name}' is not one of the route's backends")
        classes = self.classes
        _unique_keys(self.keys)
        for i, key in enumerate(self.keys):
            for alias in key.aliases:
                if alias not in aliases:
                    raise ValueError(f"keys[{i}] ({key.name}): unknown route alias '{alias}'")
            if key.data_class not in classes:
                raise ValueError(f"keys[{i}] ({key.name}): unknown data class "
                                 f"'{key.data_class}' (known: {', '.join(classes)})")
        return self

    @property
    def classes(self) -> dict[str, ClassRule]:
        return {**DEFAULT_CLASSES, **self.data_classes}

    def rule(self, data_class: str) -> ClassRule | None:
        """The rule of a class, or of a combination ``a+b`` (``combine``); None when a
        part is unknown."""
        classes = {**self.classes, **_BUILTIN}
        rules = [classes.get(part) for part in data_class.split("+")]
        if any(r is None for r in rules):
            return None
        return rules[0] if len(rules) == 1 else strictest([r for r in rules if r])

    def combine(self, *data_classes: str) -> str:
        """One label for the classes in force together: a class whose rule another one
        already implies is dropped (``general`` + ``pii`` is ``pii``); what is left, if
        more than one, is joined with ``+`` and governed by ``strictest``."""
        parts = sorted({p for c in data_classes for p in c.split("+")})
        known = {**self.classes, **_BUILTIN}

        def implied(p: str) -> bool:  # another part is at least as strict (ties: by name)
            return p in known and any(
                q != p and q in known and _as_strict(known[q], known[p])
                and (not _as_strict(known[p], known[q]) or q < p) for q in parts)

        return "+".join(p for p in parts if not implied(p))

    def backend(self, name: str) -> Backend:
        return next(b for b in self.backends if b.name == name)

    def route(self, alias: str) -> Route | None:
        return next((r for r in self.routes if r.alias == alias), None)


def _unique_keys(keys: tuple[Key, ...]) -> None:
    """Two keys of one name (or secret) would credit one caller's requests to the other."""
    for field in ("name", "sha256"):
        seen: dict[str, int] = {}
        for i, key in enumerate(keys):
            value = getattr(key, field)
            if value in seen:
                what = f"name '{value}'" if field == "name" else "secret (sha256)"
                raise ValueError(f"keys[{seen[value]}] and keys[{i}] have the same {what}; "
                                 "each key needs its own")
            seen[value] = i
