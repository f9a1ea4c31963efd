"""The catalog: GPUs and their rental offers, open models, hosted models, engines, quality.

Pure: a ``Catalog`` is built from row objects (``breakeven.loaders.load_catalog`` reads the
packaged YAML files, or a user's copy) and answers look-ups. Ids are lower-case slugs;
Hugging Face repo ids are accepted as aliases of open models. Unknown ids raise
``CatalogError`` naming the closest valid ids.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TypeVar

from breakeven.catalog.engine import Engine
from breakeven.catalog.schema import (
    GPU,
    TIERS,
    GPUOffer,
    HostedModel,
    Interconnect,
    OpenModel,
    QualityRow,
    Task,
    Tier,
)
from breakeven.errors import CatalogError

__all__ = ["Catalog"]

_R = TypeVar("_R", GPU, OpenModel, HostedModel, Engine)


def _index(rows: Iterable[_R], what: str) -> dict[str, _R]:
    out: dict[str, _R] = {}
    for row in rows:
        key = row.id.lower()
        if key in out:
            raise CatalogError(f"duplicate {what} id {row.id!r}")
        out[key] = row
    return out


class Catalog:
    """Read-only view of every figure the planner uses, each row with its source and date."""

    def __init__(
        self,
        *,
        gpus: Iterable[GPU],
        offers: Iterable[GPUOffer],
        models: Iterable[OpenModel],
        hosted: Iterable[HostedModel],
        engines: Iterable[Engine],
        quality: Iterable[QualityRow],
        interconnects: Iterable[Interconnect] = (),
    ) -> None:
        self._gpus = _index(gpus, "GPU")
        self._models = _index(models, "open model")
        self._hosted = _index(hosted, "hosted model")
        self._engines = _index(engines, "engine")
        self.offers: tuple[GPUOffer, ...] = tuple(offers)
        self._quality = {row.model.lower(): row for row in quality}
        self.interconnects: tuple[Interconnect, ...] = tuple(interconnects)
        self._links = {gpu: row for row in self.interconnects for gpu in row.gpus}
        # a model is found by its Hugging Face ids and those of its quantized checkpoints
        # (a server started from one reports that id); one id names one model
        self._aliases: dict[str, str] = {}
        for model in self._models.values():
            for alias in (*model.hf_ids, *model.checkpoints.values()):
                owner = self._aliases.setdefault(alias.lower(), model.id)
                if owner != model.id:
                    raise CatalogError(f"open models {owner!r} and {model.id!r} both claim the "
                                       f"Hugging Face id {alias!r}")
        for offer in self.offers:
            self.gpu(offer.gpu)  # every offer must name a known GPU
        for engine in self._engines.values():
            for gpu in engine.by_memory_except:  # an unknown id would be passed over silently
                self.gpu(gpu)
        for row in self._hosted.values():
            if row.open_model is not None:
                self.model(row.open_model)

    # -- listings ---------------------------------------------------------------------
    @property
    def gpus(self) -> tuple[GPU, ...]:
        return tuple(self._gpus.values())

    @property
    def models(self) -> tuple[OpenModel, ...]:
        return tuple(self._models.values())

    @property
    def hosted(self) -> tuple[HostedModel, ...]:
        return tuple(self._hosted.values())

    @property
    def engines(self) -> tuple[Engine, ...]:
        return tuple(self._engines.values())

    @property
    def quality_rows(self) -> tuple[QualityRow, ...]:
        return tuple(self._quality.values())

    # -- look-ups ---------------------------------------------------------------------
    def gpu(self, ref: str) -> GPU:
        return self._find(self._gpus, ref, "GPU")

    def model(self, ref: str) -> OpenModel:
        key = self._aliases.get(ref.lower(), ref)
        return self._find(self._models, key, "open model")

    def hosted_model(self, ref: str) -> HostedModel:
        return self._find(self._hosted, ref, "hosted model")

    def retired(self, today: date) -> tuple[HostedModel, ...]:
        """Hosted rows whose provider has retired them by ``today``."""
        return tuple(h for h in self._hosted.values() if h.retired_by(today))

    def current(self, today: date) -> Catalog:
        """This catalog without the hosted models retired by ``today`` (nothing to compare)."""
        gone = {h.id for h in self.retired(today)}
        if not gone:
            return self
        return self.replace(hosted=[h for h in self.hosted if h.id not in gone])

    def engine(self, ref: str) -> Engine:
        return self._find(self._engines, ref, "engine")

    def interconnect_for(self, gpu: GPU) -> Interconnect | None:
        """The fabric a node of ``gpu`` all-reduces over (None: not catalogued)."""
        return self._links.get(gpu.id)

    def offers_for(self, gpu_id: str) -> tuple[GPUOffer, ...]:
        return tuple(o for o in self.offers if o.gpu == gpu_id)

    def quality(self, model_id: str) -> QualityRow | None:
        """Quality row of an open or hosted model; hosted open models inherit theirs."""
        row = self._quality.get(model_id.lower())
        if row is None and model_id.lower() in self._hosted:
            hosted = self._hosted[model_id.lower()]
            base = hosted.open_model or hosted.same_model_as
            if base is not None:
                row = self._quality.get(base.lower())
        return row

    def tier(self, model_id: str, task: Task) -> Tier | None:
        row = self.quality(model_id)
        return None if row is None else row.tier(task)

    def meets(self, model_id: str, task: Task, needed: Tier) -> bool:
        have = self.tier(model_id, task)
        return have is not None and TIERS.index(have) >= TIERS.index(needed)

    def has_gpu(self, ref: str) -> bool:
        return ref.lower() in self._gpus

    def has_model(self, ref: str) -> bool:
        return ref.lower() in self._models or ref.lower() in self._aliases

    def has_hosted(self, ref: str) -> bool:
        return ref.lower() in self._hosted

    def has_engine(self, ref: str) -> bool:
        return ref.lower() in self._engines

    # -- derived catalogs ---------------------------------------------------------------
    def replace(
        self,
        *,
        offers: Iterable[GPUOffer] | None = None,
        hosted: Iterable[HostedModel] | None = None,
        quality: Iterable[QualityRow] | None = None,
    ) -> Catalog:
        """A new catalog with some tables swapped (used for workload overrides)."""
        return Catalog(
            gpus=self.gpus,
            offers=self.offers if offers is None else offers,
            models=self.models,
            hosted=self.hosted if hosted is None else hosted,
            engines=self.engines,
            quality=self.quality_rows if quality is None else quality,
            interconnects=self.interconnects,
        )

    @staticmethod
    def _find(table: Mapping[str, _R], ref: str, what: str) -> _R:
        row = table.get(ref.lower())
        if row is not None:
            return row
        close = difflib.get_close_matches(ref.lower(), list(table), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(table)}"
        raise CatalogError(f"unknown {what} {ref!r}; {hint}")
