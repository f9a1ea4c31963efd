"""What a request is: its route and its data class, or the refusal. Pure.

One function for requests and batch lines alike, and one boundary decision: the alias must
name a route the key may use, the route must serve the endpoint's task, and the data class
is the combination of every class in force - the key's, ``x-data-class`` (which may raise
it, never lower it), and what the content scan finds (``scan``), whatever the key or
header said. Classes combine by the stricter rule (hostings and regions intersect, the
strictest action wins: ``config.strictest``), so a class allowed on hosted backends never
switches the scan off. A class whose rule is ``block`` is refused here, before any backend
is asked; the same class then governs every attempt, fallback, cascade and batch line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from breakeven.errors import ApiError
from breakeven.gateway.call import ENDPOINT_TASK, Call
from breakeven.gateway.config import UNMASKABLE, GatewayConfig, Key, Route
from breakeven.gateway.scan import Scanned, scan

__all__ = ["classify", "content_classes", "header_class"]

_HEADER = "x-data-class"


def classify(cfg: GatewayConfig, call: Call, body: dict[str, Any],
             data_class: Callable[[], str], scanned: Scanned | None = None) -> None:
    """Set ``call.route`` and ``call.data_class`` from the body, or raise the ``ApiError``
    that refuses it: an alias the key may not use, a route of another task, a blocked
    class. ``data_class()`` gives the class the caller declared (key and header); it is
    asked only once the route is known, so a bad alias is reported before a bad header.
    ``scanned``: the content scan when the caller ran it already (off the event loop).
    A class that would pseudonymise is made ``unmaskable`` (self-hosted only) when the
    content holds what placeholders cannot replace: a value split over several strings,
    or token ids."""
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
    classes = [data_class()]
    unmaskable = False
    if route.detect_pii:
        found = scan(body) if scanned is None else scanned
        classes += content_classes(call, found, route)
        unmaskable = found.split or bool(found.unscannable)
    call.data_class = cfg.combine(*classes)
    rule = cfg.rule(call.data_class)
    if rule is not None and rule.action == "pseudonymise" and unmaskable:
        # placeholders cannot replace a value split over strings, or token ids
        call.data_class = cfg.combine(call.data_class, UNMASKABLE)
        rule = cfg.rule(call.data_class)
    if rule is None:  # a class the config no longer has (a batch created before a reload)
        raise ApiError(400, f"unknown data class '{call.data_class}' (known: "
                            f"{', '.join(cfg.classes)})", "x-data-class")
    if rule.action == "block":
        types = f" (found: {', '.join(call.trace.found)})" if call.trace.found else ""
        raise ApiError(400, f"route '{alias}' does not accept data of class "
                            f"'{call.data_class}'{types}", "messages",
                       code="sensitive_data_blocked", rules=("blocked_class",))
    call.pseudonymise = rule.action == "pseudonymise"


def content_classes(call: Call, found: Scanned, route: Route) -> list[str]:
    """The classes the content calls for: each finding's (``route.pii_classes``, ``pii``
    by default) and the route's ``unscannable_class`` for token ids. The types found
    (never the values) go into the trace. A detector error fails closed: ``pii``, and the
    trace says ``DETECTOR_ERROR``."""
    if found.error:
        call.trace.found = ["DETECTOR_ERROR"]
        return ["pii"]
    call.trace.found = found.types
    call.secrets = found.values
    classes = [route.pii_classes.get(t, "pii") for t in found.types]
    if found.unscannable:
        call.trace.found = [*call.trace.found, "TOKEN_IDS"]
        classes.append(route.unscannable_class)
    return classes


def header_class(cfg: GatewayConfig, key: Key, headers: Mapping[str, str]) -> str:
    """The class a caller declares: the key's, raised (never lowered) by ``x-data-class``.
    A header that names an unknown class, or more than one (repeated, or a list), is a
    400; one that would relax a key's class is a 403."""
    sent = headers.getall(_HEADER, []) if hasattr(headers, "getall") else (
        [headers[_HEADER]] if _HEADER in headers else [])
    values = [v.strip() for header in sent for v in header.split(",") if v.strip()]
    if len(values) > 1:  # repeated, or a list in one header: which one would hold?
        raise ApiError(400, f"x-data-class must name one class; got {len(values)} "
                            f"({', '.join(values)})", "x-data-class")
    wanted = values[0] if values else ""
    if not wanted or wanted == key.data_class:
        return key.data_class
    if wanted not in cfg.classes:
        raise ApiError(400, f"unknown data class '{wanted}' in x-data-class (known: "
                            f"{', '.join(cfg.classes)})", "x-data-class")
    combined = cfg.combine(key.data_class, wanted)
    if combined == key.data_class:  # the header asks for less than the key holds
        raise ApiError(403, f"key '{key.name}' is bound to data class '{key.data_class}' "
                            f"and cannot send '{wanted}'", "x-data-class", "permission_error",
                       rules=("data_class",))
    return combined
