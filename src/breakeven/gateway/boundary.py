"""The boundary a gateway config enforces, and its problems, before anything starts. Pure.

For every route and data class: which backends may serve it and why the others may not
(the same ``policy.choose`` the gateway runs, on healthy backends). Problems stop the
gateway (an upstream key variable that is not set, an Anthropic backend on an embeddings
route or with ``serves_responses``, an unknown class in ``responses.never_store``);
warnings do not (a data class that no backend of a route may serve, a hosted backend that
trains on or keeps your data, no client keys, an unsigned audit chain).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.policy import BackendState, choose

__all__ = ["Boundary", "boundary"]


@dataclass(frozen=True)
class Boundary:
    rows: tuple[tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]], ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...]


def boundary(cfg: GatewayConfig, env: Mapping[str, str]) -> Boundary:
    rows, problems, warnings = _routes(cfg)
    problems += _backend_keys(cfg, env) + cfg.telemetry.problems(env) + _responses(cfg)
    warnings += _data_terms(cfg) + _key_regions(cfg)
    for name, rule in cfg.classes.items():
        if rule.action == "block":
            warnings.append(f"data class '{name}' is blocked: requests found to carry it are "
                            "refused with a 400")
    if cfg.audit.signing_key_env is None:
        warnings.append("AUDIT CHAIN UNSIGNED (audit.signing_key_env is not set): anyone who "
                        "can write the store can rewrite the ledger and rehash it, and "
                        "'breakeven audit verify' will still say ok; create a key with "
                        "'breakeven audit keygen' and set audit.signing_key_env "
                        "(require_signing: true makes it mandatory)")
    if not cfg.keys:
        warnings.append("no client keys: the gateway accepts anonymous requests as data "
                        "class 'general'")
    return Boundary(tuple(rows), tuple(problems), tuple(warnings))


_Row = tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]


def _routes(cfg: GatewayConfig) -> tuple[list[_Row], list[str], list[str]]:
    """Per route and class, who may serve it; routes no backend can serve as asked."""
    states = {b.name: BackendState() for b in cfg.backends}
    rows: list[_Row] = []
    problems: list[str] = []
    warnings: list[str] = []
    for route in cfg.routes:
        refused = []
        for cls in cfg.classes:
            choice = choose(cfg, route, cls, (), states, 0.0)
            rows.append((route.alias, cls, choice.candidates,
                         tuple((b, why) for b, _, why in choice.skipped)))
            if not choice.candidates:
                refused.append(cls)
        if refused:
            warnings.append(f"route '{route.alias}': requests of data class "
                            f"{', '.join(refused)} will be refused (no backend may serve them)")
        if route.regions and not any(cfg.backend(n).region in route.regions
                                     for n in route.backends):
            problems.append(f"route '{route.alias}' requires regions "
                            f"{', '.join(route.regions)} but none of its backends is in them")
        if route.task == "embeddings":
            problems += [f"route '{route.alias}' serves embeddings but backend '{name}' "
                         f"speaks the {cfg.backend(name).kind.capitalize()} API, which has none"
                         for name in route.backends
                         if not cfg.backend(name).serves("embeddings")]
    return rows, problems, warnings


def _backend_keys(cfg: GatewayConfig, env: Mapping[str, str]) -> list[str]:
    return [f"backend '{b.name}': environment variable {b.api_key_env} (its API key) is "
            "not set" for b in cfg.backends if b.api_key_env and not env.get(b.api_key_env)]


def _responses(cfg: GatewayConfig) -> list[str]:
    """The Responses API's settings: a passthrough only an OpenAI-wire API has, classes
    that exist."""
    out = [f"backend '{b.name}': serves_responses is for OpenAI-wire backends (kind "
           f"openai), not kind {b.kind}" for b in cfg.backends
           if b.serves_responses and b.kind != "openai"]
    out += [f"responses.never_store names unknown data class '{c}' (known: "
            f"{', '.join(cfg.classes)})" for c in cfg.responses.never_store
            if c not in cfg.classes]
    return out


def _data_terms(cfg: GatewayConfig) -> list[str]:
    out = []
    for b in cfg.backends:
        if b.hosting == "hosted" and not b.no_train:
            out.append(f"backend '{b.name}' may train on the data it receives "
                       "(no_train: false)")
        if b.hosting == "hosted" and b.retention_days:
            out.append(f"backend '{b.name}' keeps requests for {b.retention_days} days")
    return out


def _key_regions(cfg: GatewayConfig) -> list[str]:
    out = []
    for key in cfg.keys:
        for alias in (key.aliases or tuple(r.alias for r in cfg.routes)) if key.regions else ():
            target = cfg.route(alias)
            if target is not None and not any(cfg.backend(n).region in key.regions
                                              for n in target.backends):
                out.append(f"key '{key.name}' requires regions {', '.join(key.regions)}: "
                           f"route '{alias}' has no backend there and will refuse it")
    return out
