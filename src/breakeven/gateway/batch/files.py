"""The OpenAI Batch API's formats: an input file checked line by line, and the file, batch
and result-line objects returned. Pure.

An input line is ``{"custom_id": ..., "method": "POST", "url": ENDPOINT, "body": {...}}``;
``body.model`` names a gateway route, as in any request. A line that cannot run (not JSON,
missing or repeated ``custom_id``, another endpoint, ``stream: true``) is reported in the
error file with its line number and the others still run (OpenAI refuses the whole file
instead); a file that is not JSONL at all, is empty or has too many lines fails the batch.
Completion windows: OpenAI's ``24h``, and, as an extension, any ``N`` m/h/d.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["ENDPOINTS", "Line", "LineError", "batch_object", "error_line", "file_object",
           "output_line", "parse", "window_s"]

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/completions")
_UNITS = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Line:
    line_no: int  # 1-based, as an editor shows it
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LineError:
    line_no: int
    custom_id: str | None
    code: str
    message: str


def window_s(text: Any) -> float | None:
    """Seconds in a completion window (``24h``, ``90m``, ``2d``), None if malformed."""
    m = re.fullmatch(r"(\d{1,5})([mhd])", text) if isinstance(text, str) else None
    return float(m.group(1)) * _UNITS[m.group(2)] if m and int(m.group(1)) > 0 else None


def parse(content: bytes, endpoint: str, max_lines: int
          ) -> tuple[list[Line], list[LineError], str | None]:
    """The runnable lines, the per-line errors, and a fatal problem with the whole file."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [], f"the input file is not UTF-8 text (byte {exc.start})"
    raw = [(i + 1, s) for i, s in enumerate(text.split("\n")) if s.strip()]
    if not raw:
        return [], [], "the input file has no lines"
    if len(raw) > max_lines:
        return [], [], f"the input file has {len(raw):,} lines; at most {max_lines:,} allowed"
    lines: list[Line] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    objects = 0
    for no, s in raw:
        try:
            item = orjson.loads(s)
        except orjson.JSONDecodeError as exc:
            errors.append(LineError(no, None, "invalid_json", f"line {no} is not JSON: {exc}"))
            continue
        if not isinstance(item, dict):
            errors.append(LineError(no, None, "invalid_request",
                                    f"line {no} must be a JSON object"))
            continue
        objects += 1
        cid = item.get("custom_id")
        problem = _line_problem(item, seen, endpoint)
        if not isinstance(cid, str) or not cid:
            cid = None
        if problem is not None:
            errors.append(LineError(no, cid, "invalid_request", f"line {no}: {problem}"))
            continue
        assert isinstance(cid, str)
        seen.add(cid)
        lines.append(Line(no, cid, item["body"]))
    if objects == 0:
        return [], errors, f"the input file is not JSONL: {errors[0].message}"
    return lines, errors, None


def _line_problem(item: dict[str, Any], seen: set[str], endpoint: str) -> str | None:
    """What is wrong with one batch line, or None."""
    cid = item.get("custom_id")
    if not isinstance(cid, str) or not cid:
        return "'custom_id' must be a non-empty string"
    if cid in seen:
        return f"'custom_id' {cid!r} is repeated (each must be unique)"
    if item.get("method") != "POST":
        return f"'method' must be \"POST\" (got {item.get('method')!r})"
    if item.get("url") != endpoint:
        return f"'url' must be the batch's endpoint {endpoint} (got {item.get('url')!r})"
    body = item.get("body")
    if not isinstance(body, dict):
        return "'body' must be a JSON object (the request)"
    if not isinstance(body.get("model"), str):
        return "'body.model' must name a route"
    if body.get("stream"):
        return "'body.stream' must be false in a batch"
    return None


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "file", "bytes": row["bytes"],
            "created_at": int(row["created_at"]), "filename": row["filename"],
            "purpose": row["purpose"], "status": "processed",
            "expires_at": int(row["expires_at"]) if row.get("expires_at") else None,
            "status_details": None}


def batch_object(row: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """A batch as OpenAI returns it; ``counts``: total, completed, failed."""
    errors = orjson.loads(row["errors"]) if row.get("errors") else None

    def at(name: str) -> int | None:
        value = row.get(name)
        return int(value) if value is not None else None

    return {
        "id": row["id"], "object": "batch", "endpoint": row["endpoint"],
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": row["input_file_id"], "completion_window": row["completion_window"],
        "status": row["status"], "output_file_id": row.get("output_file_id"),
        "error_file_id": row.get("error_file_id"), "created_at": at("created_at"),
        "in_progress_at": at("in_progress_at"), "expires_at": at("expires_at"),
        "finalizing_at": at("finalizing_at"), "completed_at": at("completed_at"),
        "failed_at": at("failed_at"), "expired_at": at("expired_at"),
        "cancelling_at": at("cancelling_at"), "cancelled_at": at("cancelled_at"),
        "request_counts": counts,
        "metadata": orjson.loads(row["metadata"]) if row.get("metadata") else None,
    }


def output_line(custom_id: str, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"batch_req_{request_id}", "custom_id": custom_id,
            "response": {"status_code": 200, "request_id": request_id, "body": body},
            "error": None}


def error_line(line_no: int, custom_id: str | None, code: str, message: str,
               request_id: str | None = None, status: int | None = None) -> dict[str, Any]:
    """A failed line: the gateway's error body as the response when a request was made."""
    response = None if status is None else {
        "status_code": status, "request_id": request_id,
        "body": {"error": {"message": message, "type": "invalid_request_error"
                           if status < 500 else "server_error", "code": code}}}
    return {"id": f"batch_req_{request_id or f'line{line_no}'}", "custom_id": custom_id,
            "response": response, "error": {"code": code, "message": message,
                                             "line": line_no}}
