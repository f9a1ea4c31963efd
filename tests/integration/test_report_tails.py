"""``report --emit-workload`` carries the observed tail: 142 requests through a gateway to a
sim, 4 of them far longer than the rest; the emitted workload's ``max_input_tokens`` is
the p99 of the ledger's per-request lengths (not the mean's lognormal guess), and the
launch line ``plan`` writes for it accepts the 4 long requests. The p99 read itself is
checked against the ledger on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time

import openai
import pytest
import yaml

from breakeven.report.run import tails
from breakeven.store import open_store
from tests.support.configs import KEYS, sha
from tests.support.ledgers import ledger
from tests.support.servers import InProcessGateway, InProcessSim


def _config(sim_url: str, store: str) -> str:
    # a pii key: the observed workload must stay self-hosted, so plan writes a launch line
    return f"""
store: {store}
backends:
  - {{name: llama-1, url: "{sim_url}", model: llama-3.1-8b, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}}}}
routes:
  - {{alias: chat, backends: [llama-1]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}, data_class: pii}}
"""


@pytest.fixture
def gateway(tmp_path):
    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale",
                       "0.0001", "--seed", "1")
    gw = InProcessGateway(_config(sim.url, f"sqlite:///{tmp_path}/ledger.db"), tmp_path)
    yield gw
    gw.stop()
    sim.stop()


def test_the_emitted_workload_covers_the_long_requests(gateway, run_cli, tmp_path):
    with openai.OpenAI(base_url=gateway.url, api_key=KEYS["app"], max_retries=0) as client:
        for i in range(142):
            words = 1500 if i % 35 == 7 else 12  # 4 long prompts among 138 short ones
            client.chat.completions.create(
                model="chat", max_tokens=8,
                messages=[{"role": "user", "content": "lorem " * words}])
    records = [r for r in ledger(f"sqlite:///{tmp_path}/ledger.db") if r["status"] == 200]
    assert len(records) == 142
    lengths = sorted(r["tokens_in"] + r["tokens_out"] for r in records)
    mean_in = sum(r["tokens_in"] for r in records) / len(records)
    long = [r for r in records if r["tokens_in"] > 2 * mean_in]
    assert len(long) == 4

    out = run_cli("report", "--config", str(gateway.path), "--since", "1h", "--json",
                  "--emit-workload", str(tmp_path / "observed.yaml"))
    assert out.returncode == 0, out.stderr
    text = (tmp_path / "observed.yaml").read_text()
    assert "the p99 of 142 served requests' lengths" in text
    traffic = yaml.safe_load(text)["traffic"]
    assert traffic["input_tokens"] == round(mean_in)
    assert traffic["max_input_tokens"] == max(r["tokens_in"] for r in long)

    planned = run_cli("plan", str(tmp_path / "observed.yaml"), "--json")
    assert planned.returncode == 0, planned.stderr
    launch = json.loads(planned.stdout)["chosen"]["deployment"]["launch"]
    model_len = int(re.search(r"--max-model-len (\d+)", launch["vllm"]).group(1))
    assert model_len >= lengths[-1]  # every long request fits the context
    assert model_len > 1024  # what the mean alone gave, refusing the 4


def _fill(url: str, lengths: list[int]) -> None:
    async def run() -> None:
        store = open_store(url)
        try:
            now = time.time()
            await asyncio.gather(*(store.record({
                "id": f"r{i}", "ts": now - 60 + i * 0.01, "key_name": "k", "alias": "a",
                "backend": "x", "hosting": "self", "data_class": "general", "task": "chat",
                "status": 500 if i % 50 == 3 else 200, "tokens_in": n, "tokens_out": n % 7,
                "usd": 0.0, "usd_other_side": None, "other_side": None, "batch": 0})
                for i, n in enumerate(lengths)))
        finally:
            await store.close()

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql",
                                                         marks=pytest.mark.postgres)])
def test_the_p99_is_the_nearest_rank_of_served_requests(kind, request, tmp_path):
    url = (f"sqlite:///{tmp_path}/l.db" if kind == "sqlite"
           else request.getfixturevalue("pg_url"))
    lengths = [(i * 7919) % 1000 + 1 for i in range(450)]
    _fill(url, lengths)
    served = sorted(n for i, n in enumerate(lengths) if i % 50 != 3)  # failures left out
    served_out = sorted(n % 7 for i, n in enumerate(lengths) if i % 50 != 3)
    rank = math.ceil(0.99 * len(served)) - 1
    store = open_store(url)
    try:
        assert tails(store, 0, time.time() + 60) == (served[rank], served_out[rank],
                                                     len(served))
        assert tails(store, 0, 1) is None  # nothing in that window
    finally:
        asyncio.run(store.close())
