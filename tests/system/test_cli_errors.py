"""Bad input x command: every case is one line on stderr, exit 2, never a traceback.

Each row writes its bad input into the test's own folder and runs the real console entry
point in a subprocess (``run_cli``); the message must name what is wrong.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.configs import one_backend
from tests.support.paths import EXAMPLES

SEED = EXAMPLES / "seed-worked-example.yaml"
BATCH = EXAMPLES / "batch-extraction.yaml"


def _workload(tmp: Path, replace: tuple[str, str] | None = None, extra: str = "") -> str:
    text = SEED.read_text(encoding="utf-8")
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp / "w.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return str(path)


def _gateway(tmp: Path, port: int) -> str:
    store = tmp / "l.db"
    path = tmp / "g.yaml"
    path.write_text(one_backend("http://127.0.0.1:9/v1", f"sqlite:///{store}")
                    + f"port: {port}\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


Case = Callable[[Path, int], list[str]]
CASES: dict[str, tuple[Case, str]] = {
    "zero volume": (lambda t, p: ["plan", _workload(
        t, ("tokens_per_day: 5_000_000", "tokens_per_day: 0"))], "tokens_per_day"),
    "infinite volume": (lambda t, p: ["plan", _workload(
        t, ("tokens_per_day: 5_000_000", "tokens_per_day: .inf"))], "tokens_per_day"),
    "absurd volume": (lambda t, p: ["plan", _workload(
        t, ("tokens_per_day: 5_000_000", "tokens_per_day: 1e30"))], "check the units"),
    "zero --tokens-per-day": (lambda t, p: ["plan", str(SEED), "--tokens-per-day", "0"],
                              "--tokens-per-day"),
    "nan --tokens-per-day": (lambda t, p: ["plan", str(SEED), "--tokens-per-day", "nan"],
                             "--tokens-per-day"),
    "invalid date": (lambda t, p: ["plan", _workload(
        t, ("as_of: 2026-11-24", "as_of: 2026-02-30"))], "invalid date"),
    "negative gpu price": (lambda t, p: ["plan", _workload(
        t, ("h100-sxm: 3.5", "h100-sxm: -10"))], "prices.gpus.h100-sxm"),
    "duplicate key": (lambda t, p: ["plan", _workload(t, extra="month_days: 31\n")],
                      "duplicate key 'month_days'"),
    "html into a missing folder": (lambda t, p: [
        "plan", str(SEED), "--html", str(t / "nope" / "r.html")], "--html"),
    "gateway into a missing folder": (lambda t, p: [
        "plan", str(SEED), "--emit-gateway", str(t / "nope" / "g.yaml")], "--emit-gateway"),
    "catalog copy with an invalid date": (lambda t, p: _bad_catalog(t), "invalid date"),
    "report --plan with an invalid date": (lambda t, p: [
        "report", "--config", _gateway(t, 0), "--plan", _workload(
            t, ("as_of: 2026-11-24", "as_of: 2026-13-01"))], "invalid date"),
    "report --emit-workload into a missing folder": (lambda t, p: [
        "report", "--config", _gateway(t, 0), "--emit-workload",
        str(t / "nope" / "w.yaml")], "--emit-workload"),
    "gateway on a port in use": (lambda t, p: ["gateway", "--config", _gateway(t, p)],
                                 "in use"),
    "gateway on a host not here": (lambda t, p: [
        "gateway", "--config", _gateway(t, 0), "--host", "192.0.2.1"], "192.0.2.1"),
    "sim on a port in use": (lambda t, p: [
        "sim", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--port", str(p)], "in use"),
    "audit keygen into a missing folder": (lambda t, p: [
        "audit", "keygen", "--private", str(t / "nope" / "k"), "--public", str(t / "k.pub")],
        "--private"),
    "audit checkpoint into a missing folder": (lambda t, p: [
        "audit", "checkpoint", "--store", f"sqlite:///{t}/l.db", "--out",
        str(t / "nope" / "head.json")], "--out"),
    "audit export into a missing folder": (lambda t, p: [
        "audit", "export", "--store", f"sqlite:///{t}/l.db", "--out",
        str(t / "nope" / "x.jsonl")], "--out"),
    "size with a token budget vLLM refuses": (lambda t, p: [
        "size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--max-batched-tokens", "128"],
        "max_num_seqs 1,024"),
    "size with more sequences than vLLM's default budget": (lambda t, p: [
        "size", "--model", "llama-3.1-8b", "--gpu", "l4", "--max-num-seqs", "4096"],
        "max_batched_tokens 2,048"),
    "size with an expert split a stage cannot take": (lambda t, p: [
        "size", "--model", "glm-4.6", "--gpu", "h100-sxm", "--layout", "ep", "--gpus", "1"],
        "2 or more GPUs per stage"),
    "sim with more sequences than vLLM's default budget": (lambda t, p: [
        "sim", "--model", "llama-3.1-8b", "--gpu", "l4", "--max-num-seqs", "4096", "--port",
        "0"], "--max-num-seqs"),
    "sim on a host not here": (lambda t, p: [
        "sim", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--host", "192.0.2.1",
        "--port", "0"], "192.0.2.1"),
}


def _bad_catalog(tmp: Path) -> list[str]:
    from breakeven.loaders import default_catalog_dir

    copy = tmp / "catalog"
    copy.mkdir()
    for src in default_catalog_dir().glob("*.yaml"):
        (copy / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    hosted = copy / "hosted.yaml"
    text = hosted.read_text(encoding="utf-8")
    first = text.index("as_of: ") + len("as_of: ")
    hosted.write_text(text[:first] + "2026-02-31" + text[first + 10:], encoding="utf-8")
    return ["plan", str(SEED), "--catalog", str(copy)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, run_cli, tmp_path, busy_port):
    build, needle = CASES[case]
    (tmp_path / "l.db").touch()  # report reads an existing store, never creates one
    r = run_cli(*build(tmp_path, busy_port))
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert needle in lines[0], lines[0]
