"""Options and helpers shared by the commands."""

from __future__ import annotations

import errno
import functools
import math
import sys
from collections.abc import Callable
from typing import Any

import click


class FloatRange(click.FloatRange):
    """click's FloatRange that also refuses NaN and infinity (click lets "nan" through any
    bound, since no comparison with NaN fails, and ``size --rate nan`` then ran forever)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


catalog_option = click.option(
    "--catalog", "catalog_dir", type=click.Path(file_okay=False), default=None,
    help="Directory with your own copy of the catalog YAML files.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")

QUANTS = ["bf16", "fp8", "int8", "int4", "awq", "gptq", "fp4", "mxfp4"]
ENGINES = ["vllm", "sglang", "tgi", "tensorrt-llm", "ollama"]  # the catalog's engines.yaml


def deployment_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --gpu, --gpus, --quant, --kv-dtype, --engine, --engine-version: one replica
    to size or run."""
    for option in reversed((
        click.option("--model", required=True,
                     help="Model id (llama-3.1-70b) or Hugging Face id."),
        click.option("--gpu", required=True, help="GPU id (h100-sxm, a10g, mi300x ...)."),
        click.option("--gpus", type=click.IntRange(min=1), default=None,
                     help="GPUs per replica (default: the fewest that fit)."),
        click.option("--quant", type=click.Choice(QUANTS), default=None,
                     help="Weight format (default: the model's own: mxfp4 for gpt-oss, fp8 "
                          "for DeepSeek, bf16 for most): bf16 (16-bit), fp8/int8 (8-bit), "
                          "int4/awq/gptq (4-bit integer), fp4/mxfp4 (4-bit float)."),
        click.option("--kv-dtype", type=click.Choice(["auto", "bf16", "fp8"]), default="auto",
                     show_default=True,
                     help="KV-cache format: auto (the engine's default for --quant), bf16 or "
                          "fp8 (half the memory per token)."),
        click.option("--engine", default="vllm", show_default=True,
                     help=f"Serving engine: {', '.join(ENGINES)} (or one your --catalog "
                          "adds)."),
        click.option("--engine-version", default=None,
                     help="Engine release to describe (0.28.0): its batch and memory defaults "
                          "where the catalog records releases that changed them (default: the "
                          "catalog's release for the engine)."),
    )):
        command = option(command)
    return command


def engine_row(cat: Any, engine: str, version: str | None) -> Any:
    """The catalog's ``engine`` as of ``version`` (``--engine-version``; None: the
    catalog's release), or an input error naming the option."""
    row = cat.engine(engine)
    if version is None:
        return row
    from breakeven.errors import InputError

    try:
        return row.at_version(version)
    except ValueError as e:
        raise InputError(str(e), where="--engine-version") from None


def scheduling_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The engine's settings that hold new requests back, passed to ``command`` as one
    ``scheduling`` (``planner.replica.Scheduling``); refused by ``size`` for an engine
    without them. Put it right under ``@click.command``."""

    @functools.wraps(command)
    def with_scheduling(*args: Any, recv_interval: int, batch_wait_iters: int,
                        batch_wait_ratio: float, adp_balance_iters: int, **kwargs: Any) -> Any:
        from breakeven.planner.scheduling import Scheduling

        return command(*args, scheduling=Scheduling(recv_interval, batch_wait_iters,
                                                    batch_wait_ratio, adp_balance_iters),
                       **kwargs)

    for option in reversed((
        click.option("--scheduler-recv-interval", "recv_interval", type=click.IntRange(min=1),
                     default=1, show_default=True,
                     help="SGLang's --scheduler-recv-interval: a busy scheduler takes new "
                          "requests in only every N decode steps (InferenceX's runs: 10-30)."),
        click.option("--batch-wait-timeout-iters", "batch_wait_iters",
                     type=click.IntRange(min=0), default=0, show_default=True,
                     help="TensorRT-LLM's batch_wait_timeout_iters: new prompts wait up to N "
                          "steps while sequences decode ..."),
        click.option("--batch-wait-max-tokens-ratio", "batch_wait_ratio",
                     type=FloatRange(0, 1), default=0.0, show_default=True,
                     help="... until a step would carry this share of the token budget "
                          "(batch_wait_max_tokens_ratio)."),
        click.option("--adp-balance-timeout-iters", "adp_balance_iters",
                     type=click.IntRange(min=0), default=0, show_default=True,
                     help="TensorRT-LLM's attention_dp_config (enable_balance, timeout_iters): "
                          "with --layout dp-ep, new prompts wait up to N steps until every "
                          "rank has one (InferenceX's runs: 60)."),
    )):
        with_scheduling = option(with_scheduling)
    return with_scheduling


memory_option = click.option(
    "--gpu-memory-utilization", "gpu_memory_utilization",
    type=FloatRange(0, 1, min_open=True), default=None,
    help="The engine's memory setting, as the deployment sets it: vLLM's "
         "--gpu-memory-utilization and SGLang's --mem-fraction-static (the share of each GPU's "
         "memory for weights and KV cache), TensorRT-LLM's kv_cache_config."
         "free_gpu_memory_fraction (the share of what the weights leave for KV cache). "
         "Default: the engine's own (SGLang's depends on the GPU and the chunk size).")

prefill_graphs_option = click.option(
    "--prefill-cuda-graphs", "prefill_graphs", is_flag=True,
    help="Prefill steps run as CUDA graphs (TensorRT-LLM's piecewise CUDA graphs, SGLang's "
         "--enable-piecewise-cuda-graph): a prompt step of an MLA model no longer waits on "
         "the host launching its kernels one by one.")


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout. orjson encodes it (the whole-catalog plan is
    5 MB: the standard library's indenting encoder alone took 120 ms of a 1 s budget);
    strings go out as UTF-8, and a non-finite float, which JSON cannot spell, as null."""
    import orjson

    text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
                        | orjson.OPT_APPEND_NEWLINE)
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(text.decode())
    else:
        out.write(text)
        out.flush()


def check_folder(path: str, option: str) -> None:
    """Refuse, in one line, an output file whose folder does not exist."""
    from pathlib import Path

    from breakeven.errors import InputError

    parent = Path(path).parent
    if not parent.is_dir():
        raise InputError(f"folder {str(parent)!r} does not exist (create it first)",
                         where=option)


def write_output(path: str, text: str, option: str) -> None:
    """Write ``text`` to ``path`` (an output option's file), or one-line ``InputError``:
    a missing folder or an unwritable place is the user's input, not a crash."""
    from pathlib import Path

    from breakeven.errors import InputError

    check_folder(path, option)
    target = Path(path)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}", where=option) from None


def check_bindable(host: str, port: int, where: str) -> None:
    """Refuse, in one line, a host this machine cannot listen on or a port in use, before a
    server starts (its own error would be a log line and a bare exit code)."""
    import socket

    from breakeven.errors import InputError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InputError(f"cannot resolve host {host!r}: {exc}", where=where) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            why = ("the port is in use" if exc.errno == errno.EADDRINUSE
                   else "not an address of this machine" if exc.errno == errno.EADDRNOTAVAIL
                   else exc.strerror or str(exc))
            raise InputError(f"cannot listen on {host}:{port}: {why}", where=where) from None
