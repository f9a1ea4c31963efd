"""The detector on its hand-written labelled corpus (tests/data/pii, written by
benchmarks/pii_corpus_make.py): per type, recall and precision >= 0.97 on the dev set
and on the held-out set, and clean look-alike text almost never flagged."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from breakeven.gateway.pii import detect

DATA = Path(__file__).resolve().parent.parent / "data" / "pii"


def _rows(name: str) -> list[dict[str, object]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.mark.parametrize("name", ["dev.jsonl", "heldout.jsonl"])
def test_recall_and_precision_per_type(name: str) -> None:
    labelled: dict[str, int] = defaultdict(int)
    found: dict[str, int] = defaultdict(int)
    flagged: dict[str, int] = defaultdict(int)
    true: dict[str, int] = defaultdict(int)
    for row in _rows(name):
        text = str(row["text"])
        spans = [(int(a), int(b), str(t)) for a, b, t in row["spans"]]  # type: ignore[attr-defined]
        findings = detect(text)
        for a, b, t in spans:
            labelled[t] += 1
            found[t] += any(f.type == t and f.start <= a and b <= f.end for f in findings)
        for f in findings:
            flagged[f.type] += 1
            true[f.type] += any(t == f.type and f.start < b and a < f.end for a, b, t in spans)
    assert len(labelled) >= 19 and min(labelled.values()) >= 40
    recall = {t: found[t] / labelled[t] for t in labelled}
    precision = {t: true[t] / flagged[t] for t in flagged}
    assert {t: r for t, r in recall.items() if r < 0.97} == {}
    assert {t: p for t, p in precision.items() if p < 0.97} == {}


def test_clean_text_is_not_flagged() -> None:
    rows = _rows("clean.jsonl")
    dirty = [(row["text"], detect(str(row["text"]))) for row in rows]
    dirty = [d for d in dirty if d[1]]
    assert len(rows) >= 400
    assert len(dirty) <= len(rows) // 100, dirty[:5]
