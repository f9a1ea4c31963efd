"""How an ``ApiError`` is written in each API's own error shape. Pure.

OpenAI's (``{"error": {"message", "type", "param", "code"}}``, ``ApiError.body``) on every
endpoint but the Messages API's, where Anthropic's is expected:
``{"type": "error", "error": {"type", "message"}}`` with Anthropic's type names, chosen by
the status (400 invalid_request_error, 401 authentication_error, 403 permission_error, 404
not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error, 504
timeout_error; an overloaded gateway overloaded_error), the request's id as ``request_id``
and in a ``request-id`` header beside the gateway's own ``x-request-id`` (Anthropic's
errors page, docs.claude.com/en/api/errors). The status never changes: fallback and retries read it.
"""

from __future__ import annotations

from typing import Any

from breakeven.errors import ApiError

__all__ = ["ANTHROPIC_TYPES", "anthropic", "anthropic_style"]

ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                   402: "billing_error", 403: "permission_error", 404: "not_found_error",
                   413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
                   504: "timeout_error", 529: "overloaded_error"}


def anthropic_style(path: str) -> bool:
    """Whether the endpoint at ``path`` answers errors Anthropic's way."""
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def anthropic(exc: ApiError, request_id: str | None = None) -> dict[str, Any]:
    """The error as the Messages API writes one (with the request's id when it has one,
    as Anthropic's ``request_id``)."""
    if exc.code == "overloaded":
        kind = "overloaded_error"
    else:
        kind = ANTHROPIC_TYPES.get(exc.status) or (
            "invalid_request_error" if exc.status < 500 else "api_error")
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": exc.message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body
