"""Token ids for the simulator's ``/tokenize`` and ``/detokenize``: the word-level count of
``text`` made into ids. There is no real vocabulary (nothing may be downloaded), so each
piece gets an id the first time it is seen and keeps it for the server's life; the count
always equals the one ``usage`` reports. Chat prompts carry Llama 3's template tokens.
Pure (one ``Vocabulary`` object holds the ids)."""

from __future__ import annotations

import re
from typing import Any

from breakeven.errors import ApiError

__all__ = ["Vocabulary", "detokenize", "prompt_pieces", "tokenize"]

_PIECE = re.compile(r"\s*(?:[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d])")
_MAX_WORD = 10
_SPECIAL = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
            "\n\n")


class Vocabulary:
    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._pieces: list[str] = []
        for piece in _SPECIAL:
            self._id(piece)

    def _id(self, piece: str) -> int:
        found = self._ids.get(piece)
        if found is None:
            found = self._ids[piece] = len(self._pieces)
            self._pieces.append(piece)
        return found

    def pieces(self, text: str) -> list[str]:
        return _pieces(text)

    def encode(self, text: str, bos: bool = True) -> list[int]:
        """A completion prompt's ids (BOS first, as the engine counts it)."""
        return ([0] if bos else []) + [self._id(p) for p in self.pieces(text)]

    def encode_chat(self, messages: list[tuple[str, str]]) -> list[int]:
        """A chat's ids through the template, ending with the assistant's header."""
        start, end, eot, gap = (self._id(s) for s in _SPECIAL[1:])
        ids: list[int] = []
        for role, content in messages:
            ids += [start, self._id(role), end, gap, *self.encode(content, False), eot]
        return [*ids, start, self._id("assistant"), end, gap]

    def decode(self, ids: list[int]) -> str:
        try:
            return "".join(self._pieces[i] for i in ids)
        except (IndexError, TypeError):
            bad = next((i for i in ids if not isinstance(i, int) or not
                        0 <= i < len(self._pieces)), None)
            raise ApiError(400, f"token id {bad!r} is out of vocabulary range", "tokens") \
                from None


def tokenize(vocab: Vocabulary, body: dict[str, Any]) -> dict[str, Any]:
    """vLLM's ``/tokenize``: a ``prompt`` or chat ``messages`` -> count and ids."""
    if isinstance(body.get("messages"), list):
        pairs = []
        for i, m in enumerate(body["messages"]):
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content
                                   if isinstance(p, dict))
            if not isinstance(content, str):
                raise ApiError(400, f"messages[{i}].content must be a string",
                               f"messages[{i}]")
            pairs.append((str(m.get("role", "user")), content))
        ids = vocab.encode_chat(pairs)
    elif isinstance(body.get("prompt"), str):
        ids = vocab.encode(body["prompt"], body.get("add_special_tokens", True) is not False)
    else:
        raise ApiError(400, "give 'prompt' (a string) or 'messages'", "prompt")
    return {"count": len(ids), "tokens": ids, "token_strs": None}


def detokenize(vocab: Vocabulary, body: dict[str, Any]) -> dict[str, Any]:
    ids = body.get("tokens")
    if not isinstance(ids, list):
        raise ApiError(400, "'tokens' must be a list of token ids", "tokens")
    return {"prompt": vocab.decode(ids)}


def prompt_pieces(kind: str, body: dict[str, Any]) -> list[str]:
    """The prompt of a validated request as token pieces, through the chat template (the
    prefix cache hashes them by blocks): roles and texts count, ids do not matter."""
    if kind != "chat":
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if isinstance(prompt, str):
            return [_SPECIAL[0], *_pieces(prompt)]
        return [str(t) for t in prompt] if isinstance(prompt, list) else []
    start, end, eot, gap = _SPECIAL[1:]
    out: list[str] = []
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content)
        elif not isinstance(content, str):
            content = str(msg.get("tool_calls") or "")
        out += [start, str(msg.get("role")), end, gap, *_pieces(content), eot]
    return out


def _pieces(text: str) -> list[str]:
    """``text`` cut as the word-level count cuts it (a long word: ten letters a piece)."""
    out = []
    for m in _PIECE.finditer(text):
        piece = m.group()
        word = piece.lstrip()
        if word[:1].isalpha() and len(word) > _MAX_WORD:
            lead = piece[: len(piece) - len(word)]
            parts = [word[i:i + _MAX_WORD] for i in range(0, len(word), _MAX_WORD)]
            out += [lead + parts[0], *parts[1:]]
        else:
            out.append(piece)
    return out
