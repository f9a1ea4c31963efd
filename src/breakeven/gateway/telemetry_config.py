"""The ``telemetry:`` section of a gateway config: where OpenTelemetry goes, if anywhere. Pure.

Unset ``otlp_endpoint`` (the default) means no telemetry at all: the SDK is never imported.
Set, the gateway exports a trace per request and the GenAI metrics over OTLP/HTTP
(protobuf) to ``{otlp_endpoint}/v1/traces`` and ``/v1/metrics``, as the OTLP exporter
specification builds signal URLs from a base endpoint. Header values that are secrets (a
vendor's API key) come from the environment (``headers_env``), never from the file, and
``describe()`` shows header names only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Telemetry"]


class Telemetry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    otlp_endpoint: str | None = Field(default=None, description="the collector's OTLP/HTTP "
                                      "base URL (http://host:4318); null: no telemetry")
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every "
                                    "export (not secrets: see headers_env)")
    headers_env: dict[str, str] = Field(default_factory=dict, description="header name -> "
                                        "the environment variable holding its value")
    service_name: str = Field(default="breakeven-gateway", min_length=1)
    export_interval_s: float = Field(default=5.0, gt=0, le=3600, description="how often "
                                     "spans and metrics are sent (batched, off the request "
                                     "path)")
    export_timeout_s: float = Field(default=5.0, gt=0, le=300, description="one export's "
                                    "deadline, retries included; shutdown waits twice this "
                                    "at most")
    sample_ratio: float = Field(default=1.0, ge=0, le=1, description="share of traces kept "
                                "(a caller's traceparent decides for its own trace)")
    max_queue: int = Field(default=2048, ge=1, description="spans waiting for export, at "
                           "most; beyond it new spans are dropped and counted")

    @field_validator("otlp_endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            _ = parts.port  # a port that is not a number raises here
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not the http(s) URL of an OTLP/HTTP collector (e.g. "
                             "http://127.0.0.1:4318)")
        if parts.query or parts.fragment:
            raise ValueError("the OTLP/HTTP base URL takes no query or fragment")
        return value.rstrip("/")

    @property
    def enabled(self) -> bool:
        return self.otlp_endpoint is not None

    def signal_url(self, signal: str) -> str:
        """Where one signal (``traces``, ``metrics``) is posted."""
        assert self.otlp_endpoint is not None
        return f"{self.otlp_endpoint}/v1/{signal}"

    def export_headers(self, env: Mapping[str, str]) -> dict[str, str]:
        return {**self.headers, **{h: env.get(v, "") for h, v in self.headers_env.items()}}

    def problems(self, env: Mapping[str, str]) -> list[str]:
        """What would keep the export from authenticating: a header variable not set."""
        if not self.enabled:
            return []
        return [f"telemetry.headers_env.{h}: environment variable {v} is not set"
                for h, v in self.headers_env.items() if not env.get(v)]

    def describe(self) -> dict[str, Any]:
        """What ``gateway check`` shows: no header values (they may be credentials)."""
        if not self.enabled:
            return {"enabled": False}
        return {"enabled": True, "traces": self.signal_url("traces"),
                "metrics": self.signal_url("metrics"), "service_name": self.service_name,
                "export_interval_s": self.export_interval_s, "sample_ratio": self.sample_ratio,
                "headers": sorted({*self.headers, *self.headers_env})}
