"""``breakeven audit verify | checkpoint | export | keygen``: the ledger's tamper-evident
chain. Exit 0: verified; 1: a verification failure (one line naming the table and seq);
2: bad input (a store that does not exist, a key or a kept checkpoint that cannot be read)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from breakeven.cli._common import check_folder, emit_json

_store_option = click.option("--store", "store_url", required=True,
                             help="The ledger store: sqlite:///PATH or postgresql://...")


def _open(url: str) -> Any:
    from breakeven.store import open_store

    return open_store(url, create=False)  # an auditor's read never creates a store


def _close(store: Any) -> None:
    import asyncio

    async def close() -> None:
        await store.close()  # no signer is set: closing writes no checkpoint

    asyncio.run(close())


@click.group("audit")
def command() -> None:
    """Verify and export the ledger's hash chain and its signed checkpoints."""


@command.command("verify")
@_store_option
@click.option("--public-key", type=click.Path(dir_okay=False), default=None,
              help="Ed25519 public key (PEM or base64): checkpoint signatures must verify.")
@click.option("--expect", "expect_paths", type=click.Path(dir_okay=False), multiple=True,
              help="A head kept with 'audit checkpoint' (or an 'audit export' file): the "
                   "ledger must extend it (repeatable).")
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(store_url: str, public_key: str | None, expect_paths: tuple[str, ...],
               as_json: bool) -> None:
    """Walk the chain; report the first modified, deleted, inserted or reordered record, a
    checkpoint that does not match, is missing or whose signature fails, a kept head the
    ledger no longer extends, or a rollup row the chained rows do not add up to. Exit 1
    if any."""
    from breakeven.audit.check import audit_store, load_expected

    check = None
    if public_key:
        from breakeven.audit.signing import load_public_key, verifier

        check = verifier(load_public_key(public_key))
    expected = [load_expected(p) for p in expect_paths]
    store = _open(store_url)
    try:
        verdict = audit_store(store, check, expected)
    finally:
        _close(store)
    if as_json:
        emit_json(verdict.as_dict())
    else:
        _print(verdict)
    sys.exit(0 if verdict.ok else 1)


def _print(verdict: Any) -> None:
    report = verdict.report
    if not report.ok:
        where = report.table + (f" seq {report.seq}" if report.seq is not None else "")
        click.echo(f"TAMPERED: {where}: {report.problem}")
        return
    pinned = f", extends {len(verdict.expected)} kept head(s)" if verdict.expected else ""
    click.echo(f"ok: {report.records:,} records chained (head seq {verdict.head:,}), "
               f"{report.checkpoints} checkpoints ({report.signed} signatures verified), "
               f"rollup matches ({verdict.rollup_rows} rows){pinned}")
    for note in verdict.notes:
        click.echo(f"note: {note}")


@command.command("checkpoint")
@_store_option
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Where to keep the head (JSON); give it to 'audit verify --expect'.")
@click.option("--json", "as_json", is_flag=True)
def checkpoint_cmd(store_url: str, out: str, as_json: bool) -> None:
    """Keep the chain's head as seen now (seq and hash), outside the store: a later
    'audit verify --expect FILE' fails if the ledger no longer extends it."""
    import orjson

    from breakeven.audit.check import pin

    check_folder(out, "--out")
    store = _open(store_url)
    try:
        head = pin(store)
    finally:
        _close(store)
    Path(out).write_bytes(orjson.dumps(head, option=orjson.OPT_INDENT_2) + b"\n")
    if as_json:
        emit_json(head | {"out": out})
    else:
        click.echo(f"head seq {head['seq']:,} ({head['hash'][:16]}...) kept in {out}")


@command.command("export")
@_store_option
@click.option("--from", "first", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--to", "last", type=click.IntRange(min=1), default=None)
@click.option("--out", type=click.Path(dir_okay=False), required=True)
def export_cmd(store_url: str, first: int, last: int | None, out: str) -> None:
    """Records FROM..TO as JSONL (with seq, prev_hash, hash), then one line with the proof:
    the head hash before FROM and the checkpoints that cover the range."""
    import orjson

    from breakeven.audit.check import checkpoints_of
    from breakeven.errors import InputError

    if last is not None and last < first:
        raise InputError(f"--to {last} is before --from {first}: nothing to export",
                         where="--to")
    check_folder(out, "--out")
    store = _open(store_url)
    count, prev, end = 0, None, 0
    try:
        with store.snapshot() as snap, Path(out).open("wb") as f:
            for rec in snap.records():
                if rec["seq"] < first:
                    continue
                if last is not None and rec["seq"] > last:
                    break
                prev = rec["prev_hash"] if prev is None else prev
                f.write(orjson.dumps(rec) + b"\n")
                count += 1
                end = rec["seq"]
            proof = [{"seq": c.seq, "head": c.head, "ts": c.ts, "signature": c.signature,
                      "key_id": c.key_id} for c in checkpoints_of(snap) if c.seq >= end]
            f.write(orjson.dumps({"proof": {"from": first, "to": end, "prev_hash": prev,
                                            "checkpoints": proof[:1]}}) + b"\n")
    finally:
        _close(store)
    click.echo(f"{count:,} records written to {out}")


@command.command("keygen")
@click.option("--private", "private_path", type=click.Path(dir_okay=False), required=True)
@click.option("--public", "public_path", type=click.Path(dir_okay=False), required=True)
@click.option("--force", is_flag=True, help="Overwrite an existing key pair.")
def keygen_cmd(private_path: str, public_path: str, force: bool) -> None:
    """A new Ed25519 pair (base64): put the private one in the gateway's environment."""
    import os

    from breakeven.audit.signing import generate
    from breakeven.errors import InputError

    check_folder(private_path, "--private")
    check_folder(public_path, "--public")
    for path in (private_path, public_path):
        if Path(path).exists() and not force:
            raise InputError("exists already: a new pair would orphan every checkpoint "
                             "signed with the old one (pass --force to overwrite)", where=path)
    private, public = generate()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    fd = os.open(private_path, flags, 0o600)
    os.fchmod(fd, 0o600)  # an overwritten file keeps its mode otherwise
    with os.fdopen(fd, "w") as f:
        f.write(private + "\n")
    Path(public_path).write_text(public + "\n", encoding="utf-8")
    emit_json({"private": private_path, "public": public_path})
