"""Options and helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

catalog_option = click.option(
    "--catalog", "catalog_dir", type=click.Path(file_okay=False), default=None,
    help="Directory with your own copy of the catalog YAML files.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")

QUANTS = ["bf16", "fp8", "int8", "int4", "awq", "gptq", "fp4", "mxfp4"]


def deployment_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--model, --gpu, --gpus, --quant, --kv-dtype, --engine: one replica to size or run."""
    for option in reversed((
        click.option("--model", required=True,
                     help="Model id (llama-3.1-70b) or Hugging Face id."),
        click.option("--gpu", required=True, help="GPU id (h100-sxm, a10g, mi300x ...)."),
        click.option("--gpus", type=click.IntRange(min=1), default=None,
                     help="GPUs per replica (default: the fewest that fit)."),
        click.option("--quant", type=click.Choice(QUANTS), default=None,
                     help="Weight format (default: the model's own, e.g. mxfp4 for "
                          "gpt-oss, fp8 for DeepSeek, bf16 for most)."),
        click.option("--kv-dtype", type=click.Choice(["auto", "bf16", "fp8"]), default="auto",
                     show_default=True),
        click.option("--engine", default="vllm", show_default=True),
    )):
        command = option(command)
    return command


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
