"""Prometheus text exposition: histograms and labelled counters, no client library."""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterator

__all__ = ["BUCKETS", "Counter", "Histogram", "samples"]

_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.){0,1024})"')

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
           60.0, 120.0)


class Histogram:
    """A Prometheus histogram with fixed buckets (seconds by default)."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.n += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out, running = [f"# TYPE {name} histogram"], 0
        for bound, count in zip((*self.buckets, "+Inf"), self.counts, strict=True):
            running += count
            out.append(f'{name}_bucket{{{labels},le="{bound}"}} {running}')
        out += [f"{name}_sum{{{labels}}} {self.total}", f"{name}_count{{{labels}}} {self.n}"]
        return out


class Counter:
    """A counter family keyed by label tuples."""

    def __init__(self, name: str, labels: tuple[str, ...], kind: str = "counter") -> None:
        self.name = name
        self.labels = labels
        self.kind = kind
        self.values: dict[tuple[str, ...], float] = {}

    def add(self, *labels: str, value: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + value

    def lines(self) -> list[str]:
        out = [f"# TYPE {self.name} {self.kind}"]
        for labels, value in sorted(self.values.items()):
            pairs = ",".join(f'{k}="{v}"' for k, v in zip(self.labels, labels, strict=True))
            out.append(f"{self.name}{{{pairs}}} {value:g}")
        return out


def samples(text: str, name: str) -> Iterator[tuple[dict[str, str], float]]:
    """The samples of the metric ``name`` in Prometheus text, as (labels, value): a metric
    whose name only begins with ``name`` (vLLM's ``vllm:num_requests_waiting_by_reason``
    beside ``vllm:num_requests_waiting``) is another metric, and a line whose value is not
    a finite number is skipped."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        labels: dict[str, str] = {}
        if rest.startswith("{"):
            end = rest.rfind("}")
            if end < 0:
                continue
            labels = dict(_LABEL.findall(rest[1:end]))
            rest = rest[end + 1:]
        elif not rest.startswith(" "):
            continue
        try:
            value = float(rest.split()[0])
        except (IndexError, ValueError):
            continue
        if math.isfinite(value):
            yield labels, value
