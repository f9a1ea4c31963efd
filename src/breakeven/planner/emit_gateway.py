"""The gateway config a plan implies (``breakeven plan --emit-gateway FILE``). Pure.

The config enforces what the plan assumed, so that ``breakeven gateway check`` prints the
boundary the plan was made for:

- one self-hosted backend per replica of the chosen deployment (vLLM's default port upward,
  the model under the name its launch line serves, the offer's region, GPU price and
  capacity);
- one hosted backend per hosted model the plan places traffic on, with the catalog row's
  region (the one the residency allows; without residency its global one), the regional
  endpoint where residency needs one (``endpoints``: each with its source and date) and
  the model as that endpoint names it,
  and its training and retention terms (``retention_days: 0`` only for a row with zero
  retention; otherwise the 30 days providers keep API data for abuse monitoring);
- one route per segment route (or name): its backends, ``regions`` from the workload's
  residency, ``task`` from the segment (embeddings, batch, chat);
- data-class rules for the workload's own sensitive classes (the defaults already keep
  ``pii``/``phi``/``secret`` self-hosted);
- one client key per data class, with a placeholder hash no key matches: the gateway is
  never open to anonymous callers, and nobody can call it until the keys are filled in;
- with ``compliance.audit``: a required audit signing key and an identity pin per
  self-hosted backend (``breakeven identity fingerprint`` writes the file).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from breakeven.catalog import Catalog
from breakeven.catalog.schema import HostedModel
from breakeven.planner.checkpoint import weights_for
from breakeven.planner.endpoints import GLOBAL, REGIONAL, Endpoint
from breakeven.planner.types import Plan, SegmentSpec
from breakeven.planner.workload import Workload

__all__ = ["AUDIT_KEY_ENV", "endpoint_notes", "gateway_config", "hosted_backend",
           "placeholder_sha256"]


def placeholder_sha256(i: int) -> str:
    """A hash no key is known to have (0...0, 0...1, one per key, as keys must differ):
    the emitted keys admit nobody until the user fills them in."""
    return f"{i:064x}"


AUDIT_KEY_ENV = "BREAKEVEN_AUDIT_SIGNING_KEY"
_SELF_PORT = 8000
_DEFAULT_RETENTION_DAYS = 30


def _region(regions: tuple[str, ...], residency: tuple[str, ...]) -> str:
    """The row's region the residency allows; without residency its global one (where it
    has one: a region the global endpoint does not keep data in is not claimed)."""
    if residency:
        return next((r for r in regions if r in residency), regions[0])
    return "global" if "global" in regions else regions[0]


def hosted_backend(h: HostedModel, residency: tuple[str, ...]) -> dict[str, Any]:
    """The gateway backend for a catalog hosted row under a workload's residency."""
    region = _region(h.regions, residency)
    fallback = Endpoint("openai", f"https://CHANGE-ME-{h.provider}/v1",
                        f"{h.provider.upper().replace('-', '_')}_API_KEY",
                        "no endpoint known for this provider", date(2026, 12, 1))
    ep = REGIONAL.get((h.provider, region)) or GLOBAL.get(h.provider, fallback)
    return {
        "name": h.id.replace("/", "-"), "kind": ep.kind, "url": ep.url,
        "model": ep.model(h.same_model_as or h.id.split("/")[-1]), "hosting": "hosted",
        "region": region, "no_train": not h.trains_on_data,
        "retention_days": 0 if h.zero_retention else _DEFAULT_RETENTION_DAYS,
        "price": _price(h), "api_key_env": ep.key_env,
        **({"key_header": ep.key_header} if ep.key_header else {}),
    }


def _price(h: HostedModel) -> dict[str, float]:
    """The row's prices, with its Batch API rates where it has them (batch work is priced
    at those by the gateway's ledger and the report)."""
    price = {"input_per_mtok": h.input_per_mtok, "output_per_mtok": h.output_per_mtok}
    if h.batch_input_per_mtok is not None and h.batch_output_per_mtok is not None:
        price |= {"batch_input_per_mtok": h.batch_input_per_mtok,
                  "batch_output_per_mtok": h.batch_output_per_mtok}
    return price


def _self_backends(plan: Plan, cat: Catalog, audit: bool) -> list[dict[str, Any]]:
    dep = plan.chosen.deployment if plan.chosen else None
    if dep is None:
        return []
    # the name the sized engine serves as its launch line starts it (checkpoint.Weights)
    served = weights_for(cat.model(dep.model), dep.quant, dep.engine,
                         cat.gpu(dep.gpu).vendor).served
    point = next((s.slo_point or s.point for _, s in dep.sizings
                  if (s.slo_point or s.point) is not None), None)
    capacity = point.total_tok_s if point is not None else 1000.0
    out = []
    for i in range(dep.pool.replicas):
        name = f"{dep.model}-{i + 1}"
        backend: dict[str, Any] = {
            "name": name, "kind": "openai", "url": f"http://127.0.0.1:{_SELF_PORT + i}/v1",
            "model": served, "hosting": "self", "region": dep.offer.region,
            "gpu": {"gpu": dep.gpu, "count": dep.tp * dep.pp,
                    "usd_per_gpu_hour": dep.offer.usd_per_gpu_hour,
                    "capacity_tokens_per_s": round(capacity, 1)},
        }
        if audit:
            backend["identity"] = {"fingerprint": f"fingerprints/{name}.json",
                                   "on_drift": "block"}
        out.append(backend)
    return out


def _task(seg: SegmentSpec) -> str:
    if seg.kind == "embedding":
        return "embeddings"
    return "batch" if seg.mode == "batch" else "chat"


def _routes(plan: Plan, self_names: list[str], hosted_names: dict[str, str],
            residency: tuple[str, ...]) -> list[dict[str, Any]]:
    assert plan.chosen is not None
    routes: dict[str, dict[str, Any]] = {}
    by_name = {s.name: s for s in plan.segments}
    for placement in plan.chosen.placements:
        seg = by_name[placement.segment]
        alias = seg.route or seg.name
        names = self_names if placement.side == "self_hosted" else [
            hosted_names[placement.model]]
        route = routes.setdefault(alias, {"alias": alias, "backends": [], "task": _task(seg)})
        if residency:
            route["regions"] = list(residency)
        route["backends"] += [n for n in names if n not in route["backends"]]
    return list(routes.values())


def _keys(plan: Plan) -> list[dict[str, Any]]:
    """One placeholder key per data class, limited to that class's routes."""
    by_class: dict[str, list[str]] = {}
    for seg in plan.segments:
        aliases = by_class.setdefault(seg.data_class, [])
        if (seg.route or seg.name) not in aliases:
            aliases.append(seg.route or seg.name)
    return [{"name": f"{cls}-client-CHANGE-ME", "sha256": placeholder_sha256(i),
             "aliases": aliases, "data_class": cls}
            for i, (cls, aliases) in enumerate(by_class.items())]


def _class_rules(w: Workload) -> dict[str, Any]:
    defaults = {"general", "pii", "phi", "secret"}
    return {c.name: {"hosting": ["self"] if c.sensitive else ["self", "hosted"]}
            for c in w.data_classes if c.name not in defaults}


def gateway_config(plan: Plan, cat: Catalog, store: str = "sqlite:///breakeven-ledger.db"
                   ) -> dict[str, Any]:
    chosen = plan.chosen
    if chosen is None:
        raise ValueError("the plan chose no option, so there is no gateway to configure")
    c = plan.workload.compliance
    backends = _self_backends(plan, cat, c.audit)
    self_names = [b["name"] for b in backends]
    hosted_names: dict[str, str] = {}
    for placement in chosen.placements:
        if placement.side == "hosted" and placement.model not in hosted_names:
            backend = hosted_backend(cat.hosted_model(placement.model), c.residency)
            hosted_names[placement.model] = backend["name"]
            backends.append(backend)
    config: dict[str, Any] = {"store": store, "backends": backends,
                              "routes": _routes(plan, self_names, hosted_names, c.residency)}
    rules = _class_rules(plan.workload)
    if rules:
        config["data_classes"] = rules
    config["keys"] = _keys(plan)
    if c.audit:
        config["audit"] = {"signing_key_env": AUDIT_KEY_ENV, "require_signing": True}
    return config


def endpoint_notes(config: dict[str, Any]) -> list[str]:
    """What the user must know about each emitted hosted endpoint, with its source."""
    known = {ep.url: ep for ep in [*REGIONAL.values(), *GLOBAL.values()]}
    out = []
    for b in config["backends"]:
        ep = known.get(b["url"])
        if b["hosting"] == "hosted" and ep is not None and ep.note:
            out.append(f"{b['name']}: {ep.note} (source: {ep.source}, as of {ep.as_of})")
    return out
