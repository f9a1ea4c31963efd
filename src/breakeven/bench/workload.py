"""What a benchmark sends: synthetic requests, traces, ShareGPT files, a planner workload.

Every source becomes a list of ``RequestSpec``. Synthetic prompts are made of common
English words, which most BPE tokenizers (and the simulator) count as one token each, so a
requested input length is close to what the server reports; the benchmark always reports
the server's own ``usage`` counts, never these estimates.

File errors name the file and line: ``trace.jsonl:12: 'max_tokens' must be ...``.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from breakeven.errors import InputError
from breakeven.sim.text import chat_prompt_tokens, count_tokens

__all__ = ["SPREAD", "Lengths", "RequestSpec", "from_workload", "load_sharegpt", "load_trace",
           "synthetic"]

SPREAD = 0.2  # a bare length N means uniform over N * (1 -/+ SPREAD)
MAX_LENGTH = 10_485_760  # tokens: the longest context in the catalog (Llama 4 Scout's)

_WORDS = (
    "report summary customer order account invoice product service support ticket issue "
    "please review explain describe compare list the a of to and in for with on by from "
    "about data model system team price cost plan month week year region policy request "
    "answer question result value number change update status detail note section page"
).split()


@dataclass(frozen=True)
class RequestSpec:
    """One request: chat ``messages`` or a completion ``prompt``, and its output length."""

    max_tokens: int
    messages: tuple[dict[str, str], ...] | None = None
    prompt: str | None = None
    input_tokens: int = 0  # our estimate; the server's usage is what gets reported
    timestamp: float | None = None  # seconds from the trace's start, replayed as given

    def body(self, model: str, stream: bool, fixed_output: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "max_tokens": self.max_tokens,
                                "stream": stream}
        if self.messages is not None:
            body["messages"] = list(self.messages)
        else:  # a lengths-only trace line gets filler words, one token each, when sent
            body["prompt"] = self.prompt or _words(random.Random(self.input_tokens),
                                                   self.input_tokens)
        if stream:
            body["stream_options"] = {"include_usage": True}
        if fixed_output:  # vLLM's extensions: run to max_tokens, as vLLM's benchmark does
            body["ignore_eos"] = True
            body["min_tokens"] = self.max_tokens
        return body


@dataclass(frozen=True)
class Lengths:
    """A token-length distribution: ``fixed:N``, ``uniform:LO,HI``, ``normal:MEAN,SD``,
    ``lognormal:MEDIAN,SIGMA``; a bare ``N`` is spread ``uniform`` over N +/- 20% (so closed
    loops do not keep their requests in lock-step), ``fixed:N`` is exactly N."""

    kind: str
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, text: str, where: str) -> Lengths:
        kind, _, args = text.partition(":")
        if not args and kind.isascii() and kind.isdigit():
            n = int(kind)
            if not 1 <= n <= MAX_LENGTH:
                raise InputError(f"expected a length from 1 to {MAX_LENGTH:,} (got {text!r})",
                                 where=where)
            return cls("uniform", max(1, round(n * (1 - SPREAD))), round(n * (1 + SPREAD)))
        try:
            values = [float(v) for v in args.split(",") if v.strip()]
        except ValueError:
            values = []
        need = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}.get(kind)
        if (need is None or len(values) != need or not 1 <= values[0] <= MAX_LENGTH
                or not all(0 <= v <= MAX_LENGTH for v in values)):  # NaN fails too
            raise InputError(
                f"expected fixed:N, uniform:LO,HI, normal:MEAN,SD or lognormal:MEDIAN,SIGMA "
                f"with positive numbers up to {MAX_LENGTH:,} (got {text!r})", where=where)
        if kind == "uniform" and values[1] < values[0]:
            raise InputError(f"uniform:LO,HI needs LO <= HI (got {text!r})", where=where)
        return cls(kind, *values)

    def sample(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        elif self.kind == "normal":
            value = rng.gauss(self.a, self.b)
        else:
            value = rng.lognormvariate(math.log(self.a), self.b)
        return max(1, round(min(value, MAX_LENGTH)))  # a wide draw is clipped, not a crash

    def describe(self) -> str:
        """The distribution in the form ``parse`` reads."""
        if self.kind == "fixed":
            return f"fixed:{self.a:g}"
        return f"{self.kind}:{self.a:g},{self.b:g}"

    @property
    def mean(self) -> float:
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        if self.kind == "lognormal":
            return self.a * math.exp(self.b**2 / 2)
        return self.a


def _words(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(max(0, count)))


def synthetic(count: int, input_len: Lengths, output_len: Lengths, *, seed: int = 0,
              prefix_tokens: int = 0, chat: bool = True) -> list[RequestSpec]:
    """``count`` requests of ``input_len`` prompt tokens each (chat template included),
    plus, when ``prefix_tokens`` is set, one shared system prompt of that many tokens ahead
    of them all (as vLLM's benchmark adds its prefix to the input length)."""
    rng = random.Random(seed)
    shared = _words(random.Random(seed ^ 0x5EED), prefix_tokens) if prefix_tokens else ""
    out = []
    for i in range(count):
        want = input_len.sample(rng)
        max_tokens = output_len.sample(rng)
        if chat:
            text = f"{i} " + _words(rng, want - chat_prompt_tokens([""]) - 1)
            messages: tuple[dict[str, str], ...] = ({"role": "user", "content": text},)
            if shared:
                messages = ({"role": "system", "content": shared}, *messages)
            tokens = chat_prompt_tokens([m["content"] for m in messages])
            out.append(RequestSpec(max_tokens, messages=messages, input_tokens=tokens))
        else:
            text = (shared + " " if shared else "") + f"{i} " + _words(rng, want - 1)
            out.append(RequestSpec(max_tokens, prompt=text, input_tokens=count_tokens(text)))
    return out


def _positive_int(value: Any, field: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"'{field}' must be a whole number >= 1 (got {json.dumps(value)})",
                         where=where)
    return value


def _trace_line(row: Any, where: str) -> RequestSpec:
    if not isinstance(row, dict):
        raise InputError("each line must be a JSON object", where=where)
    known = {"messages", "prompt", "max_tokens", "timestamp", "input_tokens", "output_tokens"}
    unknown = sorted(set(row) - known)
    if unknown:
        raise InputError(f"unknown field '{unknown[0]}' (expected: {', '.join(sorted(known))})",
                         where=where)
    out_field = "max_tokens" if "max_tokens" in row else "output_tokens"
    if out_field not in row:
        raise InputError("each line needs 'max_tokens'", where=where)
    max_tokens = _positive_int(row[out_field], out_field, where)
    stamp = row.get("timestamp")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float)
                              or stamp < 0 or not math.isfinite(stamp)):
        raise InputError(f"'timestamp' must be seconds >= 0 (got {json.dumps(stamp)})",
                         where=where)
    messages, prompt = row.get("messages"), row.get("prompt")
    if (messages is None) == (prompt is None) and "input_tokens" not in row:
        raise InputError("each line needs exactly one of 'messages' or 'prompt'", where=where)
    if messages is not None:
        if not isinstance(messages, list) or not messages or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str)
                and isinstance(m.get("content"), str) for m in messages):
            raise InputError("'messages' must be a non-empty list of {role, content} objects "
                             "with string content", where=where)
        tokens = chat_prompt_tokens([m["content"] for m in messages])
        spec = RequestSpec(max_tokens, messages=tuple(messages), input_tokens=tokens)
    elif prompt is not None:
        if not isinstance(prompt, str) or not prompt:
            raise InputError("'prompt' must be a non-empty string", where=where)
        spec = RequestSpec(max_tokens, prompt=prompt, input_tokens=count_tokens(prompt))
    else:  # lengths only: the prompt is made when the request is sent
        spec = RequestSpec(max_tokens, input_tokens=_positive_int(row["input_tokens"],
                                                                  "input_tokens", where))
    if "input_tokens" in row:
        spec = RequestSpec(spec.max_tokens, spec.messages, spec.prompt,
                           _positive_int(row["input_tokens"], "input_tokens", where))
    return RequestSpec(spec.max_tokens, spec.messages, spec.prompt, spec.input_tokens,
                       float(stamp) if stamp is not None else None)


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", where=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=str(path)) from None


def load_trace(path: str | Path) -> list[RequestSpec]:
    """A JSONL trace: one request a line (``messages`` or ``prompt``, ``max_tokens``,
    optional ``timestamp`` in seconds; or ``input_tokens`` alone for a lengths-only trace)."""
    out = []
    for number, line in enumerate(_read(path).splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc.args[0].split(':')[0]})",
                             where=where) from None
        out.append(_trace_line(row, where))
    if not out:
        raise InputError("the trace has no requests", where=str(path))
    stamps = [r.timestamp for r in out]
    if any(s is not None for s in stamps) and any(s is None for s in stamps):
        raise InputError("either every line has a 'timestamp' or none does", where=str(path))
    return out


def load_sharegpt(path: str | Path, count: int | None = None, seed: int = 0,
                  max_output: int = 2048) -> list[RequestSpec]:
    """ShareGPT JSON: the first human turn is the prompt, the reply's length the output."""
    try:
        data = json.loads(_read(path))
    except ValueError as exc:
        raise InputError(f"not valid JSON: {exc}", where=str(path)) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of conversations", where=str(path))
    out = []
    for i, conv in enumerate(data):
        turns = conv.get("conversations") if isinstance(conv, dict) else None
        if not isinstance(turns, list) or len(turns) < 2:
            continue
        first, reply = turns[0], turns[1]
        if not (isinstance(first, dict) and isinstance(reply, dict)
                and isinstance(first.get("value"), str) and isinstance(reply.get("value"), str)
                and first["value"].strip()):
            raise InputError("each conversation needs turns with a string 'value'",
                             where=f"{path}: conversation {i}")
        output = min(max_output, max(1, count_tokens(reply["value"])))
        messages = ({"role": "user", "content": first["value"]},)
        out.append(RequestSpec(output, messages=messages,
                               input_tokens=chat_prompt_tokens([first["value"]])))
    if not out:
        raise InputError("no conversation with at least two turns", where=str(path))
    random.Random(seed).shuffle(out)
    return out[:count] if count else out


def from_workload(segments: list[tuple[float, int, int]], count: int,
                  seed: int = 0) -> list[RequestSpec]:
    """Requests shaped like a planner workload: (share, input, output) per segment,
    interleaved by share, lengths spread log-normally (sigma 0.3) around each mean."""
    rng = random.Random(seed)
    shares = [s for s, _, _ in segments]
    out: list[RequestSpec] = []
    for _ in range(count):
        _, inp, outp = rng.choices(segments, weights=shares)[0]
        spread = math.exp(-(0.3**2) / 2)  # log-normal median that keeps the mean
        spec = synthetic(1, Lengths("lognormal", inp * spread, 0.3),
                         Lengths("lognormal", max(outp * spread, 1), 0.3),
                         seed=rng.getrandbits(32))[0]
        out.append(spec)
    return out
