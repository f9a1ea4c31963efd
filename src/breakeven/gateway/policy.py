"""Which backends may serve a request, in which order, and why the others may not. Pure.

The rules, applied to every candidate on every attempt (fallback and cascade included):

1. **data class**: the class's rule lists the hostings it may reach (``pii``, ``phi`` and
   ``secret`` default to self-hosted only) and, optionally, regions;
2. **residency**: the key's, the route's and the class's regions, when given, must all
   contain the backend's region;
3. **identity**: a backend whose pinned identity drifted is skipped (``on_drift: block``);
4. **health**: a backend whose circuit is open (too many consecutive failures) is skipped
   until its cooldown ends, then probed with one request; one marked unready (it refused
   the gateway's key, URL or model) is skipped until the readiness probe finds it right;
5. **capacity**: a backend at its concurrency limit is skipped.

Backends serving the same upstream model the same way are replicas: they keep their place
in the route's order as a group, and within the group the one with the fewest outstanding
requests goes first.
"""

from __future__ import annotations

from dataclasses import dataclass

from breakeven.gateway.config import Backend, GatewayConfig, Route

__all__ = ["BackendState", "Choice", "choose"]

_HOSTING = {"self": "self-hosted", "hosted": "hosted"}


@dataclass
class BackendState:
    """What the gateway knows of one backend right now (mutated by the app)."""

    outstanding: int = 0
    failures: int = 0  # consecutive
    open_until: float = 0.0
    probing: bool = False
    drifted: str | None = None  # why the pinned identity no longer matches (blocks routing)
    # what the backend said when it refused the gateway's own config (401/403/404):
    # skipped until a probe finds it right again
    unready: str | None = None

    def failed(self, now: float, threshold: int, cooldown_s: float) -> bool:
        """Count a failure; True when it opened the circuit."""
        self.failures += 1
        self.probing = False
        if self.failures >= threshold:
            self.open_until = now + cooldown_s
            return True
        return False

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.probing = False


@dataclass(frozen=True)
class Choice:
    candidates: tuple[str, ...]
    skipped: tuple[tuple[str, str, str], ...]  # (backend, rule, why)

    def why_none(self, route: Route, data_class: str) -> str:
        reasons = "; ".join(f"{name}: {why}" for name, _, why in self.skipped)
        return (f"no backend may serve route '{route.alias}' for data class '{data_class}'"
                + (f" ({reasons})" if reasons else ""))


def _regions(*sets: tuple[str, ...]) -> set[str] | None:
    allowed: set[str] | None = None
    for regions in sets:
        if regions:
            allowed = set(regions) if allowed is None else allowed & set(regions)
    return allowed


def _replica_key(b: Backend) -> tuple[str, str, str]:
    return (b.kind, b.model, b.hosting)


def choose(cfg: GatewayConfig, route: Route, data_class: str, key_regions: tuple[str, ...],
           states: dict[str, BackendState], now: float,
           among: tuple[str, ...] | None = None) -> Choice:
    """Eligible backends of ``route`` (or of ``among``, a cascade stage) in the order to try."""
    rule = cfg.rule(data_class)
    allowed = _regions(key_regions, route.regions, rule.regions if rule else ())
    groups: dict[tuple[str, str, str], list[str]] = {}
    skipped: list[tuple[str, str, str]] = []
    for name in among or route.backends:
        b = cfg.backend(name)
        state = states[name]
        if rule is None:
            skipped.append((name, "data_class", f"unknown data class '{data_class}'"))
        elif b.hosting not in rule.hosting:
            only = " or ".join(_HOSTING[h] for h in rule.hosting) or "no"
            skipped.append((name, "data_class", f"data class '{data_class}' may reach {only} "
                                                f"backends only; {name} is {_HOSTING[b.hosting]}"))
        elif allowed is not None and b.region not in allowed:
            skipped.append((name, "residency", f"region {b.region} is not in "
                                  f"{', '.join(sorted(allowed)) or 'the empty set'}"))
        elif state.drifted is not None:
            skipped.append((name, "identity", f"identity drifted: {state.drifted}"))
        elif state.unready is not None:
            skipped.append((name, "unready", f"unready until a probe succeeds: "
                                             f"{state.unready}"))
        elif state.open_until > now:
            skipped.append((name, "circuit", f"circuit open after {state.failures} failures "
                                  f"(probed again in {state.open_until - now:.0f} s)"))
        elif state.open_until and state.probing:
            skipped.append((name, "circuit", "circuit half-open: a probe request is in flight"))
        elif state.outstanding >= b.max_concurrency:
            skipped.append((name, "capacity", f"at its concurrency limit ({b.max_concurrency})"))
        else:
            groups.setdefault(_replica_key(b), []).append(name)
    ordered: list[str] = []
    for members in groups.values():
        ordered += sorted(members, key=lambda n: states[n].outstanding)
    return Choice(tuple(ordered), tuple(skipped))
