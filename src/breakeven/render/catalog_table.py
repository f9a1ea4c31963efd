"""``breakeven catalog`` tables: compact by default (readable at 80 columns), ``--wide`` for
every field, one row by id, and each row's age in days from today."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["COMPACT", "print_catalog", "print_row"]


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if 0 < abs(value) < 0.1:
            return f"{value:.4g}"
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def _tokens(value: Any) -> str:
    if not isinstance(value, int):
        return "-"
    if value >= 1_000_000:
        return f"{value / 1_048_576:.0f}M" if value % 1_048_576 == 0 else f"{value / 1e6:.1f}M"
    return f"{value // 1024}k" if value % 1024 == 0 else f"{value / 1000:.0f}k"


def _batch(row: dict[str, Any]) -> str:
    """The Batch API's prices: "1/2" when they are half the standard ones (the usual case)."""
    bin_, bout = row.get("batch_input_per_mtok"), row.get("batch_output_per_mtok")
    if bin_ is None or bout is None:
        return "-"
    if abs(bin_ * 2 - row["input_per_mtok"]) < 1e-9 and abs(
            bout * 2 - row["output_per_mtok"]) < 1e-9:
        return "1/2"
    return f"{_num(bin_)}/{_num(bout)}"


def _hosted_id(row: dict[str, Any]) -> str:
    return str(row["id"]) + (" x" if row.get("retired") else "")


Column = tuple[str, Callable[[dict[str, Any]], str]]
_TIER: dict[Any, str] = {"frontier": "F", "high": "H", "mid": "M", "small": "S"}

# table -> (header, cell) for the compact view; as_of and age are added to every table
COMPACT: dict[str, list[Column]] = {
    "gpus": [("id", lambda r: r["id"]), ("GiB", lambda r: _num(r["memory_gib"])),
             ("GB/s", lambda r: _num(r["bandwidth_gbs"])),
             ("bf16", lambda r: _num(r["bf16_tflops"])), ("fp8", lambda r: _num(r["fp8_tflops"])),
             ("fp4", lambda r: _num(r.get("fp4_tflops"))), ("link", lambda r: r["interconnect"])],
    "offers": [("gpu", lambda r: r["gpu"]), ("provider", lambda r: r["provider"]),
               ("region", lambda r: r["region"]), ("pricing", lambda r: r["pricing"]),
               ("$/GPU-h", lambda r: _num(r["usd_per_gpu_hour"])),
               ("min", lambda r: str(r["min_gpus"]))],
    "models": [("id", lambda r: r["id"]), ("params", lambda r: _num(r["params_b"])),
               ("active", lambda r: _num(r["active_params_b"])),
               ("ctx", lambda r: _tokens(r["max_context"])),
               ("weights", lambda r: (r.get("native_format") or r["native_quant"]).split()[0]
                .rstrip(","))],
    "hosted": [("id", _hosted_id), ("in", lambda r: _num(r["input_per_mtok"])),
               ("out", lambda r: _num(r["output_per_mtok"])),
               ("cache", lambda r: _num(r["cached_input_per_mtok"])), ("batch", _batch),
               ("ctx", lambda r: _tokens(r["context_window"]))],
    "engines": [("id", lambda r: r["id"]), ("prod", lambda r: "yes" if r["production"] else "no"),
                ("mbu", lambda r: _num(r["mbu"])), ("mfu", lambda r: _num(r["mfu"]))],
    "quality": [("model", lambda r: r["model"])] + [
        (head, (lambda t: lambda r: _TIER.get(r.get(t), "-"))(task))
        for head, task in (("chat", "chat"), ("code", "code"), ("reas.", "reasoning"),
                           ("long", "long_context"), ("emb.", "embeddings"))],
}
_KEYS = {"offers": None, "quality": "model"}


def _age(row: dict[str, Any], today: date) -> str:
    return str((today - date.fromisoformat(str(row["as_of"]))).days)


def print_catalog(name: str, rows: list[dict[str, Any]], *, today: date, wide: bool = False,
                  max_age_days: int | None = None, console: Console | None = None) -> None:
    """One table. Compact: the figures that matter, ``as_of`` and ``age`` (days); ``wide``:
    every field. Ids are never cut (they fold onto a second line at worst)."""
    con = console or Console()
    if not rows:
        return
    if wide and console is None:  # every field: as wide as it takes (pipe to `less -S`)
        con = Console(width=max(con.width, 250))
    if wide:
        fields = [c for c in rows[0] if c != "source"] + ["source"]
        columns: list[Column] = [(f, (lambda k: lambda r: _num(r.get(k)))(f)) for f in fields]
    else:
        columns = list(COMPACT[name])
    columns += [("as_of", lambda r: str(r["as_of"])), ("age", lambda r: _age(r, today))]
    title = name if max_age_days is None else f"{name} (age in days on {today.isoformat()})"
    # SIMPLE_HEAD's column edges are single spaces: no padding needed, 80 columns go further
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), pad_edge=False)
    if name == "quality" and not wide:
        table.caption = "F frontier, H high, M mid, S small (--wide for the basis and source)"
    if name == "hosted" and not wide:
        table.caption = ("USD per million tokens; batch 1/2: half price; x: retired "
                         "(see `catalog check`)")
    first = columns[0][0]
    width = max(len(columns[0][1](r)) for r in rows)
    for header, _ in columns:
        numeric = header not in ("id", "gpu", "provider", "region", "pricing", "model",
                                 "link", "weights", "as_of", "source") and not wide
        table.add_column(header, justify="right" if numeric else "left",
                         no_wrap=header != "source",
                         min_width=width if header == first else None,
                         overflow="fold", max_width=40 if header == "source" else None)
    for r in rows:
        table.add_row(*(cell(r) for _, cell in columns))
    con.print(table)


def print_row(name: str, row: dict[str, Any], *, today: date,
              console: Console | None = None) -> None:
    """One row, every field on its own line (``breakeven catalog hosted ID``)."""
    con = console or Console()
    key = _KEYS.get(name, "id") or "gpu"
    table = Table(title=f"{name} {row.get(key)}", show_header=False, pad_edge=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for field, value in row.items():
        table.add_row(field, _cell(value))
    table.add_row("age", f"{_age(row, today)} days")
    con.print(table)


def _cell(value: Any) -> str:
    """A field's value in a row's table: lists joined, a mapping as key=value pairs (those
    set, its source last), a list of mappings (an engine's releases) one per line."""
    if isinstance(value, dict):  # what it says first, where it comes from last
        keys = sorted(value, key=lambda k: k in ("source", "as_of"))
        return ", ".join(f"{k}={value[k]}" for k in keys if value[k] is not None)
    if isinstance(value, list):
        if all(isinstance(v, dict) for v in value) and value:
            return "\n".join(_cell(v) for v in value)
        return ", ".join(map(str, value))
    return _num(value)
