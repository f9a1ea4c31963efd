"""Client keys and the gateway configs the tests build (YAML text, as an operator writes)."""

from __future__ import annotations

import hashlib

# One key per role the configs below give a name to.
KEYS = {"app": "k-app", "hr": "k-hr", "eu": "k-eu", "admin": "k-admin", "tiny": "k-tiny",
        "slow": "k-slow", "narrow": "k-narrow"}


def sha(key: str) -> str:
    """What a config's ``keys[].sha256`` holds for the client key ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()


GPU = "{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"


def one_backend(sim: str, store: str, limits: str = "") -> str:
    """One self-hosted sim behind route ``chat``, key ``app`` (the hardening tests')."""
    return f"""
store: {store}
limits: {{circuit_failures: 100{limits}}}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
routes: [{{alias: chat, backends: [llama]}}]
keys: [{{name: app, sha256: {sha(KEYS['app'])}}}]
"""


def rate_limited(sim: str, store: str, rate: float | None = None) -> str:
    """One sim on an A10G behind route ``open``, key ``app`` at ``rate`` requests/s."""
    rate_line = f", rate_per_s: {rate}" if rate else ""
    return f"""
store: {store}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self,
      gpu: {{gpu: a10g, usd_per_gpu_hour: 1, capacity_tokens_per_s: 1000}}}}
routes: [{{alias: open, backends: [llama]}}]
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}{rate_line}}}
"""
