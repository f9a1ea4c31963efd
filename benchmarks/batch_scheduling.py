"""Batch lines fill idle GPU time without hurting interactive traffic (issue: Batch API).

One ``breakeven sim`` (Llama 3.1 8B on an H100, time scale 1: real time) behind
``breakeven gateway``; interactive traffic from ``breakeven bench`` (Poisson, streaming,
500 prompt / 100 output tokens) through the gateway; a 10,000-line batch of the same shape
through the Batch API. Capacity is the planner's: ``breakeven size`` at a 300 ms TTFT /
25 ms TPOT SLO (29,230 tokens/s, 48.7 requests/s here); utilisation is the sim's prompt +
generation tokens per second over that capacity.

1. baseline: interactive at 50% of capacity, no batch: TTFT p95, utilisation;
2. with the batch: the same interactive load while the batch runs: TTFT p95 (target: at
   most +20%), utilisation (target: above 85%);
3. step: interactive load steps to 90% of capacity: seconds from its first request until
   batch admission backs off (the gateway's batch limit is first cut) and until batch lines
   in flight fall to a quarter of their level before the step (target: within 5 s).

Each run does this for three setups side by side: the engine first come first served
(vLLM's default) and then with ``--scheduling-policy priority`` (the gateway sending batch
lines at ``batch_priority: 1``), both with the gateway protecting the interactive TTFT p95
it measures (``batch.ttft_slo_ms``) at 1.15x the baseline's, as an operator would set it
from a measurement; and the priority engine with no TTFT SLO, batch filling the backend to
``batch.fill_to`` (0.9, ``--fill-to``) of its capacity. The two targets cannot both be met
on this shape (the frontier below says why), so the setups show each end of the trade.

Before the live runs, the engine model alone (no HTTP, no gateway; 120 simulated seconds,
the planner's ``--max-num-seqs``) shows the frontier: the same interactive load plus batch
lines started at an even pace, the best any admission policy could do, for each policy
and batch rate; ``--shapes`` prints it for other prompt/output shapes and stops there.

    python benchmarks/batch_scheduling.py [--runs 3] [--phase-s 30] [--setups ...]
    python benchmarks/batch_scheduling.py --shapes 500/100,100/500  # the frontier alone
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

CLI = [sys.executable, "-m", "breakeven"]
KEY = "bench-key"
IN, OUT = 500, 100


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    for _ in range(3):
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            return proc, line.split()[-1]
    raise RuntimeError(f"{args[0]} did not start")


def _get(url: str) -> str:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(resp.read().decode())


def _gauge(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? "
                                                      r"(\S+)$", text, re.M))


def _tokens(sim: str) -> float:
    text = _get(sim.removesuffix("/v1") + "/metrics")
    return _gauge(text, "vllm:prompt_tokens_total") + _gauge(text,
                                                             "vllm:generation_tokens_total")


def capacity(inp: int = IN, out_len: int = OUT) -> tuple[float, float]:
    out = subprocess.run([*CLI, "size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                          "--input-len", str(inp), "--output-len", str(out_len), "--ttft-ms",
                          "300", "--tpot-ms", "25", "--json"], capture_output=True, text=True,
                         check=True)
    at = json.loads(out.stdout)["at_slo"]
    return float(at["total_tok_s"]), float(at["requests_per_s"])


def frontier(cap: float, req_s: float, rates: list[float], seconds: float, inp: int,
             out_len: int) -> list[dict[str, float]]:
    """The engine model alone: Poisson interactive at 50% plus batch lines started evenly
    at each rate, all ``inp``/``out_len`` tokens; utilisation and the interactive TTFT p95
    and median time per output token for each scheduling policy."""
    import random

    from breakeven.loaders import load_catalog
    from breakeven.planner.sizing import size
    from breakeven.sim.engine import Sequence, SimEngine, engine_config

    cat = load_catalog(None)
    sized = size(cat.model("llama-3.1-8b"), cat.gpu("h100-sxm"), cat.engine("vllm"),
                 quant="bf16", gpus=None, input_len=inp, output_len=out_len)
    dep = sized.deployment
    rows = []
    for policy in ("fcfs", "priority"):
        for rate in rates:
            rng = random.Random(1)
            # the sequence slots the planner's launch line sets (--max-num-seqs)
            engine = SimEngine(engine_config(dep, max_num_seqs=sized.max_seqs, policy=policy))
            arrivals, t = [], 0.0
            while t < seconds:
                t += rng.expovariate(0.5 * req_s)
                arrivals.append(t)
            seen: list[Sequence] = []
            i = started = 0
            while engine.now < seconds:
                while i < len(arrivals) and arrivals[i] <= engine.now:
                    seen.append(Sequence(inp, out_len, arrivals[i]))
                    engine.add(seen[-1])
                    i += 1
                while rate and started / rate <= engine.now:
                    engine.add(Sequence(inp, out_len, engine.now, priority=1))
                    started += 1
                if engine.step() is None:
                    engine.idle_until(min(arrivals[i], started / rate if rate else seconds))
            ttft = sorted((q.first_token - q.arrival) * 1e3 for q in seen[len(seen) // 10:]
                          if q.first_token is not None)
            tpot = sorted((q.finished - q.first_token) * 1e3 / (out_len - 1)
                          for q in seen[len(seen) // 10:]
                          if q.finished is not None and q.first_token is not None)
            rows.append({"policy": policy, "batch_per_s": rate,
                         "util": (engine.prompt_tokens_total + engine.generation_tokens_total)
                         / engine.now / cap, "ttft_p95_ms": ttft[int(0.95 * len(ttft))],
                         "tpot_p50_ms": tpot[len(tpot) // 2] if tpot else float("nan"),
                         "unserved": sum(q.first_token is None for q in seen)})
    return rows


def gateway_yaml(tmp: Path, sim: str, cap: float, slo_ms: float | None, policy: str,
                 fill_to: float = 0.9) -> Path:
    path = tmp / "gateway.yaml"
    slo = f", ttft_slo_ms: {slo_ms:.1f}" if slo_ms else ""
    slo += f", fill_to: {fill_to}"
    ranked = ", batch_priority: 1" if policy == "priority" else ""
    path.write_text(f"""
store: sqlite:///{tmp}/ledger.db
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, max_concurrency: 1024,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: {cap:.0f}}}{ranked}}}
routes: [{{alias: chat, backends: [llama], detect_pii: false}}]
keys: [{{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}]
batch: {{max_per_backend: 256, scrape_s: 0.5{slo}}}
""")
    return path


def interactive(url: str, rate: float, seconds: float, out: Path) -> dict[str, float]:
    env = {**os.environ, "BENCH_KEY": KEY}
    subprocess.run([*CLI, "bench", "--url", url, "--model", "chat", "--quiet", "--rate",
                    f"{rate:.2f}", "--duration", str(seconds), "--warmup", "0.05",
                    "--input-len", f"fixed:{IN}", "--output-len", f"fixed:{OUT}",
                    "--api-key-env", "BENCH_KEY", "--json", str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    level = json.loads(out.read_text())["levels"][0]
    return {"ttft_p95_ms": float(level["ttft_ms"]["p95"]),
            "ttft_p50_ms": float(level["ttft_ms"]["p50"]),
            "req_s": float(level["request_throughput"])}


def submit(url: str, lines: int) -> str:
    import openai

    client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0)
    words = " ".join(["token"] * (IN - 12))
    rows = [json.dumps({"custom_id": f"b{i}", "method": "POST", "url": "/v1/chat/completions",
                        "body": {"model": "chat", "max_tokens": OUT, "min_tokens": OUT,
                                 "ignore_eos": True,
                                 "messages": [{"role": "user", "content": words}]}})
            for i in range(lines)]
    f = client.files.create(file=("batch.jsonl", "\n".join(rows).encode()), purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    while client.batches.retrieve(batch.id).status == "validating":
        time.sleep(0.2)
    client.close()
    return str(batch.id)


def utilisation(sim: str, cap: float, work: threading.Thread) -> float:
    """Mean utilisation while ``work`` runs (skipping its first 15%)."""
    work.start()
    time.sleep(2)
    t0, k0 = time.monotonic(), _tokens(sim)
    work.join()
    return (_tokens(sim) - k0) / (time.monotonic() - t0) / cap


SETUPS = {"fcfs+slo": ("fcfs", True), "priority+slo": ("priority", True),
          "priority+fill": ("priority", False)}


def one_run(tmp: Path, phase_s: float, slo_factor: float, policy: str, slo: bool,
            fill_to: float) -> dict[str, float]:
    cap, req_s = capacity()
    sim_proc, sim = _start(["sim", "--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                            "--port", "0", "--seed", "1", "--scheduling-policy", policy])
    gw_proc, gw = _start(["gateway", "--config", str(gateway_yaml(tmp, sim, cap, None,
                                                                   policy)), "--port", "0"])
    out: dict[str, float] = {"capacity_tok_s": cap}
    try:
        base: dict[str, float] = {}
        run = threading.Thread(target=lambda: base.update(
            interactive(gw, 0.5 * req_s, phase_s, tmp / "a.json")))
        out["util_baseline"] = utilisation(sim, cap, run)
        out["ttft_p95_baseline"] = base["ttft_p95_ms"]
        gw_proc.send_signal(signal.SIGTERM)
        gw_proc.wait(30)
        gw_proc, gw = _start(["gateway", "--config", str(gateway_yaml(
            tmp, sim, cap, slo_factor * base["ttft_p95_ms"] if slo else None, policy,
            fill_to)),
            "--port", "0"])
        submit(gw, 10_000)
        time.sleep(20)  # batch admission ramps up
        mixed: dict[str, float] = {}
        run = threading.Thread(target=lambda: mixed.update(
            interactive(gw, 0.5 * req_s, phase_s, tmp / "b.json")))
        out["util_with_batch"] = utilisation(sim, cap, run)
        out["ttft_p95_with_batch"] = mixed["ttft_p95_ms"]
        # the step: watch the batch limit and lines in flight while the load jumps
        metrics = gw.removesuffix("/v1") + "/metrics"
        before = _gauge(_get(metrics), "breakeven_gateway_batch_in_flight")
        step = threading.Thread(target=interactive,
                                args=(gw, 0.9 * req_s, 20, tmp / "c.json"))
        step.start()
        while _gauge(_get(metrics), "breakeven_gateway_in_flight") == 0:
            time.sleep(0.01)  # the clock starts at the step's first request (client
            # requests only: batch lines are not counted there)
        start = time.monotonic()
        cut = quarter = None
        top = 0.0
        while time.monotonic() - start < 20 and (cut is None or quarter is None):
            text = _get(metrics)
            now = time.monotonic() - start
            limit = _gauge(text, "breakeven_gateway_batch_limit")
            top = max(top, limit)  # it may still be growing when the step begins
            if cut is None and limit < top:
                cut = now
            if quarter is None and _gauge(text, "breakeven_gateway_batch_in_flight") <= (
                    before / 4):
                quarter = now
            time.sleep(0.1)
        step.join()
        out["batch_in_flight_before_step"] = before
        out["backoff_s"] = cut if cut is not None else float("nan")
        out["quarter_s"] = quarter if quarter is not None else float("nan")
    finally:
        for proc in (gw_proc, sim_proc):
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return out


def print_frontier(shape: str, cap: float, rows: list[dict[str, float]]) -> None:
    print(f"engine model alone, {shape} tokens, capacity {cap:,.0f} tok/s at the SLO, "
          "batch lines started evenly (the frontier):")
    base: dict[str, dict[str, float]] = {}
    for row in rows:
        b = base.setdefault(row["policy"], row)
        print(f"  {row['policy']:8} batch {row['batch_per_s']:5.1f}/s: utilisation "
              f"{row['util']:6.1%}, interactive TTFT p95 {row['ttft_p95_ms']:7.1f} ms "
              f"({row['ttft_p95_ms'] / b['ttft_p95_ms'] - 1:+6.0%}), TPOT p50 "
              f"{row['tpot_p50_ms']:5.1f} ms ({row['tpot_p50_ms'] / b['tpot_p50_ms'] - 1:+5.0%})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--phase-s", type=float, default=30.0)
    parser.add_argument("--slo-factor", type=float, default=1.15,
                        help="batch.ttft_slo_ms as a multiple of the baseline p95")
    parser.add_argument("--fill-to", type=float, default=0.9, help="batch.fill_to")
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help=f"comma-separated, of {', '.join(SETUPS)}")
    parser.add_argument("--shapes", default=None, metavar="IN/OUT,...",
                        help="only the frontier (no live runs), for each prompt/output shape")
    args = parser.parse_args()
    for shape in (args.shapes or f"{IN}/{OUT}").split(","):
        inp, out_len = (int(x) for x in shape.split("/"))
        cap, req_s = capacity(inp, out_len)
        # batch lines at 0-50% of the capacity in requests/s: utilisation ~50% to ~100%
        print_frontier(shape, cap, frontier(cap, req_s, [k * 0.1 * req_s for k in range(6)],
                                            120.0, inp, out_len))
    if args.shapes:
        return
    setups = args.setups.split(",")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in setups}
    for _ in range(args.runs):
        for name in setups:  # side by side in each run
            policy, slo = SETUPS[name]
            runs[name].append(one_run(Path(tempfile.mkdtemp()), args.phase_s,
                                      args.slo_factor, policy, slo, args.fill_to))
            print(name, json.dumps({k: round(v, 3) for k, v in runs[name][-1].items()}),
                  flush=True)
    print(f"capacity {cap:,.0f} tok/s (planner, at the SLO); medians of {args.runs} runs")
    for name in setups:
        med = {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]}
        rise = med["ttft_p95_with_batch"] / med["ttft_p95_baseline"] - 1
        print(f"[{name}] utilisation {med['util_baseline']:.1%} -> {med['util_with_batch']:.1%}"
              f" (target > 85%); interactive TTFT p95 {med['ttft_p95_baseline']:.1f} -> "
              f"{med['ttft_p95_with_batch']:.1f} ms ({rise:+.1%}; target <= +20%); step to "
              f"90%: admission cut after {med['backoff_s']:.2f} s, lines in flight at a "
              f"quarter after {med['quarter_s']:.2f} s (target 5 s)")


if __name__ == "__main__":
    main()
