"""The ``responses`` section of the gateway config: how long stored Responses are kept
and which data classes may never be kept. Pure; validated with ``extra="forbid"``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Responses"]


class Responses(BaseModel):
    """The Responses API's stored conversations (``store``, ``previous_response_id``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: float = Field(default=30, gt=0, description="a stored response is "
                                  "deleted this long after it was created (as OpenAI: 30)")
    never_store: tuple[str, ...] = Field(default=("secret",), description="data classes "
                                         "whose content the gateway never keeps at rest: "
                                         "such a response is answered, not stored, and "
                                         "previous_response_id on it is refused (400)")

    def storable(self, data_class: str) -> bool:
        """Whether a response of ``data_class`` (``a+b``: every part) may be kept."""
        return not any(part in self.never_store for part in data_class.split("+"))
