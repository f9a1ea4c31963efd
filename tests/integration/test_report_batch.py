"""Batch work priced at batch rates, over a real ledger: a batch run through the gateway's
Batch API on the self-hosted sim; the ledger prices each line's hosted counterfactual at
the hosted backend's Batch API rates, and the report's batch figure is those tokens at
those rates (at the interactive rates, with a note, when the config has none)."""

from __future__ import annotations

import json

import pytest

from tests.support.batches import check_once, submit
from tests.support.configs import KEYS, sha
from tests.support.ledgers import ledger
from tests.support.servers import InProcessGateway, two_sims

IN, OUT, BATCH_IN, BATCH_OUT = 3.0, 15.0, 1.5, 7.5


def _config(self_url: str, hosted_url: str, store: str, batch_rates: bool) -> str:
    rates = (f", batch_input_per_mtok: {BATCH_IN}, batch_output_per_mtok: {BATCH_OUT}"
             if batch_rates else "")
    return f"""
store: {store}
backends:
  - {{name: llama-1, url: "{self_url}", model: llama-3.1-8b, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}}}}
  - {{name: api, url: "{hosted_url}", model: llama-3.1-8b, hosting: hosted,
      price: {{input_per_mtok: {IN}, output_per_mtok: {OUT}{rates}}}}}
routes:
  - {{alias: chat, backends: [llama-1, api]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
batch: {{lease_s: 2, scrape_s: 0.2}}
"""


@pytest.fixture
def sims():
    yield from two_sims("0.01")


@pytest.mark.parametrize("batch_rates", [True, False], ids=["batch-rates", "none"])
def test_batch_work_is_priced_at_batch_rates(sims, batch_rates, run_cli, tmp_path):
    import openai

    store = f"sqlite:///{tmp_path}/ledger.db"
    gw = InProcessGateway(_config(sims[0].url, sims[1].url, store, batch_rates), tmp_path)
    try:
        with openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0) as client:
            check_once(client, submit(client, 6, max_tokens=12), 6)
    finally:
        gw.stop()
    lines = [r for r in ledger(store) if r["batch"]]
    assert len(lines) == 6 and {r["backend"] for r in lines} == {"llama-1"}
    rate_in, rate_out = (BATCH_IN, BATCH_OUT) if batch_rates else (IN, OUT)
    expected = sum(r["tokens_in"] * rate_in + r["tokens_out"] * rate_out for r in lines) / 1e6
    assert sum(r["usd_other_side"] for r in lines) == pytest.approx(expected, rel=1e-9)
    out = run_cli("report", "--config", str(gw.path), "--since", "1h", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["batch"]["requests"] == 6
    assert report["batch"]["hosted_equivalent_usd"] == pytest.approx(expected, rel=1e-9)
    noted = [n for n in report["notes"] if "priced at the interactive rates of api" in n]
    assert bool(noted) is not batch_rates
