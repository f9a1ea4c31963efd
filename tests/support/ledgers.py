"""Reading a ledger back, and traffic through a gateway for the report and dashboard tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from breakeven.store import open_store

from .configs import KEYS, sha
from .servers import InProcessGateway, InProcessSim

# What the report tests' gateway charges: one self-hosted GPU, one hosted price.
GPU_USD, CAPACITY = 2.0, 1000.0
PRICE_IN, PRICE_OUT = 3.0, 15.0


def ledger(url: str) -> list[dict]:
    """Every record in the store at ``url``, oldest first."""
    store = open_store(url)
    try:
        return list(store.records())
    finally:
        asyncio.run(store.close())


def report_gateway_yaml(self_url: str, hosted_url: str, store: str) -> str:
    """A self-hosted and a hosted backend, routes ``chat`` (self first) and ``hard``
    (hosted first), keys ``app`` and ``admin``."""
    return f"""
store: {store}
backends:
  - {{name: llama-1, url: "{self_url}", model: llama-3.1-8b, hosting: self, region: eu-west,
      gpu: {{gpu: h100-sxm, count: 1, usd_per_gpu_hour: {GPU_USD},
             capacity_tokens_per_s: {CAPACITY}}}}}
  - {{name: gpt, url: "{hosted_url}", model: llama-3.1-8b, hosting: hosted, region: us-east,
      price: {{input_per_mtok: {PRICE_IN}, output_per_mtok: {PRICE_OUT}}}}}
routes:
  - {{alias: chat, backends: [llama-1, gpt]}}
  - {{alias: hard, backends: [gpt, llama-1]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
dashboard: {{refresh_s: 1}}
"""


class Traffic:
    """Two sims (one priced as self-hosted GPUs, one as a hosted API) behind a gateway,
    all in this process; ``.config`` is the gateway's config file."""

    def __init__(self, tmp: Path, store: str) -> None:
        self.self_sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                     "--time-scale", "0.001", "--seed", "1")
        self.hosted_sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                       "--time-scale", "0.001", "--seed", "2")
        self.store = store
        self.gateway = InProcessGateway(report_gateway_yaml(
            self.self_sim.url, self.hosted_sim.url, store), tmp)
        self.config = self.gateway.path
        self.client = openai.OpenAI(base_url=self.gateway.url, api_key=KEYS["app"],
                                    max_retries=0)

    def send(self, n_chat: int, n_hard: int, n_pii: int) -> None:
        for i in range(n_chat):
            self.client.chat.completions.create(
                model="chat", max_tokens=5 + i % 7,
                messages=[{"role": "user", "content": "hello " * (3 + i % 11)}])
        for i in range(n_hard):
            self.client.chat.completions.create(
                model="hard", max_tokens=9 + i % 5,
                messages=[{"role": "user", "content": "think " * (5 + i % 13)}])
        for i in range(n_pii):  # found by the PII scan: kept on the self-hosted backend
            self.client.chat.completions.create(
                model="hard", max_tokens=4,
                messages=[{"role": "user", "content": f"mail jane.doe{i}@example.com"}])
        with pytest.raises(openai.NotFoundError):
            self.client.chat.completions.create(model="nope", max_tokens=2,
                                                messages=[{"role": "user", "content": "x"}])

    def stop(self) -> None:
        self.client.close()
        self.gateway.stop()
        self.self_sim.stop()
        self.hosted_sim.stop()
