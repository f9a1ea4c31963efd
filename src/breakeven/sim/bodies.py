"""The simulator's answers on the wire, as vLLM sends them: a decided ``Job`` (its tokens,
or one tool call whose arguments they spell) as a response body or as SSE chunks. Pure."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = ["Job", "chunk", "response_body", "siblings", "usage", "usage_chunk"]

Kind = Literal["chat", "completion"]


@dataclass
class Job:
    kind: Kind
    model: str
    prompt_tokens: int
    tokens: list[tuple[str, float]]
    finish_reason: str
    stream: bool = False
    include_usage: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    id: str = ""
    priority: int = 0
    tool: tuple[str, str] | None = None  # (function name, call id): the tokens are arguments
    # n > 1: the other choices' (tokens, finish reason); ``index`` is this one's
    choices: list[tuple[list[tuple[str, float]], str]] = field(default_factory=list)
    index: int = 0
    continuous_usage: bool = False  # usage on every chunk (vLLM's continuous_usage_stats)
    stop_reason: str | None = None  # the stop string met, as vLLM names it (first choice)
    cached_tokens: int = 0  # reported as usage.prompt_tokens_details when non-zero
    max_tokens: int = 0  # the request's max_tokens, resolved (what TensorRT-LLM reserves)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.tokens)


# -- bodies ---------------------------------------------------------------------------------
def usage(job: Job, completion_tokens: int | None = None) -> dict[str, Any]:
    done = job.completion_tokens if completion_tokens is None else completion_tokens
    out: dict[str, Any] = {"prompt_tokens": job.prompt_tokens, "completion_tokens": done,
                           "total_tokens": job.prompt_tokens + done}
    if job.cached_tokens:  # as vLLM with --enable-prompt-tokens-details
        out["prompt_tokens_details"] = {"cached_tokens": job.cached_tokens}
    return out


def _top(job: Job, tok: str, lp: float, index: int) -> list[tuple[str, float]]:
    """Well-formed alternatives: the sampled token plus lower-probability words."""
    if not job.top_logprobs:
        return []
    rest = max(1e-9, 1 - math.exp(lp))
    alts = [(tok, lp)]
    for k in range(1, job.top_logprobs):
        alt = f" alt{(index * 7 + k) % 97}"
        alts.append((alt, math.log(rest * 0.5**k)))
    alts.sort(key=lambda a: -a[1])
    return alts


def _chat_logprobs(job: Job, start: int, pieces: list[tuple[str, float]]) -> dict[str, Any]:
    def entry(tok: str, lp: float) -> dict[str, Any]:
        return {"token": tok, "logprob": lp, "bytes": list(tok.encode())}

    content = []
    for i, (tok, lp) in enumerate(pieces, start):
        item = entry(tok, lp)
        item["top_logprobs"] = [entry(t, p) for t, p in _top(job, tok, lp, i)]
        content.append(item)
    return {"content": content}


def _completion_logprobs(job: Job, start: int, offset: int,
                         pieces: list[tuple[str, float]]) -> dict[str, Any]:
    offsets, tops = [], []
    for i, (tok, lp) in enumerate(pieces, start):
        offsets.append(offset)
        offset += len(tok)
        tops.append(dict(_top(job, tok, lp, i)) or None)
    return {"tokens": [t for t, _ in pieces], "token_logprobs": [lp for _, lp in pieces],
            "top_logprobs": tops, "text_offset": offsets}


def _call(job: Job, arguments: str, first: bool) -> dict[str, Any]:
    """The tool call (whole, or a stream's piece of it: id and name come first)."""
    assert job.tool is not None
    name, call_id = job.tool
    if not first:
        return {"index": 0, "function": {"arguments": arguments}}
    return {"index": 0, "id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def siblings(job: Job) -> list[Job]:
    """The request's choices as one job each (``n`` > 1: run as ``n`` sequences)."""
    return [replace(job, choices=[])] + [
        replace(job, tokens=tokens, finish_reason=reason, index=i, choices=[], stop_reason=None)
        for i, (tokens, reason) in enumerate(job.choices, 1)]


def response_body(job: Job, created: int) -> dict[str, Any]:
    """The non-streaming answer (every choice, usage summed over them)."""
    if job.choices:
        parts = [response_body(j, created) for j in siblings(job)]
        done = sum(p["usage"]["completion_tokens"] for p in parts)
        return parts[0] | {"choices": [p["choices"][0] for p in parts],
                           "usage": usage(job, done)}
    choice: dict[str, Any] = {"index": job.index, "logprobs": None,
                              "finish_reason": job.finish_reason,
                              "stop_reason": job.stop_reason}
    if job.kind == "chat":
        choice["message"] = {"role": "assistant", "content": job.text, "tool_calls": []}
        if job.tool is not None:
            choice["message"].update(content=None, tool_calls=[_call(job, job.text, True)])
        if job.logprobs:
            choice["logprobs"] = _chat_logprobs(job, 0, job.tokens)
        obj = "chat.completion"
    else:
        choice["text"] = job.text
        if job.logprobs:
            choice["logprobs"] = _completion_logprobs(job, 0, 0, job.tokens)
        obj = "text_completion"
    return {"id": job.id, "object": obj, "created": created, "model": job.model,
            "choices": [choice], "usage": usage(job)}


def chunk(job: Job, created: int, start: int, end: int, offset: int = 0,
          role: bool = False, finish: bool = False) -> str:
    """One SSE event carrying tokens ``[start, end)`` (or the role / the finish reason)."""
    pieces = job.tokens[start:end]
    text = "".join(t for t, _ in pieces)
    logprobs: Any = None
    if job.kind == "chat":
        delta: dict[str, Any] = {}
        if role:
            delta = {"role": "assistant", "content": ""}
        elif pieces and job.tool is not None:
            delta = {"tool_calls": [_call(job, text, start == 0)]}
        elif pieces:
            delta = {"content": text}
            if job.logprobs:
                logprobs = _chat_logprobs(job, start, pieces)
        choice: dict[str, Any] = {"index": job.index, "delta": delta, "logprobs": logprobs,
                                  "finish_reason": job.finish_reason if finish else None}
        if finish:
            choice["stop_reason"] = job.stop_reason
        obj = "chat.completion.chunk"
    else:
        if pieces and job.logprobs:
            logprobs = _completion_logprobs(job, start, offset, pieces)
        choice = {"index": job.index, "text": text, "logprobs": logprobs,
                  "finish_reason": job.finish_reason if finish else None}
        obj = "text_completion"
    event: dict[str, Any] = {"id": job.id, "object": obj, "created": created,
                             "model": job.model, "choices": [choice]}
    if job.include_usage:
        event["usage"] = usage(job, end) if job.continuous_usage else None
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n"


def usage_chunk(job: Job, created: int) -> str:
    obj = "chat.completion.chunk" if job.kind == "chat" else "text_completion"
    done = sum(j.completion_tokens for j in siblings(job))
    event = {"id": job.id, "object": obj, "created": created, "model": job.model,
             "choices": [], "usage": usage(job, done)}
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n"
