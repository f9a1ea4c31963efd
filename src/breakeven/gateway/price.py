"""What a hosted backend charges per token, interactive and through the provider's Batch
API. Pure (a part of the gateway config, ``config.Backend.price``).

Invariants: every rate is >= 0; the batch rates come both or neither (``plan
--emit-gateway`` copies them from the catalog's hosted row); ``per_mtok(batch=True)``
falls back to the interactive rates where no batch rate is given.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Price"]


class Price(BaseModel):
    """Hosted: what the provider charges; ``batch_*``: its Batch API's rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    batch_input_per_mtok: float | None = Field(default=None, ge=0)
    batch_output_per_mtok: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _batch_pair(self) -> Price:
        if (self.batch_input_per_mtok is None) != (self.batch_output_per_mtok is None):
            raise ValueError("give batch_input_per_mtok and batch_output_per_mtok together")
        return self

    @property
    def has_batch(self) -> bool:
        return self.batch_input_per_mtok is not None

    def per_mtok(self, batch: bool = False) -> tuple[float, float]:
        """(input, output) USD per million tokens: the batch rates for ``batch`` where
        given, else the interactive ones."""
        if batch and self.batch_input_per_mtok is not None:
            return self.batch_input_per_mtok, self.batch_output_per_mtok or 0.0
        return self.input_per_mtok, self.output_per_mtok
