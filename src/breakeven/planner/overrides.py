"""A workload's view of the catalog: its references checked, its prices and rows applied.

Pure. Every overridden or added row carries ``source = "workload file NAME"`` and the
workload's ``as_of``, so a plan shows which figures came from the user and which from the
catalog.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from breakeven.catalog import Catalog
from breakeven.catalog.engine import engine_ref
from breakeven.catalog.schema import GPUOffer, HostedModel, QualityRow
from breakeven.errors import WorkloadError
from breakeven.planner.workload import Workload

__all__ = ["apply_overrides", "check_references", "known_regions"]


def known_regions(catalog: Catalog, workload: Workload | None = None) -> set[str]:
    regions = {o.region for o in catalog.offers}
    regions.update(r for h in catalog.hosted for r in h.regions)
    if workload is not None:
        regions.update(o.region for o in workload.gpu_offers)
        regions.update(r for h in workload.hosted_models for r in h.regions)
    return regions


def check_references(workload: Workload, catalog: Catalog, where: str) -> None:
    """Every id the workload names must exist; every residency region must be served."""
    _check_candidates(workload, catalog, where)
    _check_prices_and_rows(workload, catalog, where)
    _check_residency(workload, catalog, where)


def _check(ok: bool, where: str, field: str, ref: str, what: str, valid: list[str]) -> None:
    if not ok:
        raise WorkloadError(f"unknown {what} {ref!r}; valid: {', '.join(valid)}",
                            where=where, field=field)


def _hosted_ids(workload: Workload, catalog: Catalog) -> tuple[set[str], list[str]]:
    """The workload's own hosted model ids, and every hosted id a reference may name."""
    custom = {h.id for h in workload.hosted_models}
    return custom, [h.id for h in catalog.hosted] + sorted(custom)


def _check_candidates(workload: Workload, catalog: Catalog, where: str) -> None:
    custom, hosted_ids = _hosted_ids(workload, catalog)
    cands = workload.candidates
    for i, ref in enumerate(cands.open_models or ()):
        _check(catalog.has_model(ref), where, f"candidates.open_models[{i}]", ref,
               "open model", [m.id for m in catalog.models])
    for i, ref in enumerate(cands.gpus or ()):
        _check(catalog.has_gpu(ref), where, f"candidates.gpus[{i}]", ref, "GPU",
               [g.id for g in catalog.gpus])
    for i, ref in enumerate(cands.hosted or ()):
        _check(catalog.has_hosted(ref) or ref in custom, where, f"candidates.hosted[{i}]", ref,
               "hosted model", hosted_ids)
    for i, ref in enumerate(cands.engines):
        field = f"candidates.engines[{i}]"
        name, _, version = ref.partition("@")
        _check(catalog.has_engine(name), where, field, name, "engine",
               [e.id for e in catalog.engines])
        try:
            engine_ref(ref)
        except ValueError:
            raise WorkloadError(f"{version[:64]!r} is not a release number (an engine and "
                                "its release: vllm@0.28)", where=where, field=field) from None


def _check_prices_and_rows(workload: Workload, catalog: Catalog, where: str) -> None:
    """Price overrides, extra offers, custom hosted rows and quality overrides."""
    gpu_ids = [g.id for g in catalog.gpus]
    custom, hosted_ids = _hosted_ids(workload, catalog)
    for ref in workload.prices.gpus:
        _check(catalog.has_gpu(ref), where, f"prices.gpus.{ref}", ref, "GPU", gpu_ids)
    for ref in workload.prices.hosted:
        _check(catalog.has_hosted(ref) or ref in custom, where, f"prices.hosted.{ref}", ref,
               "hosted model", hosted_ids)
    for i, offer in enumerate(workload.gpu_offers):
        _check(catalog.has_gpu(offer.gpu), where, f"gpu_offers[{i}].gpu", offer.gpu, "GPU",
               gpu_ids)
    for i, row in enumerate(workload.hosted_models):
        if catalog.has_hosted(row.id):
            raise WorkloadError(f"{row.id!r} is already in the catalog; use prices.hosted to "
                                "change its price", where=where, field=f"hosted_models[{i}].id")
        if row.open_model is not None:
            _check(catalog.has_model(row.open_model), where, f"hosted_models[{i}].open_model",
                   row.open_model, "open model", [m.id for m in catalog.models])
    for ref in workload.quality_overrides:
        _check(catalog.has_model(ref) or catalog.has_hosted(ref) or ref in custom, where,
               f"quality_overrides.{ref}", ref, "model",
               [m.id for m in catalog.models] + hosted_ids)


def _check_residency(workload: Workload, catalog: Catalog, where: str) -> None:
    regions = known_regions(catalog, workload)
    for i, region in enumerate(workload.compliance.residency):
        if region not in regions:
            raise WorkloadError(
                f"no GPU offer or hosted model serves region {region!r}; regions in the "
                f"catalog: {', '.join(sorted(regions))} (add an offer under gpu_offers)",
                where=where, field=f"compliance.residency[{i}]")


def apply_overrides(workload: Workload, catalog: Catalog, *, source: str,
                    as_of: date) -> Catalog:
    """The catalog with the workload's prices, extra offers, models and tiers applied."""
    gpu_prices = {k.lower(): v for k, v in workload.prices.gpus.items()}
    offers = [
        o.model_copy(update={"usd_per_gpu_hour": gpu_prices[o.gpu], "source": source,
                             "as_of": as_of}) if o.gpu in gpu_prices else o
        for o in catalog.offers
    ]
    for gpu_id, price in gpu_prices.items():
        if not catalog.offers_for(catalog.gpu(gpu_id).id):
            offers.append(GPUOffer(gpu=catalog.gpu(gpu_id).id, provider="custom", region="global",
                                   pricing="on_demand", usd_per_gpu_hour=price, source=source,
                                   as_of=as_of))
    for extra in workload.gpu_offers:
        offers.append(GPUOffer(**{**extra.model_dump(exclude={"source"}),
                                  "gpu": catalog.gpu(extra.gpu).id},
                               source=extra.source or source, as_of=as_of))

    hosted = list(catalog.hosted)
    quality = {row.model: row for row in catalog.quality_rows}
    for row in workload.hosted_models:
        fields = row.model_dump(exclude={"quality", "source"})
        fields["name"] = row.name or row.id
        hosted.append(HostedModel(**fields, source=row.source or source, as_of=as_of))
        if row.quality:
            quality[row.id] = QualityRow(model=row.id, basis="declared in the workload file",
                                         source=source, as_of=as_of, **row.quality)
    changes = workload.prices.hosted
    hosted = [
        h.model_copy(update={**changes[h.id].model_dump(exclude_none=True), "source": source,
                             "as_of": as_of}) if h.id in changes else h
        for h in hosted
    ]
    for model_id, tiers in workload.quality_overrides.items():
        key = catalog.model(model_id).id if catalog.has_model(model_id) else model_id
        base = quality.get(key) or catalog.quality(key)
        merged: dict[str, Any] = dict(base.model_dump(include=set(_TASK_FIELDS)) if base else {})
        merged.update({str(k): v for k, v in tiers.items()})
        quality[key] = QualityRow(model=key, basis="the team's own evaluation (workload file)",
                                  source=source, as_of=as_of, **merged)
    return catalog.replace(offers=offers, hosted=hosted, quality=quality.values())


_TASK_FIELDS = ("extraction", "chat", "rag", "code", "reasoning", "long_context", "embeddings")
