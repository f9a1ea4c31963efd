"""``breakeven audit verify | export | keygen``: the ledger's tamper-evident chain."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from breakeven.cli._common import emit_json

_store_option = click.option("--store", "store_url", required=True,
                             help="The ledger store: sqlite:///PATH or postgresql://...")


def _open(url: str) -> Any:
    from breakeven.store import open_store

    return open_store(url)


def _checkpoints(store: Any) -> list[Any]:
    from breakeven.audit.chain import Checkpoint

    return [Checkpoint(int(seq), head, float(ts), sig, kid)
            for seq, head, ts, sig, kid in store.checkpoints()]


@click.group("audit")
def command() -> None:
    """Verify and export the ledger's hash chain and its signed checkpoints."""


@command.command("verify")
@_store_option
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 public key (PEM or base64): checkpoint signatures must verify.")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(store_url: str, public_key: str | None, as_json: bool) -> None:
    """Walk the chain; report the first modified, deleted, inserted or reordered record,
    or a checkpoint that does not match or whose signature fails. Exit 1 if any."""
    import asyncio

    from breakeven.audit.chain import verify
    from breakeven.store import chained_content

    check = None
    if public_key:
        from breakeven.audit.signing import load_public_key, verifier

        check = verifier(load_public_key(public_key))
    store = _open(store_url)
    try:
        report = verify(store.records(), chained_content,
                        _checkpoints(store), check)
    finally:
        asyncio.run(_close(store))
    if as_json:
        emit_json(report.as_dict())
    elif report.ok:
        click.echo(f"ok: {report.records:,} records chained, {report.checkpoints} "
                   f"checkpoints ({report.signed} signatures verified)")
    else:
        click.echo(f"TAMPERED: {report.problem}")
    sys.exit(0 if report.ok else 1)


async def _close(store: Any) -> None:
    await store.close()  # no signer is set: closing writes no checkpoint


@command.command("export")
@_store_option
@click.option("--from", "first", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--to", "last", type=click.IntRange(min=1), default=None)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def export_cmd(store_url: str, first: int, last: int | None, out: str) -> None:
    """Records FROM..TO as JSONL (with seq, prev_hash, hash), then one line with the proof:
    the head hash before FROM and the checkpoints that cover the range."""
    import asyncio

    import orjson

    store = _open(store_url)
    count, prev, end = 0, None, 0
    try:
        with Path(out).open("wb") as f:
            for rec in store.records():
                if rec["seq"] < first:
                    continue
                if last is not None and rec["seq"] > last:
                    break
                prev = rec["prev_hash"] if prev is None else prev
                f.write(orjson.dumps(rec) + b"\n")
                count += 1
                end = rec["seq"]
            proof = [{"seq": c.seq, "head": c.head, "ts": c.ts, "signature": c.signature,
                      "key_id": c.key_id} for c in _checkpoints(store) if c.seq >= end]
            f.write(orjson.dumps({"proof": {"from": first, "to": end, "prev_hash": prev,
                                            "checkpoints": proof[:1]}}) + b"\n")
    finally:
        asyncio.run(_close(store))
    click.echo(f"{count:,} records written to {out}")


@command.command("keygen")
@click.option("--private", "private_path", type=click.Path(dir_okay=False), required=True)
@click.option("--public", "public_path", type=click.Path(dir_okay=False), required=True)
def keygen_cmd(private_path: str, public_path: str) -> None:
    """A new Ed25519 pair (base64): put the private one in the gateway's environment."""
    import os

    from breakeven.audit.signing import generate

    private, public = generate()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private + "\n")
    Path(public_path).write_text(public + "\n", encoding="utf-8")
    emit_json({"private": private_path, "public": public_path})
