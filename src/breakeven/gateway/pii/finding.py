"""What the detector reports: a typed span of the original text. Pure."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding", "dedupe"]


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    confidence: float


def dedupe(found: list[Finding]) -> list[Finding]:
    """At most one finding per span, in text order: a finding inside a longer or earlier
    one is dropped; of equal spans the more confident wins."""
    if len(found) < 2:
        return found
    out: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start), -f.confidence)):
        if out and f.start < out[-1].end:
            if f.end > out[-1].end and f.confidence > out[-1].confidence:
                # a partial overlap: keep both values covered under the stronger type
                out[-1] = Finding(f.type, out[-1].start, f.end, f.confidence)
            elif f.end > out[-1].end:
                out[-1] = Finding(out[-1].type, out[-1].start, f.end, out[-1].confidence)
            continue
        out.append(f)
    return out
