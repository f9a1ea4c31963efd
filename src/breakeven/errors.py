"""The one exception hierarchy of breakeven.

    BreakevenError
     ├── InputError          bad user input: names the file, the field, the value and the fix
     │    ├── CatalogError   a catalog file or an id that is not in the catalog
     │    └── WorkloadError  a workload file that is malformed or inconsistent
     ├── ApiError            an HTTP request refused or failed: answered OpenAI-style
     └── UpstreamError       a backend the gateway asked did not give a usable answer

Every interface translates these exactly once: the CLI prints ``str(err)`` on one line and
exits with code 2; an HTTP server answers an ``ApiError`` as ``{"error": {...}}`` in one
place (``gateway.errors``, ``sim.server``); the gateway's attempt loop turns an
``UpstreamError`` into a fallback or an ``ApiError``. A library user catches
``BreakevenError``. (``bench.runner.BenchError``, an ``InputError``, is bench's own.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "BreakevenError", "CatalogError", "InputError", "UpstreamError",
           "WorkloadError"]


class BreakevenError(Exception):
    """Base of every error breakeven raises on purpose."""


class InputError(BreakevenError):
    """Input that cannot be used. ``where`` is a file (or ``--flag``), ``field`` a dotted path."""

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        self.message = message
        self.where = where
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        prefix = ": ".join(part for part in (self.where, self.field) if part)
        return f"{prefix}: {self.message}" if prefix else self.message


class CatalogError(InputError):
    """A catalog file is invalid, or an id names nothing in the catalog."""


class WorkloadError(InputError):
    """A workload file is malformed or inconsistent."""


class ApiError(BreakevenError):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 type_: str = "invalid_request_error", code: str | None = None,
                 retry_after: float | None = None, rules: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.rules = rules  # the gateway rules that refused it: counted where it is answered
        self.message = message
        self.param = param
        self.type = type_
        self.code = code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class UpstreamError(BreakevenError):
    """A backend failed: ``kind`` is ``connect``, ``timeout``, ``http`` (with ``status``),
    ``protocol`` and so on; ``retryable`` says whether the next backend is worth asking."""

    def __init__(self, kind: str, message: str, status: int | None = None,
                 retry_after: float | None = None, *, said: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        # the upstream's own error object (message, type, param, code), keys redacted:
        # a caller error it found is relayed with these, as it gave them
        self.said = said or {}

    @property
    def misconfigured(self) -> bool:
        """The gateway's own config is wrong for this backend: its key was refused (401,
        403) or its URL or model does not exist there (404). Never the caller's fault."""
        return self.kind == "http" and self.status in (401, 403, 404)

    @property
    def retryable(self) -> bool:
        """Worth trying the next backend: connection trouble, timeouts, 429, 5xx, and a
        backend the gateway misconfigured."""
        if self.kind != "http" or self.misconfigured:
            return True
        return self.status is not None and (self.status == 429 or self.status >= 500)

    def short(self) -> str:
        return f"http {self.status}" if self.kind == "http" else self.kind
