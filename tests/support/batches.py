"""The Batch API tests' helpers: input lines, polling to the end, a gateway with two sims."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import openai

from .configs import KEYS, sha
from .servers import GatewayProcess, InProcessGateway, InProcessSim

GPU = "{gpu: h100-sxm, count: 1, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"


def gateway_yaml(self_url: str, hosted_url: str, store: str, batch: str = "",
                 spill: bool = False) -> str:
    return f"""
store: {store}
backends:
  - {{name: llama-1, url: "{self_url}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
  - {{name: api, url: "{hosted_url}", model: llama-3.1-8b, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - {{alias: chat, backends: [llama-1, api], batch_spill: {str(spill).lower()}}}
  - {{alias: open, backends: [llama-1]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: narrow, sha256: {sha(KEYS['narrow'])}, aliases: [open]}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
batch: {{lease_s: 2, scrape_s: 0.2{batch}}}
"""


def line(cid: str, model: str = "chat", content: str = "hello there", max_tokens: int = 8,
         url: str = "/v1/chat/completions") -> str:
    """One line of a batch input file."""
    return json.dumps({"custom_id": cid, "method": "POST", "url": url, "body": {
        "model": model, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": content}]}})


def wait_final(client: openai.OpenAI, batch_id: str, timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.2)


def jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines() if x]


def submit(client: openai.OpenAI, n: int, max_tokens: int = 30, window: str = "24h",
           pii_every: int = 0) -> str:
    """A batch of ``n`` lines ``k0``..; every ``pii_every``-th carries an email address."""
    lines = [line(f"k{i}", max_tokens=max_tokens, content=(
        f"mail me at user{i}@example.com" if pii_every and i % pii_every == 0 else f"q {i}"))
        for i in range(n)]
    f = client.files.create(file=("in.jsonl", "\n".join(lines).encode()), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                 completion_window=window).id


def check_once(client: openai.OpenAI, batch_id: str, n: int) -> object:
    """The batch completes with each of its ``n`` lines in the output exactly once."""
    done = wait_final(client, batch_id, timeout=120)
    assert done.status == "completed", done
    out = jsonl(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in out) == sorted(f"k{i}" for i in range(n))
    assert done.request_counts.completed == n
    return done


def kill_after(client: openai.OpenAI, batch_id: str, completed: int,
               gateway: GatewayProcess) -> None:
    """SIGKILL ``gateway`` once the batch has ``completed`` lines done."""
    while client.batches.retrieve(batch_id).request_counts.completed < completed:
        time.sleep(0.1)
    os.kill(gateway.proc.pid, signal.SIGKILL)
    gateway.proc.wait(10)


class Stack:
    """A self-hosted sim (``scale`` wall seconds per simulated second) and a hosted one
    behind ``twins`` gateways on one store: in this process, or as processes with
    ``processes=True`` (to kill one)."""

    def __init__(self, tmp: Path, store: str, scale: str = "0.01", batch: str = "",
                 spill: bool = False, twins: int = 1, processes: bool = False) -> None:
        self.self_sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                     "--time-scale", scale, "--seed", "1")
        self.hosted_sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                       "--time-scale", "0.01", "--seed", "2")
        self.store, self.tmp = store, tmp
        self.config = gateway_yaml(self.self_sim.url, self.hosted_sim.url, store, batch, spill)
        self.kind = GatewayProcess if processes else InProcessGateway
        self.gateways: list = [self.kind(self.config, tmp, name=f"gw{i}")
                               for i in range(twins)]
        self.clients: list[openai.OpenAI] = []

    def restart(self, i: int = 0) -> None:
        self.gateways[i].stop()
        self.gateways[i] = self.kind(self.config, self.tmp, name=f"gw{i}")

    def client(self, key: str = "app", i: int = 0) -> openai.OpenAI:
        c = openai.OpenAI(base_url=self.gateways[i].url, api_key=KEYS[key], max_retries=0)
        self.clients.append(c)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        for g in self.gateways:
            g.stop()
        self.self_sim.stop()
        self.hosted_sim.stop()
