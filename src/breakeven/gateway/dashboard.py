"""``/dashboard`` (the page) and ``/admin/report`` (its figures, admin key), registered by
the app. The page holds no data: it asks for the admin key and fetches the report,
so it is served to anyone; the report is the same JSON as ``breakeven report --json``.
``since`` reaches back at most ``limits.report_max_days``, and at most ``_WINDOWS``
reports are cached, so neither a huge window nor many windows grow the gateway."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from breakeven.errors import ApiError, InputError
from breakeven.gateway.state import SERVICES
from breakeven.render.report_html import dashboard_html
from breakeven.report.run import parse_time, report

__all__ = ["admin_report", "page"]

_PLANNER_S = 60.0
_WINDOWS = 16  # reports kept (one per 'since' asked), at most
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'")


async def page(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    return web.Response(text=dashboard_html(gw.cfg.dashboard.refresh_s),
                        content_type="text/html",
                        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store",
                                 "X-Content-Type-Options": "nosniff"})


async def admin_report(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    gw.auth.admin(request.headers)
    text = request.query.get("since", "7d")
    now = time.time()
    try:
        since = parse_time(text, now, "since")
    except InputError as exc:
        raise ApiError(400, str(exc), "since") from None
    if since >= now:
        raise ApiError(400, f"since must be in the past (got {text!r})", "since")
    most = gw.cfg.limits.report_max_days
    if not since >= now - most * 86400:  # NaN and -inf too
        raise ApiError(400, f"since reaches back more than {most} days (limits."
                            f"report_max_days; got {text[:40]!r})", "since")
    cached = gw.reports.get(text)
    # reports are computed at most every refresh_s / 2 per window, so many open pages
    # (or a reload loop) cost the gateway one report, not one each
    if cached is None or now - cached[0] >= gw.cfg.dashboard.refresh_s / 2:
        # the planner's rerun on the observed traffic changes slowly and costs ~0.5 s of
        # CPU: once a minute per window, not on every refresh
        planner, planned_at = None, now
        if cached is not None and now - cached[2] < _PLANNER_S:
            planner, planned_at = cached[1]["counterfactuals"]["planner"], cached[2]
        data, _ = await asyncio.to_thread(report, gw.store, gw.basis, since, now, planner)
        if text not in gw.reports and len(gw.reports) >= _WINDOWS:  # the oldest goes
            del gw.reports[min(gw.reports, key=lambda k: gw.reports[k][0])]
        gw.reports[text] = cached = (now, data, planned_at)
    return web.json_response(cached[1], headers={"Cache-Control": "no-store"})
