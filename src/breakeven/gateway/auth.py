"""Who is calling and whether they may, now: gateway keys (presented as a Bearer token,
``x-api-key`` or ``api-key``; stored as SHA-256 hashes, compared in constant time), the
admin flag, each key's request rate and monthly budget (a request's worst case is reserved
before dispatch: ``spend``), and the throttle on failed authentication (``throttle``).
Refusals are ``ApiError``s carrying the rule that refused them."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from breakeven.errors import ApiError
from breakeven.gateway.call import ANONYMOUS, Call
from breakeven.gateway.config import GatewayConfig, Key, hash_key
from breakeven.gateway.spend import Spend, worst_usd
from breakeven.gateway.throttle import Throttle

__all__ = ["Auth", "presented"]

_KEY_HEADERS = ("x-api-key", "api-key")  # Anthropic's, and Azure OpenAI's


def presented(headers: Mapping[str, str]) -> str:
    """The key a request presents: ``Authorization: Bearer KEY``, else ``x-api-key`` (as
    the Anthropic SDK sends it), else ``api-key`` (Azure style); "" when none is."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in _KEY_HEADERS:
        value = headers.get(name, "").strip()
        if value:
            return value
    return ""


class _Rates(Protocol):
    async def rate_hit(self, key: str, window_s: float = 1.0) -> int: ...


class Auth:
    def __init__(self, cfg: GatewayConfig, rates: _Rates, spend: Spend) -> None:
        self.cfg = cfg
        self.keys = {k.sha256: k for k in cfg.keys}
        self._rates = rates
        self._spend = spend
        self.failures = Throttle(cfg.limits.auth_failures_per_s, cfg.limits.auth_failure_burst)

    def by_name(self, name: str | None) -> Key | None:
        """The key of that name (a batch's submitter), ANONYMOUS when the gateway is open."""
        if not self.keys:
            return ANONYMOUS
        return next((k for k in self.keys.values() if k.name == name), None)

    def caller(self, headers: Mapping[str, str]) -> Key:
        if not self.keys:
            return ANONYMOUS
        token = presented(headers)
        if not token:
            raise ApiError(401, "missing API key: send 'Authorization: Bearer KEY' (or "
                                "'x-api-key: KEY', or 'api-key: KEY')",
                           type_="authentication_error", code="invalid_api_key",
                           rules=("auth",))
        digest = hash_key(token)
        key = next((k for sha, k in self.keys.items() if hmac.compare_digest(sha, digest)),
                   None)
        if key is None or key.revoked:
            raise ApiError(401, "invalid or revoked API key", type_="authentication_error",
                           code="invalid_api_key", rules=("auth",))
        return key

    def admin(self, headers: Mapping[str, str]) -> Key:
        """The caller's key if it is an admin's (any key when none is configured)."""
        key = self.caller(headers)
        if not key.admin and self.keys:
            raise ApiError(403, "admin key required", type_="permission_error")
        return key

    async def admit(self, key: Key, call: Call | None = None,
                    body: dict[str, Any] | None = None) -> None:
        """Refuse a key over its request rate or its monthly budget (429); with the call
        and its body, reserve the request's worst case against the budget."""
        if key.rate_per_s is not None and await self._rates.rate_hit(key.name) > key.rate_per_s:
            raise ApiError(429, f"rate limit of {key.rate_per_s:g} requests/s for key "
                                f"'{key.name}' exceeded", type_="rate_limit_error",
                           code="rate_limit_exceeded", retry_after=1, rules=("rate_limit",))
        if call is None or body is None:
            await self._within_budget(key)
        else:
            await self.reserve(key, call, body)

    async def reserve(self, key: Key, call: Call, body: dict[str, Any]) -> None:
        """Hold the call's worst case against the key's budget until its record is
        committed (``Recorder`` releases it); 429 while spent + held reaches the budget."""
        if key.monthly_budget_usd is None or call.route is None:
            return
        await self._within_budget(key)
        size = len(orjson.dumps(body))
        self._spend.reserve(key.name, call.id,
                            worst_usd(self.cfg, call.route, call.endpoint, body, size))

    async def _within_budget(self, key: Key) -> None:
        budget = key.monthly_budget_usd
        if budget is not None and (
                await self._spend.of(key.name) + self._spend.reserved(key.name) >= budget):
            raise ApiError(429, f"monthly budget of ${budget:,.2f} for key "
                                f"'{key.name}' is spent", type_="insufficient_quota",
                           code="insufficient_quota", retry_after=3600, rules=("budget",))
