"""``breakeven size --model M --gpu G``.

Exit codes: 0 a layout fits; 2 bad input, including a GPU count no layout the engine
accepts has (TP that does not divide the heads, TP beyond a node); 3 nothing fits.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast

import click

from breakeven.cli._common import (
    FloatRange,
    catalog_option,
    deployment_options,
    emit_json,
    engine_row,
    json_option,
    memory_option,
    prefill_graphs_option,
    scheduling_options,
)
from breakeven.errors import InputError
from breakeven.planner.moe_layouts import LAYOUTS

if TYPE_CHECKING:
    from breakeven.planner.sizing import Layout

NOTHING_FITS = 3


def _concurrency(value: str) -> int | None:
    if value == "max":
        return None
    try:
        conc = int(value)
    except ValueError:
        conc = 0
    if conc < 1:
        raise InputError(f"expected a whole number >= 1 or 'max' (got {value!r})",
                         where="--concurrency")
    return conc


@click.command("size")
@scheduling_options
@prefill_graphs_option
@memory_option
@deployment_options
@click.option("--input-len", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Prompt tokens per request (>= 1).")
@click.option("--output-len", type=click.IntRange(min=0), default=200, show_default=True,
              help="Generated tokens per request (>= 0; 0: prefill only, as embeddings).")
@click.option("--concurrency", default="max", show_default=True,
              help="Concurrent requests (a closed loop), or 'max': as many as the KV cache "
                   "holds, at most the engine's max_num_seqs.")
@click.option("--rate", type=FloatRange(min=0, min_open=True), default=None,
              help="Requests per second arriving at random (an open loop, as vllm bench "
                   "serve --request-rate) instead of --concurrency callers.")
@click.option("--length-spread", type=FloatRange(0, 0.9), default=0.0,
              show_default=True,
              help="Draw lengths uniformly in [1 - spread, 1] x the length (0.2: "
                   "InferenceMAX's ratio); 0 keeps them fixed.")
@click.option("--max-num-seqs", type=click.IntRange(min=1), default=None,
              help="Engine max_num_seqs (default: the engine's).")
@click.option("--max-batched-tokens", type=click.IntRange(min=1), default=None,
              help="Engine max_num_batched_tokens (default: the engine's).")
@click.option("--layout", type=click.Choice([*LAYOUTS, "auto"]), default="tp",
              show_default=True,
              help="How a MoE model uses a stage's GPUs: tp (every matrix split), ep "
                   "(experts split whole, attention tensor-parallel; vLLM "
                   "--enable-expert-parallel), dp-ep (also attention data-parallel: a batch "
                   "and KV cache per GPU; vLLM --data-parallel-size, SGLang "
                   "--enable-dp-attention), auto (whichever of those serves the most "
                   "output tokens per second at the asked concurrency).")
@click.option("--ttft-ms", type=FloatRange(min=0, min_open=True), default=None,
              help="TTFT SLO for the SLO concurrency.")
@click.option("--tpot-ms", type=FloatRange(min=0, min_open=True), default=None,
              help="TPOT SLO for the SLO concurrency.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the simulated run's lengths.")
@catalog_option
@json_option
def command(model: str, gpu: str, gpus: int | None, quant: str | None, kv_dtype: str, engine: str,
            input_len: int, output_len: int, concurrency: str, rate: float | None,
            length_spread: float,
            max_num_seqs: int | None, max_batched_tokens: int | None, layout: str,
            engine_version: str | None, ttft_ms: float | None, tpot_ms: float | None,
            seed: int, prefill_graphs: bool, gpu_memory_utilization: float | None,
            catalog_dir: str | None, as_json: bool, scheduling: Any) -> None:
    """Memory fit, GPUs, TTFT, TPOT and throughput of one model on one GPU type."""
    from breakeven.loaders import load_catalog
    from breakeven.planner.sizing import SloTarget, best_layout, size
    from breakeven.render.data import sizing_dict
    from breakeven.sim.offline import simulated

    conc = _concurrency(concurrency)
    if rate is not None and conc is not None:
        raise InputError("give --rate or --concurrency, not both", where="--rate")
    cat = load_catalog(catalog_dir)
    row = engine_row(cat, engine, engine_version)
    the_gpu = cat.gpu(gpu)
    the_model = cat.model(model)
    args: dict[str, Any] = dict(
        quant=quant or the_model.native_quant, gpus=gpus, input_len=input_len,
        output_len=output_len, concurrency=conc, slo=SloTarget(ttft_ms, tpot_ms),
        kv_dtype=kv_dtype, link=cat.interconnect_for(the_gpu), max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens, rate=rate, scheduling=scheduling,
        prefill_graphs=prefill_graphs, gpu_memory_utilization=gpu_memory_utilization)
    if layout == "auto":
        result = best_layout(the_model, the_gpu, row, **args)
    else:
        result = size(the_model, the_gpu, row, layout=cast("Layout", layout), **args)
    result = simulated(result, spread=length_spread, seed=seed)
    if as_json:
        emit_json(sizing_dict(result))
    else:
        from breakeven.render.terminal import print_sizing

        print_sizing(result)
    if not result.fits:
        sys.exit(NOTHING_FITS)
