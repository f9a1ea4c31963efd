"""Key names (and key secrets) are unique at config load: one line naming both entries."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from breakeven.gateway.config import GatewayConfig


def _cfg(keys: list[dict]) -> dict:
    return {"backends": [{"name": "local", "url": "http://127.0.0.1:1/v1", "model": "m",
                          "hosting": "self", "gpu": {"gpu": "h100-sxm", "usd_per_gpu_hour": 2,
                                                     "capacity_tokens_per_s": 100}}],
            "routes": [{"alias": "chat", "backends": ["local"]}], "keys": keys}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_two_keys_of_one_name_are_refused_naming_both():
    keys = [{"name": "app", "sha256": _sha("a")}, {"name": "hr", "sha256": _sha("b"),
                                                   "data_class": "pii"},
            {"name": "app", "sha256": _sha("c")}]
    with pytest.raises(ValidationError) as err:
        GatewayConfig.model_validate(_cfg(keys))
    message = str(err.value)
    assert "keys[0] and keys[2] have the same name 'app'" in message


def test_two_keys_of_one_secret_are_refused():
    keys = [{"name": "app", "sha256": _sha("a")}, {"name": "hr", "sha256": _sha("a")}]
    with pytest.raises(ValidationError, match=r"keys\[0\] and keys\[1\] have the same secret"):
        GatewayConfig.model_validate(_cfg(keys))


def test_distinct_keys_load():
    keys = [{"name": "app", "sha256": _sha("a")}, {"name": "hr", "sha256": _sha("b")}]
    assert [k.name for k in GatewayConfig.model_validate(_cfg(keys)).keys] == ["app", "hr"]
