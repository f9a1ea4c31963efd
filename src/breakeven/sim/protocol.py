"""The simulator's OpenAI wire format, as vLLM serves it: requests in, bodies and chunks out.

Pure: parses a decoded JSON body into a ``Job`` (prompt tokens, the whole synthetic answer
decided up front, finish reason) and builds response bodies and SSE chunks. Supported, with
vLLM's semantics: ``max_tokens`` / ``max_completion_tokens`` (default: the rest of the
context for chat, 16 for completions), ``stop``, ``n`` (each choice its own sequence),
``seed``, ``logprobs`` and ``top_logprobs`` (chat) or integer ``logprobs`` (completions),
``stream`` with ``stream_options.include_usage``, and vLLM's ``ignore_eos``, ``min_tokens``
and ``priority``;
``response_format`` (JSON mode, ``json_schema``) and a forced or ``required``
``tool_choice`` answer with JSON from ``structured``; the bodies are built in ``bodies``.
Without ``ignore_eos`` the answer ends at a natural length drawn per request (median
~180 tokens) within ``[min_tokens, max_tokens]``.

One extension: ``sim_confidence`` (0-1) fixes the mean token probability, so a cascade
router can be tested; otherwise it follows from a hash of the prompt (most prompts 0.83-0.93,
about one in eight 0.35-0.6).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from typing import Any

from breakeven.errors import ApiError
from breakeven.sim.bodies import Job, Kind, chunk, response_body, usage, usage_chunk
from breakeven.sim.structured import structured
from breakeven.sim.text import chat_prompt_tokens, count_tokens, generate

__all__ = ["ApiError", "Job", "chunk", "parse_job", "response_body", "usage", "usage_chunk"]

_NATURAL_MEDIAN = 180
_NATURAL_SIGMA = 0.7
_MAX_N = 128


# -- parsing ------------------------------------------------------------------------------
def _number(body: dict[str, Any], name: str, kind: type, low: float | None = None,
            high: float | None = None) -> Any:
    value = body.get(name)
    if value is None:
        return None
    ok = isinstance(value, int | float) if kind is float else isinstance(value, int)
    if isinstance(value, bool) or not ok:
        expected = "a number" if kind is float else "an integer"
        raise ApiError(400, f"'{name}' must be {expected} (got {json.dumps(value)})", name)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ApiError(400, f"'{name}' must be {bounds} (got {value})", name)
    return value


# vLLM's own range checks (SamplingParams._verify_args) and their wording: (test, message,
# the parameter a VLLMValidationError names, whose "(parameter=..., value=...)" vLLM appends;
# None for a plain ValueError, answered without a param)
_RANGES: dict[str, list[tuple[Any, str, str | None]]] = {
    "n": [(lambda v: v >= 1, "n must be at least 1, got {v}.", None),
          (lambda v: v <= _MAX_N, "n must be at most {m}, got {v}.", None)],
    "max_tokens": [(lambda v: v >= 1, "max_tokens must be at least 1, got {v}.",
                    "max_tokens")],
    "max_completion_tokens": [(lambda v: v >= 1, "max_tokens must be at least 1, got {v}.",
                               "max_tokens")],
    "min_tokens": [(lambda v: v >= 0, "min_tokens must be greater than or equal to 0, got "
                    "{v}.", None)],
    "temperature": [(lambda v: v >= 0, "temperature must be non-negative, got {v}.",
                     "temperature")],
    "top_p": [(lambda v: 0 < v <= 1, "top_p must be in (0, 1], got {v}.", "top_p")],
}


def _sampling_number(body: dict[str, Any], name: str, kind: type) -> Any:
    """A sampling parameter: its type as ours, its range as vLLM checks and words it."""
    value = _number(body, name, kind)
    if value is None:
        return None
    shown = float(value) if kind is float else value
    for ok, message, param in _RANGES[name]:
        if not ok(value):
            text = message.format(v=shown, m=_MAX_N)
            if param is not None:
                text += f" (parameter={param}, value={shown})"
            raise ApiError(400, text, param)
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be true or false (got {json.dumps(value)})", name)
    return value


def _chat_texts(body: dict[str, Any]) -> list[str]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of messages", "messages")
    texts: list[str] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise ApiError(400, f"{where} must be an object with a 'role'", where)
        content = msg.get("content")
        if content is None:
            texts.append(json.dumps(msg.get("tool_calls") or ""))
        elif isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(
                        part.get("text"), str):
                    raise ApiError(400, f"{where}.content[{j}]: this model takes text parts "
                                        "only ({'type': 'text', 'text': ...})",
                                   f"{where}.content[{j}]")
            texts.append(" ".join(part["text"] for part in content))
        else:
            raise ApiError(400, f"{where}.content must be a string or a list of parts",
                           f"{where}.content")
    if body.get("tools"):
        texts.append(json.dumps(body["tools"]))
    return texts


def _completion_prompt(body: dict[str, Any]) -> tuple[str, int]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if isinstance(prompt, str):  # the tokenizer's BOS token: an empty prompt is one token
        return prompt, 1 + count_tokens(prompt)
    if isinstance(prompt, list) and prompt and all(
            isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return " ".join(map(str, prompt)), len(prompt)
    raise ApiError(400, "'prompt' must be a string, a list of one string, or a list of token "
                        "ids (batched prompts are not supported)", "prompt")


def _stops(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return [s for s in stop if s]
    raise ApiError(400, "'stop' must be a string or a list of strings", "stop")


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _confidence(body: dict[str, Any], prompt_hash: int) -> float:
    fixed = _number(body, "sim_confidence", float, 0.0, 1.0)
    if fixed is not None:
        return float(fixed)
    u = (prompt_hash % 10_007) / 10_007
    return 0.35 + 0.25 * u / 0.125 if u < 0.125 else 0.83 + 0.1 * (u - 0.125) / 0.875


def parse_job(kind: Kind, body: Any, *, served: str, max_model_len: int,
              entropy: int, variant: str = "", priorities: bool = False) -> Job:
    """Validate ``body`` and decide the whole answer. ``entropy`` seeds unseeded requests.
    ``priorities``: the engine schedules by priority; otherwise a non-zero ``priority`` is
    refused, as vLLM refuses it without ``--scheduling-policy priority``."""
    model = _served_model(body, served)
    prompt = _prompt(kind, body)
    max_tokens = _max_tokens(prompt.max_tokens, prompt.tokens, max_model_len)
    min_tokens = _sampling_number(body, "min_tokens", int) or 0
    if min_tokens > max_tokens:
        raise ApiError(400, "min_tokens must be less than or equal to max_tokens="
                            f"{max_tokens}, got {min_tokens}.")
    sampling = _sampling(body, priorities)
    rng = random.Random(_rng_seed(sampling, prompt.text, variant, entropy))
    answers = []
    for _ in range(_sampling_number(body, "n", int) or 1):
        shaped = structured(body, rng, max_tokens) if kind == "chat" else None
        answers.append(_answer(body, rng, _digest(prompt.text), max_tokens, min_tokens)
                       if shaped is None else (shaped[1], shaped[2], None))
    (tokens, reason, stopped), others = answers[0], [(t, r) for t, r, _ in answers[1:]]
    tool = (shaped[0].tool, f"chatcmpl-tool-{rng.getrandbits(64):016x}") if (
        shaped and shaped[0].tool) else None
    prefix = "chatcmpl" if kind == "chat" else "cmpl"
    return Job(kind, model, prompt.tokens, tokens, reason, sampling.stream,
               sampling.include_usage, prompt.logprobs, prompt.top_logprobs,
               f"{prefix}-{rng.getrandbits(96):024x}", sampling.priority, tool, others,
               continuous_usage=sampling.continuous_usage, stop_reason=stopped,
               max_tokens=max_tokens)


@dataclass(frozen=True)
class _Prompt:
    text: str
    tokens: int
    max_tokens: int | None  # as asked; None: the rest of the context
    logprobs: bool
    top_logprobs: int


@dataclass(frozen=True)
class _Sampling:
    temperature: float | None
    seed: int | None
    stream: bool
    include_usage: bool
    priority: int
    continuous_usage: bool = False


def _served_model(body: Any, served: str) -> str:
    """The body is an object naming the served model, with ``n`` 1 (or absent)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str):
        raise ApiError(400, "'model' is required and must be a string", "model")
    if model != served:
        raise ApiError(404, f"The model `{model}` does not exist.", "model")
    _sampling_number(body, "n", int)
    return model


def _prompt(kind: Kind, body: dict[str, Any]) -> _Prompt:
    """The prompt, its token count, the asked ``max_tokens`` and the logprobs wanted."""
    if kind == "chat":
        texts = _chat_texts(body)
        max_tokens = _sampling_number(body, "max_completion_tokens", int)
        max_tokens = max_tokens or _sampling_number(body, "max_tokens", int)
        want_logprobs = _flag(body, "logprobs")
        top = _number(body, "top_logprobs", int, 0, 20) or 0
        if top and not want_logprobs:
            raise ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs")
        return _Prompt("\x00".join(texts), chat_prompt_tokens(texts), max_tokens,
                       want_logprobs, top)
    prompt_text, prompt_tokens = _completion_prompt(body)
    max_tokens = _sampling_number(body, "max_tokens", int) or 16
    lp = _number(body, "logprobs", int, 0, 20)
    return _Prompt(prompt_text, prompt_tokens, max_tokens, lp is not None, lp or 0)


def _max_tokens(asked: int | None, prompt_tokens: int, max_model_len: int) -> int:
    """The completion budget: as asked (if it fits the context), else the rest of it."""
    if prompt_tokens >= max_model_len:  # vLLM's renderer: the prompt alone is too long
        raise ApiError(400, f"This model's maximum context length is {max_model_len} tokens. "
                            f"However, your request has {prompt_tokens} input tokens. Please "
                            "reduce the length of the input messages. (parameter=input_tokens, "
                            f"value={prompt_tokens})", "input_tokens")
    if asked is None:
        return max_model_len - prompt_tokens
    if prompt_tokens + asked > max_model_len:  # vLLM's get_max_tokens / _validate_input
        raise ApiError(400, f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. "
                            f"This model's maximum context length is {max_model_len} tokens "
                            f"and your request has {prompt_tokens} input tokens ({asked} > "
                            f"{max_model_len} - {prompt_tokens}). (parameter=max_tokens, "
                            f"value={asked})", "max_tokens")
    return asked


def _sampling(body: dict[str, Any], priorities: bool) -> _Sampling:
    temperature = _sampling_number(body, "temperature", float)
    _sampling_number(body, "top_p", float)
    stream = _flag(body, "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object", "stream_options")
    include_usage = bool(options.get("include_usage")) and stream
    # vLLM's continuous_usage_stats: usage on every chunk, the prompt's tokens from the first
    continuous = include_usage and bool(options.get("continuous_usage_stats"))
    seed = _number(body, "seed", int)
    priority = _number(body, "priority", int) or 0
    if priority and not priorities:
        raise ApiError(400, f"Got priority {priority} but Priority scheduling is not enabled.")
    return _Sampling(temperature, seed, stream, include_usage, priority, continuous)


def _rng_seed(sampling: _Sampling, prompt_text: str, variant: str, entropy: int) -> int:
    """Greedy decoding (temperature 0) or a seed: the same model gives the same answer; a
    different ``variant`` (another model behind the same name) gives another one."""
    temperature, seed = sampling.temperature, sampling.seed
    if temperature == 0 or seed is not None:
        return _digest(f"{variant}\x00{seed if temperature != 0 else ''}\x00{prompt_text}")
    return entropy


def _answer(body: dict[str, Any], rng: random.Random, prompt_hash: int, max_tokens: int,
            min_tokens: int) -> tuple[list[tuple[str, float]], str, str | None]:
    """The answer's tokens, finish reason and the stop string it was cut at (vLLM's
    ``stop_reason``): a natural length (or all of ``max_tokens`` with ``ignore_eos``), cut
    at the first stop string."""
    if _flag(body, "ignore_eos"):
        length, reason = max_tokens, "length"
    else:
        natural = max(1, round(rng.lognormvariate(math.log(_NATURAL_MEDIAN), _NATURAL_SIGMA)))
        natural = max(natural, min_tokens)
        length, reason = (max_tokens, "length") if natural >= max_tokens else (natural, "stop")
    tokens = generate(rng, length, _confidence(body, prompt_hash))
    stops = _stops(body)
    stopped = None
    if stops:
        tokens, stopped = _apply_stops(tokens, stops, min_tokens)
        reason = "stop" if stopped else reason
    return tokens, reason, stopped


def _apply_stops(tokens: list[tuple[str, float]], stops: list[str],
                 min_tokens: int) -> tuple[list[tuple[str, float]], str | None]:
    """Cut at the first stop string (not included), keeping whole tokens before it."""
    text = ""
    for i, (tok, _) in enumerate(tokens):
        text += tok
        if i + 1 < min_tokens:
            continue
        for stop in stops:
            at = text.find(stop, max(0, len(text) - len(tok) - len(stop)))
            if at >= 0:
                kept, length = [], 0
                for piece in tokens[: i + 1]:
                    if length + len(piece[0]) > at:
                        break
                    kept.append(piece)
                    length += len(piece[0])
                return kept, stop
    return tokens, None


