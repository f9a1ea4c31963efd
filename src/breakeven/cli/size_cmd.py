"""``breakeven size --model M --gpu G``."""

from __future__ import annotations

import click

from breakeven.cli._common import catalog_option, deployment_options, emit_json, json_option


@click.command("size")
@deployment_options
@click.option("--input-len", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--output-len", type=click.IntRange(min=0), default=200, show_default=True)
@click.option("--concurrency", default="max", show_default=True,
              help="Concurrent requests, or 'max' for saturation.")
@click.option("--ttft-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="TTFT SLO for the SLO concurrency.")
@click.option("--tpot-ms", type=click.FloatRange(min=0, min_open=True), default=None,
              help="TPOT SLO for the SLO concurrency.")
@catalog_option
@json_option
def command(model: str, gpu: str, gpus: int | None, quant: str, kv_dtype: str, engine: str,
            input_len: int, output_len: int, concurrency: str, ttft_ms: float | None,
            tpot_ms: float | None, catalog_dir: str | None, as_json: bool) -> None:
    """Memory fit, GPUs, TTFT, TPOT and throughput of one model on one GPU type."""
    from breakeven.errors import InputError
    from breakeven.loaders import load_catalog
    from breakeven.planner.sizing import SloTarget, size
    from breakeven.render.data import sizing_dict

    conc: int | None = None
    if concurrency != "max":
        try:
            conc = int(concurrency)
        except ValueError:
            conc = 0
        if conc < 1:
            raise InputError(f"expected a whole number >= 1 or 'max' (got {concurrency!r})",
                             where="--concurrency")
    cat = load_catalog(catalog_dir)
    result = size(cat.model(model), cat.gpu(gpu), cat.engine(engine), quant=quant,  # type: ignore[arg-type]
                  gpus=gpus, input_len=input_len, output_len=output_len, concurrency=conc,
                  slo=SloTarget(ttft_ms, tpot_ms), kv_dtype=kv_dtype)  # type: ignore[arg-type]
    if as_json:
        emit_json(sizing_dict(result))
    else:
        from breakeven.render.terminal import print_sizing

        print_sizing(result)
