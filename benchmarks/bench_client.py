"""How hard can ``breakeven bench`` drive a server, and how true are its timings?

Against ``zero_upstream.py`` on 127.0.0.1 (a server that costs almost nothing), two runs:

1. non-streaming, constant arrivals at ``--rate`` (default 2,500 req/s): achieved rate,
   send lag (the client's own timing error), latency, client CPU;
2. ``--streams`` (default 1,000) concurrent streams, each 20 chunks 50 ms apart: achieved
   rate, ITL (ideal 50 ms), TTFT (ideal 50 ms), so the error is measured, not assumed.

With ``--guidellm PATH`` (a GuideLLM executable installed in its own virtualenv) the same
two loads are run with it, one after the other in the same run, and printed side by side;
``--aiperf`` adds AIPerf (from ``benchmarks/.peers/aiperf``) on the non-streaming load.

With ``--sim``, the agreement run instead: one ``breakeven sim`` process (Llama 3.1 8B on an
H100, time scale 1, prefix caching off so no client warms the cache for the next), and
``breakeven bench`` then every peer found under ``benchmarks/.peers`` (``peer_clients.py``) sending
the same closed loops (``--sim-loads``: one stream, where TTFT is one prefill, and 16, where
fixed lengths make cohorts whose phase decides TTFT) to it, one after the other; their
TTFT, TPOT, ITL, end-to-end latency and throughput printed side by side.

    python benchmarks/bench_client.py [--guidellm /tmp/peer/bin/guidellm] [--aiperf]
    python benchmarks/bench_client.py --sim [--sim-loads 1:40,16:320]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]


def upstream(port: int, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                             str(port), *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc


def ours(url: str, tmp: Path, *args: str) -> dict:
    out = tmp / "ours.json"
    model = [] if "--model" in args else ["--model", "zero"]
    subprocess.run([*CLI, "bench", "--url", url, *model, "--quiet", "--json",
                    str(out), *args], check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())["levels"][0]


def guidellm(exe: str, url: str, tmp: Path, profile: str, count: int,
             stream: bool) -> dict:
    prompts = tmp / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"hello {i}", "output_tokens_count": 1})
                               + "\n" for i in range(count + 100)))
    out = tmp / "guidellm.json"
    backend = f"kind=openai_http,target={url.removesuffix('/v1')},model=zero"
    if not stream:
        backend += ",stream=false"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    start = time.perf_counter()
    subprocess.run([exe, "run", "--backend", backend, "--profile", profile, "--constraint",
                    f"kind=max_requests,count={count}", "--data",
                    f"kind=json_file,path={prompts}", "--output", f"kind=json,path={out}",
                    "--disable-console"], check=True, env=env, capture_output=True)
    wall = time.perf_counter() - start
    bench = json.loads(out.read_text())["benchmarks"][0]
    metrics = bench["metrics"]

    def med(name: str, key: str = "median") -> float | None:
        stats = metrics.get(name, {}).get("successful") or {}
        value = stats.get(key)
        return None if value is None else float(value)

    return {"rps": med("requests_per_second", "mean"), "ttft_ms": med("time_to_first_token_ms"),
            "itl_ms": med("inter_token_latency_ms"), "e2e_ms": med("request_latency"),
            "wall_s": wall}


def _engine(url: str) -> dict[str, float]:
    """The sim's own counters (simulated seconds = wall at time scale 1): sums and counts
    of TTFT and per-request TPOT, from its /metrics."""
    import urllib.request

    with urllib.request.urlopen(url.removesuffix("/v1") + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        for key in ("vllm:time_to_first_token_seconds", "vllm:request_time_per_output_token"
                    "_seconds"):
            if name.startswith(key + "_sum") or name.startswith(key + "_count"):
                out[name.split("{")[0]] = float(value)
    return out


def _truth(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def mean(key: str) -> float:
        n = after[key + "_count"] - before[key + "_count"]
        return (after[key + "_sum"] - before[key + "_sum"]) / n * 1e3 if n else 0.0

    return {"engine_ttft_ms": mean("vllm:time_to_first_token_seconds"),
            "engine_tpot_ms": mean("vllm:request_time_per_output_token_seconds")}


def _side_by_side(url: str, model: str, tmp: Path, c: int, n: int, inp: int,
                  out: int) -> dict[str, dict]:
    import peer_clients as peers

    rows: dict[str, dict] = {}
    start = time.perf_counter()
    before = _engine(url)
    lv = ours(url, tmp, "--concurrency", str(c), "--requests", str(n), "--warmup", "0",
              "--input-len", f"fixed:{inp}", "--output-len", f"fixed:{out}", "--model", model)
    rows["breakeven bench"] = {
        "ttft_ms": lv["ttft_ms"]["p50"], "tpot_ms": lv["tpot_ms"]["p50"],
        "itl_ms": lv["itl_ms"]["p50"], "e2e_ms": lv["e2e_ms"]["p50"],
        "rps": lv["request_throughput"], "out_tps": lv["output_throughput"],
        "wall_s": time.perf_counter() - start}
    rows["breakeven bench"] |= _truth(before, _engine(url))
    for name, run in peers.RUNNERS.items():
        if peers.exe(name) is None:
            print(f"{name}: not installed under {peers.PEERS}, skipped")
            continue
        before = _engine(url)
        rows[name] = run(url, model, tmp, c, n, inp, out) | _truth(before, _engine(url))
    return rows


def sim_side_by_side(args: argparse.Namespace, tmp: Path) -> None:
    port, model = 8310, "llama-3.1-8b"
    proc = subprocess.Popen([*CLI, "sim", "--model", model, "--gpu", "h100-sxm", "--port",
                             str(port), "--no-enable-prefix-caching"], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    while "listening on" not in proc.stdout.readline():
        pass
    url = f"http://127.0.0.1:{port}/v1"
    inp, out = args.sim_input, args.sim_output
    try:
        for load in args.sim_loads.split(","):
            c, n = (int(x) for x in load.split(":"))
            rows = _side_by_side(url, model, tmp, c, n, inp, out)
            print(f"one sim, closed loop of {c} streams, {n} requests of {inp} in / {out} "
                  "out (medians; ms, req/s, tokens/s)")
            print(f"{'client':<18}{'TTFT':>9}{'TPOT':>9}{'ITL':>9}{'e2e':>10}{'req/s':>9}"
                  f"{'out tok/s':>11}{'wall s':>9}   the sim's own means: TTFT, TPOT")
            for name, row in rows.items():
                cells = [row.get(k) for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "rps",
                                              "out_tps", "wall_s", "engine_ttft_ms",
                                              "engine_tpot_ms")]
                print(f"{name:<18}" + "".join(
                    f"{'-' if v is None else f'{v:.2f}':>{w}}"
                    for v, w in zip(cells, (9, 9, 9, 10, 9, 11, 9, 12, 9), strict=True)),
                    flush=True)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=2500)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--stream-requests", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--guidellm", default=None)
    parser.add_argument("--aiperf", action="store_true",
                        help="also AIPerf from benchmarks/.peers/aiperf")
    parser.add_argument("--sim", action="store_true")
    parser.add_argument("--sim-loads", default="1:40,16:320",
                        help="closed loops as STREAMS:REQUESTS, comma-separated")
    parser.add_argument("--sim-input", type=int, default=256)
    parser.add_argument("--sim-output", type=int, default=128)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.sim:
        sim_side_by_side(args, tmp)
        return

    server = upstream(8300)
    try:
        lv = ours("http://127.0.0.1:8300/v1", tmp, "--no-stream", "--rate", str(args.rate),
                  "--arrival", "constant", "--requests", str(args.requests), "--warmup",
                  "0.05", "--workers", str(args.workers))
        print(f"breakeven bench, non-streaming, offered {args.rate:,.0f} req/s: achieved "
              f"{lv['request_throughput']:,.0f} req/s, {lv['completed']:,} ok, errors "
              f"{lv['errors']}; send lag p50 {lv['send_lag_ms']['p50']:.2f} ms p99 "
              f"{lv['send_lag_ms']['p99']:.2f} ms; e2e p50 {lv['e2e_ms']['p50']:.2f} ms; "
              f"client CPU {lv['client']['cpu_fraction']:.0%} per worker x "
              f"{lv['client']['workers']}, saturated {lv['client']['saturated']}")
        if args.guidellm:
            g = guidellm(args.guidellm, "http://127.0.0.1:8300/v1", tmp,
                         f"kind=constant,rate={args.rate:g}", args.requests, stream=False)
            print(f"GuideLLM,        non-streaming, offered {args.rate:,.0f} req/s: achieved "
                  f"{g['rps'] or 0:,.0f} req/s; e2e p50 "
                  f"{(g['e2e_ms'] or 0) * 1e3:.2f} ms; wall {g['wall_s']:.1f} s")
        if args.aiperf:
            import peer_clients as peers

            a = peers.aiperf("http://127.0.0.1:8300/v1", "zero", tmp, 0, args.requests, 16,
                             1, rate=args.rate, stream=False)
            print(f"AIPerf,          non-streaming, offered {args.rate:,.0f} req/s: achieved "
                  f"{a['rps'] or 0:,.0f} req/s; e2e p50 {a['e2e_ms'] or 0:.2f} ms; wall "
                  f"{a['wall_s']:.1f} s")
    finally:
        server.terminate()
        server.wait()

    server = upstream(8301, "--chunks", "20", "--gap-ms", "50")
    try:
        lv = ours("http://127.0.0.1:8301/v1", tmp, "--concurrency", str(args.streams),
                  "--requests", str(args.stream_requests), "--warmup", "0.2", "--workers",
                  str(args.workers))
        print(f"breakeven bench, {args.streams:,} concurrent streams: "
              f"{lv['request_throughput']:,.0f} req/s, errors {lv['errors']}; TTFT p50 "
              f"{lv['ttft_ms']['p50']:.1f} ms (ideal 50); ITL p50 {lv['itl_ms']['p50']:.2f} "
              f"ms p99 {lv['itl_ms']['p99']:.1f} ms (ideal 50); client CPU "
              f"{lv['client']['cpu_fraction']:.0%} per worker, loop lag p99 "
              f"{lv['client']['loop_lag_ms']['p99']:.1f} ms")
        if args.guidellm:
            g = guidellm(args.guidellm, "http://127.0.0.1:8301/v1", tmp,
                         f"kind=concurrent,streams={args.streams}", args.stream_requests,
                         stream=True)
            print(f"GuideLLM,        {args.streams:,} concurrent streams: "
                  f"{g['rps'] or 0:,.0f} req/s; TTFT p50 {g['ttft_ms'] or 0:.1f} ms; "
                  f"ITL p50 {g['itl_ms'] or 0:.2f} ms; wall {g['wall_s']:.1f} s")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
