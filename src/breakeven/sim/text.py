"""Synthetic text for the simulator: a word-level token count and a seeded word generator.

The simulator has no tokenizer (nothing may be downloaded), so it counts tokens the way a
BPE tokenizer roughly does on English: one token per word of up to ten characters (longer
words one token per ten characters), one per punctuation mark, digits in groups of three.
Generated text is made of common words and punctuation that this count sees as exactly one
token each, so re-counting a completion gives exactly ``usage.completion_tokens``.

Pure: every random choice comes from a ``random.Random`` the caller seeds.
"""

from __future__ import annotations

import math
import random
import re

__all__ = ["CHAT_TEMPLATE_TOKENS", "chat_prompt_tokens", "count_tokens", "generate"]

_WORD = re.compile(r"[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d]")
_MAX_WORD = 10
# Llama 3's chat template: <|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>
CHAT_TEMPLATE_TOKENS = 5
_ASSISTANT_HEADER = 4

_VOCAB = (
    "the of and to in a is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their been has when who will "
    "more no if out so said what up its about into than them can only other new some could "
    "time these two may then do first any my now such like our over man me even most made "
    "after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take "
    "three model serving engine token cache memory request latency batch traffic cost "
    "price budget region policy audit answer question data value result system service "
    "report number level queue step window figure measure plan team stack route gateway"
).split()
_PUNCT = (",", ".", ".", "?", ";", ":")


def count_tokens(text: str) -> int:
    """Tokens in ``text`` by the word-level rule above."""
    total = 0
    for match in _WORD.finditer(text):
        piece = match.group()
        total += math.ceil(len(piece) / _MAX_WORD) if piece[0].isalpha() else 1
    return total


def chat_prompt_tokens(contents: list[str]) -> int:
    """Prompt tokens of a chat: each message's text plus the template around it."""
    return sum(count_tokens(c) + CHAT_TEMPLATE_TOKENS for c in contents) + _ASSISTANT_HEADER


def generate(rng: random.Random, count: int, confidence: float = 0.9) -> list[tuple[str, float]]:
    """``count`` tokens of plausible filler: (text, logprob) pairs.

    ``confidence`` is the mean probability of the sampled token: log probabilities scatter
    around ``log(confidence)`` so a cascade router's mean-logprob test has a signal.
    """
    out: list[tuple[str, float]] = []
    centre = math.log(max(min(confidence, 0.999), 1e-3))
    capital = True
    since_punct = 0
    choice, gauss = rng.choice, rng.gauss
    for _ in range(count):
        lp = min(0.0, gauss(centre, 0.25 * abs(centre) + 0.02))
        if since_punct >= 4 and rng.random() < 0.18:
            mark = choice(_PUNCT)
            out.append((mark, lp))
            capital = mark in ".?"
            since_punct = 0
            continue
        word = choice(_VOCAB)
        out.append((" " + (word.capitalize() if capital else word), lp))
        capital = False
        since_punct += 1
    return out
