"""``breakeven sim``: a simulated serving engine, on HTTP or offline on a trace."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from breakeven.cli._common import (
    FloatRange,
    catalog_option,
    check_bindable,
    deployment_options,
    emit_json,
    engine_row,
    json_option,
    memory_option,
    prefill_graphs_option,
    scheduling_options,
)
from breakeven.planner.moe_layouts import LAYOUTS, describe


def _deployment(catalog_dir: str | None, model: str, gpu: str, gpus: int | None, quant: str | None,
                kv_dtype: str, engine: str, layout: str = "tp", scheduling: Any = None,
                prefill_graphs: bool = False,
                gpu_memory_utilization: float | None = None,
                engine_version: str | None = None) -> Any:
    """The replica ``size`` sizes for these options (its MoE ``layout`` refused, in one
    line, where the engine or the model cannot take it: ``formats.moe_layout_refusal``)."""
    from breakeven.errors import InputError
    from breakeven.loaders import load_catalog
    from breakeven.planner.sizing import NO_HOLDS, size

    cat = load_catalog(catalog_dir)
    the_model = cat.model(model)
    result = size(the_model, cat.gpu(gpu), engine_row(cat, engine, engine_version),
                  quant=quant or the_model.native_quant,  # type: ignore[arg-type]
                  gpus=gpus, input_len=1, output_len=1, kv_dtype=kv_dtype,  # type: ignore[arg-type]
                  link=cat.interconnect_for(cat.gpu(gpu)),
                  layout=layout, prefill_graphs=prefill_graphs,  # type: ignore[arg-type]
                  scheduling=scheduling or NO_HOLDS,
                  gpu_memory_utilization=gpu_memory_utilization)
    if not result.fits:
        raise InputError(f"cannot simulate: {result.reason}", where="--model/--gpu")
    return result.deployment


@click.command("sim")
@scheduling_options
@prefill_graphs_option
@memory_option
@deployment_options
@click.option("--max-model-len", type=click.IntRange(min=16), default=None,
              help="Context limit (default: the model's, capped by the KV cache).")
@click.option("--max-num-seqs", type=click.IntRange(min=1), default=None,
              help="Concurrent sequences (default: the engine's).")
@click.option("--layout", type=click.Choice(LAYOUTS), default="tp",
              show_default=True,
              help="A MoE model's layout, as 'breakeven size --layout' sizes it: tp (every "
                   "matrix split), ep (experts split whole over the GPUs), dp-ep (attention "
                   "data-parallel too: a batch and KV cache per GPU, --max-num-seqs per "
                   "GPU). Refused where the engine or the model has no such layout.")
@click.option("--scheduling-policy", type=click.Choice(["fcfs", "priority"]), default="fcfs",
              show_default=True, help="As vLLM's: 'priority' orders the queue by each "
              "request's 'priority' (lower first) and preempts the lowest first.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (an address of this machine; 0.0.0.0: all).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8001, show_default=True,
              help="0 picks a free port.")
@click.option("--served-model-name", default=None, help="Name clients use (default: --model).")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="Require 'Authorization: Bearer $VAR' on /v1 (like vllm --api-key).")
@click.option("--time-scale", type=FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Wall seconds per simulated second (0.01: 100x faster).")
@click.option("--clock", type=click.Choice(["wall", "virtual"]), default="wall",
              show_default=True, help="'virtual': the simulated clock stops while the host "
              "is late or a closed-loop caller is between requests, so simulated figures "
              "do not depend on the host's load (closed loops only; rates need 'wall').")
@click.option("--enable-prefix-caching/--no-enable-prefix-caching", "prefix_caching",
              default=True, show_default=True,
              help="As vLLM V1: reuse the KV blocks of a prompt prefix seen before.")
@click.option("--enable-prompt-tokens-details", "prompt_tokens_details", is_flag=True,
              help="As vLLM's: report usage.prompt_tokens_details.cached_tokens.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the simulated answers and timings (same seed, same run).")
@click.option("--variant", default="", help="Serve another model variant under the same name "
              "(its greedy answers differ), to test drift detection.")
@click.option("--offline", is_flag=True, help="No server: run a trace and print the figures.")
@click.option("--trace", type=click.Path(dir_okay=False), default=None,
              help="Offline: JSONL trace (messages/prompt, max_tokens, optional timestamp).")
@click.option("--rate", type=FloatRange(min=0, min_open=True), default=None,
              help="Offline: Poisson arrivals at this many requests/s (trace without times).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Offline: a closed loop of this many callers instead.")
@catalog_option
@json_option
def command(model: str, gpu: str, gpus: int | None, quant: str | None, kv_dtype: str, engine: str,
            engine_version: str | None, max_model_len: int | None, max_num_seqs: int | None,
            layout: str, scheduling_policy: str,
            host: str, port: int,
            served_model_name: str | None, api_key_env: str | None, time_scale: float,
            clock: str, prefix_caching: bool, prompt_tokens_details: bool,
            seed: int, variant: str, offline: bool, trace: str | None, rate: float | None,
            concurrency: int | None, prefill_graphs: bool,
            gpu_memory_utilization: float | None, catalog_dir: str | None,
            as_json: bool, scheduling: Any) -> None:
    """A simulated vLLM-like engine: continuous batching, paged KV cache, roofline steps."""
    from breakeven.errors import InputError
    from breakeven.planner.formats import budget_refusal
    from breakeven.sim.engine import engine_config

    dep = _deployment(catalog_dir, model, gpu, gpus, quant, kv_dtype, engine, layout,
                      scheduling, prefill_graphs, gpu_memory_utilization, engine_version)
    specs = _trace(trace, rate, concurrency) if offline else []
    config = engine_config(dep, max_model_len, max_num_seqs, scheduling_policy,
                           prefix_caching)
    refused = budget_refusal(dep.engine, config.max_num_seqs // dep.ranks,
                             config.max_num_batched_tokens // dep.ranks)
    if refused is not None:
        raise InputError(refused, where="--max-num-seqs")
    if max_model_len and config.max_model_len < max_model_len:
        raise InputError(
            f"--max-model-len {max_model_len} is larger than the KV cache holds "
            f"({config.kv_tokens // dep.ranks:,} tokens on "
            + (f"each of this deployment's {dep.ranks} data-parallel ranks)" if dep.ranks > 1
               else "this deployment)"),
            where="--max-model-len")
    describe = _describe(dep, config, prefix_caching)
    if offline:
        from breakeven.sim.offline import simulate

        result = simulate(config, specs, rate=rate, concurrency=concurrency, seed=seed)
        result["deployment"] = describe
        if as_json:
            emit_json(result)
        else:
            from breakeven.render.bench import print_sim

            print_sim(result)
        return
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise InputError(f"environment variable {api_key_env} is not set",
                             where="--api-key-env")
    from breakeven.sim.server import serve

    def announce(url: str) -> None:
        print(f"breakeven sim: {describe}; time scale {time_scale:g} ({clock} clock)",
              flush=True)
        print(f"listening on {url}", flush=True)

    check_bindable(host, port, "--host/--port")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    serve(dep, config, served_name=served_model_name or model, host=host, port=port,
          time_scale=time_scale, seed=seed, api_key=api_key, announce=announce,
          variant=variant, clock=clock, prompt_tokens_details=prompt_tokens_details)


def _trace(trace: str | None, rate: float | None, concurrency: int | None) -> list[Any]:
    """The requests of an offline run, its options checked."""
    from breakeven.bench.workload import load_trace
    from breakeven.errors import InputError

    if trace is None:
        raise InputError("--offline needs --trace FILE", where="--trace")
    if rate and concurrency:
        raise InputError("give --rate or --concurrency, not both", where="--rate")
    return load_trace(trace)


def _describe(dep: Any, config: Any, prefix_caching: bool) -> str:
    """The deployment and the engine's limits, as the start-up line says them."""
    layout = f", {describe(dep.layout, dep.tp)}" if dep.layout != "tp" else ""
    release = f" {dep.engine.version}" if dep.engine.version else ""
    windows = (f"; {config.local_layers} of {dep.model.layers} layers keep only each "
               f"sequence's last {dep.model.sliding_window:,} tokens" if config.local_layers
               else "")
    return (f"{dep.model.name} {dep.quant.upper()} on {dep.gpus} x {dep.gpu.name} "
            f"({dep.engine.name}{release}{layout}): "
            f"{config.num_blocks:,} KV blocks "
            f"({config.kv_tokens:,} tokens{windows}), max_num_seqs {config.max_num_seqs:,}, "
            f"max_num_batched_tokens {config.max_num_batched_tokens:,}, "
            f"scheduling {config.policy}"
            + ("" if config.mixed else " (prompts first, in steps of their own)")
            + (", requests admitted whole (prompt and max_tokens reserved, none preempted)"
               if config.reserve_whole else "") + ", "
            f"prefix caching {'on' if prefix_caching else 'off'}, "
            f"max_model_len {config.max_model_len:,}"
            + (f", front end {config.front_end_s * 1e3:g} ms a request"
               if config.front_end_s else "")
            + str(dep.scheduling.describe()))

