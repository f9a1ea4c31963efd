"""Who is calling and whether they may, now: gateway keys (stored as SHA-256 hashes,
compared in constant time), the admin flag, and each key's request rate and monthly
budget. Refusals are ``ApiError``s carrying the rule that refused them."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Protocol

from breakeven.errors import ApiError
from breakeven.gateway.call import ANONYMOUS
from breakeven.gateway.config import GatewayConfig, Key, hash_key
from breakeven.gateway.spend import Spend

__all__ = ["Auth"]


class _Rates(Protocol):
    async def rate_hit(self, key: str, window_s: float = 1.0) -> int: ...


class Auth:
    def __init__(self, cfg: GatewayConfig, rates: _Rates, spend: Spend) -> None:
        self.keys = {k.sha256: k for k in cfg.keys}
        self._rates = rates
        self._spend = spend

    def by_name(self, name: str | None) -> Key | None:
        """The key of that name (a batch's submitter), ANONYMOUS when the gateway is open."""
        if not self.keys:
            return ANONYMOUS
        return next((k for k in self.keys.values() if k.name == name), None)

    def caller(self, headers: Mapping[str, str]) -> Key:
        if not self.keys:
            return ANONYMOUS
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "missing API key: send 'Authorization: Bearer KEY'",
                           type_="authentication_error", code="invalid_api_key",
                           rules=("auth",))
        digest = hash_key(token.strip())
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

    async def admit(self, key: Key) -> None:
        """Refuse a key over its request rate or its monthly budget (429)."""
        if key.rate_per_s is not None and await self._rates.rate_hit(key.name) > key.rate_per_s:
            raise ApiError(429, f"rate limit of {key.rate_per_s:g} requests/s for key "
                                f"'{key.name}' exceeded", type_="rate_limit_error",
                           code="rate_limit_exceeded", retry_after=1, rules=("rate_limit",))
        if key.monthly_budget_usd is not None and (
                await self._spend.of(key.name) >= key.monthly_budget_usd):
            raise ApiError(429, f"monthly budget of ${key.monthly_budget_usd:,.2f} for key "
                                f"'{key.name}' is spent", type_="insufficient_quota",
                           code="insufficient_quota", retry_after=3600, rules=("budget",))
