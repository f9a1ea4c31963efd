"""What a request is: its route and its data class, or the refusal. Pure.

One function for requests and batch lines alike. The order is fixed: the alias must name
a route the key may use, the route must serve the endpoint's task, the data class starts
from the key (raised, never lowered, by ``x-data-class``) and the content scan may raise
it further; a class whose rule is ``block`` is refused here, before any backend is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from breakeven.errors import ApiError
from breakeven.gateway import pii
from breakeven.gateway.call import ENDPOINT_TASK, Call
from breakeven.gateway.config import GatewayConfig, Key, Route

__all__ = ["classify", "detect", "header_class"]

log = logging.getLogger(__name__)
_STRICTEST_FIRST = ("secret", "phi", "pii")


def classify(cfg: GatewayConfig, call: Call, body: dict[str, Any],
             data_class: Callable[[], str]) -> None:
    """Set ``call.route`` and ``call.data_class`` from the body, or raise the ``ApiError``
    that refuses it: an alias the key may not use, a route of another task, a blocked
    class. ``data_class()`` gives the class before the content is scanned; it is asked
    only once the route is known, so a bad alias is reported before a bad header."""
    key = call.key
    assert key is not None
    alias = body.get("model")
    if not isinstance(alias, str):
        raise ApiError(400, "'model' is required and must be a string", "model")
    route = cfg.route(alias)
    if route is None or (key.aliases and alias not in key.aliases):
        raise ApiError(404, f"The model `{alias}` does not exist or this key may not use "
                            "it", "model", "invalid_request_error", "model_not_found",
                       rules=("alias",))
    call.route = route
    task = ENDPOINT_TASK[call.endpoint]
    if (task == "embeddings") != (route.task == "embeddings"):
        raise ApiError(400, f"route '{alias}' serves {route.task}, not /v1/{call.endpoint}",
                       "model")
    call.data_class = data_class()
    if route.detect_pii:
        call.data_class = detect(call, body, route)
    rule = cfg.classes.get(call.data_class)
    if rule is not None and rule.action == "block":
        found = f" (found: {', '.join(call.trace.found)})" if call.trace.found else ""
        raise ApiError(400, f"route '{alias}' does not accept data of class "
                            f"'{call.data_class}'{found}", "messages",
                       code="sensitive_data_blocked", rules=("blocked_class",))
    call.pseudonymise = rule is not None and rule.action == "pseudonymise"


def detect(call: Call, body: dict[str, Any], route: Route) -> str:
    """The class the content calls for: a ``general`` request is raised to the strictest
    class its findings map to; a key's sensitive class is never relaxed. The types found
    (never the values) go into the trace. A detector error fails closed: the request is
    treated as ``pii`` and the trace says ``DETECTOR_ERROR``."""
    try:
        findings = pii.scan(body)
    except Exception:  # a bug in the detector must not let the request out unscanned
        log.exception("PII detector failed; treating the request as pii")
        call.trace.found = ["DETECTOR_ERROR"]
        return "pii" if call.data_class == "general" else call.data_class
    if not findings:
        return call.data_class
    kinds = sorted({f.type for f in findings})
    call.trace.found = kinds
    if call.data_class != "general":
        return call.data_class
    classes = {route.pii_classes.get(k, "pii") for k in kinds}
    for cls in _STRICTEST_FIRST:
        if cls in classes:
            return cls
    return sorted(classes)[0]


def header_class(cfg: GatewayConfig, key: Key, wanted: str | None) -> str:
    """The class a request starts with: the key's, or ``x-data-class`` on a ``general``
    key (a key bound to another class cannot change it)."""
    if not wanted or wanted == key.data_class:
        return key.data_class
    if wanted not in cfg.classes:
        raise ApiError(400, f"unknown data class '{wanted}' in x-data-class (known: "
                            f"{', '.join(cfg.classes)})", "x-data-class")
    if key.data_class != "general":
        raise ApiError(403, f"key '{key.name}' is bound to data class '{key.data_class}' "
                            f"and cannot send '{wanted}'", "x-data-class", "permission_error",
                       rules=("data_class",))
    return wanted
