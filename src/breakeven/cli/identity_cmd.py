"""``breakeven identity hash DIR`` and ``breakeven identity fingerprint``."""

from __future__ import annotations

import json
import os

import click

from breakeven.cli._common import emit_json, write_output


@click.group("identity")
def command() -> None:
    """Pin a self-hosted model: its weights digest and a behavioural fingerprint."""


@command.command("hash")
@click.argument("directory", type=click.Path(file_okay=False))
def hash_cmd(directory: str) -> None:
    """SHA-256 of a model directory's weights, config and tokenizer files."""
    from breakeven.errors import InputError
    from breakeven.gateway.identity import weights_digest

    try:
        digest, files = weights_digest(directory)
    except (OSError, NotADirectoryError) as exc:
        raise InputError(f"cannot read the model directory: {exc}", where=directory) from None
    if not files:
        raise InputError("no weights, config or tokenizer files found", where=directory)
    emit_json({"weights_digest": digest, "files": files})


@command.command("fingerprint")
@click.option("--url", required=True, help="The backend's base URL, ending in /v1.")
@click.option("--model", required=True, help="The model name it serves.")
@click.option("--api-key-env", default=None, metavar="VAR")
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def fingerprint_cmd(url: str, model: str, api_key_env: str | None, out: str) -> None:
    """Send the fixed probes greedily and write the answers as the pinned fingerprint."""
    import asyncio

    import aiohttp

    from breakeven.errors import InputError, UpstreamError
    from breakeven.gateway import identity, upstream
    from breakeven.gateway.config import Backend

    backend = Backend(name="probe", url=url, model=model, hosting="self", api_key_env=api_key_env,
                      gpu={"gpu": "unknown", "usd_per_gpu_hour": 0, "capacity_tokens_per_s": 1})
    if api_key_env and not os.environ.get(api_key_env):
        raise InputError(f"environment variable {api_key_env} is not set", where="--api-key-env")

    async def run() -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            return [(await upstream.complete(session, backend, "chat/completions",
                                             identity.probe_body(model, p), model)).body
                    for p in identity.PROBES]

    try:
        answers = asyncio.run(run())
    except UpstreamError as exc:
        raise InputError(str(exc), where=url) from None
    pinned = identity.fingerprint(answers)
    write_output(out, json.dumps(pinned, indent=2) + "\n", "--out")
    click.echo(f"fingerprint {pinned['digest'][:16]} of {model} at {url} written to {out}")
