"""The one place the simulator's errors become responses, in vLLM's shape.

vLLM (``vllm/entrypoints/openai/engine/protocol.py``: ``ErrorResponse``/``ErrorInfo``;
``create_error_response`` in its serving code) answers ``{"error": {"message", "type",
"param", "code"}}`` where ``type`` is the exception's class name (``BadRequestError``,
``NotFoundError``, ...) and ``code`` the HTTP status as an integer; a request without the
API key gets ``{"error": "Unauthorized"}`` (its auth middleware). The openai SDK raises the
matching ``openai.BadRequestError`` / ``NotFoundError`` / ``AuthenticationError``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from breakeven.errors import ApiError

__all__ = ["MAX_BODY", "error_middleware", "vllm_body"]

log = logging.getLogger(__name__)
MAX_BODY = 32 * 1024 * 1024
_TYPES = {400: "BadRequestError", 401: "UnauthorizedError", 404: "NotFoundError",
          405: "MethodNotAllowedError", 413: "RequestEntityTooLargeError",
          422: "UnprocessableEntityError", 500: "InternalServerError",
          501: "NotImplementedError"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def vllm_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": _TYPES.get(status, "BadRequestError"),
                      "param": param, "code": status}}


def _answer(err: ApiError) -> web.Response:
    return web.json_response(vllm_body(err.status, err.message, err.param), status=err.status)


def error_middleware(api_key: str | None) -> Any:
    """Auth on /v1 (as ``vllm --api-key``), then every error answered in vLLM's shape."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if api_key and request.path.startswith("/v1/"):
                given = request.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                    return web.json_response({"error": "Unauthorized"}, status=401)
            return await handler(request)
        except ApiError as exc:
            return _answer(exc)
        except web.HTTPRequestEntityTooLarge:
            return _answer(ApiError(413, f"request body larger than {MAX_BODY} bytes"))
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _answer(ApiError(exc.status, exc.reason or "error"))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # a bug here must still answer in the API's format
            log.exception("internal error")
            return _answer(ApiError(500, "internal error in breakeven sim: "
                                         f"{type(exc).__name__}"))

    return errors
