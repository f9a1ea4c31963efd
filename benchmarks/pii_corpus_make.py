"""Writes the detector's labelled corpus under ``tests/data/pii/`` (JSONL, one example a
line: ``text``, ``spans`` as ``[start, end, type]``, ``set``).

The sentences are written by hand in the registers people send to LLMs (support tickets,
HR notes, config snippets, logs, forms, several languages); each holds one value written
in one realistic format. Values with a checksum (cards, IBANs, national ids) are made
valid by the same algorithms the issuers use, from a seeded RNG, so the corpus is
reproducible: ``python benchmarks/pii_corpus_make.py`` rewrites the same files.

``dev.jsonl`` is the set the rules were written against; ``heldout.jsonl`` was written
after them (other sentences, other values) and is only reported, never tuned on;
``clean.jsonl`` is technical text full of look-alikes, with no sensitive value at all.
"""

from __future__ import annotations

import base64
import json
import random
import string
import urllib.parse
from pathlib import Path

from stdnum import iban as _iban
from stdnum import luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "pii"
ALNUM = string.ascii_letters + string.digits


def card(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def fmt_card(number: str, sep: str) -> str:
    if len(number) == 15 or len(number) == 14:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i:i + 4] for i in range(0, len(number), 4)]
    return sep.join(groups) if sep != "none" else number


def make_iban(rng: random.Random, cc: str, bban_len: int, letters: int = 0) -> str:
    """A valid IBAN (national check digits included: drawn until stdnum accepts it)."""
    while True:
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(letters)) + "".join(
            rng.choice(string.digits) for _ in range(bban_len - letters))
        value = cc + _iban.calc_check_digits(cc + "00" + bban) + bban
        if _iban.is_valid(value):
            return value


def fmt_iban(value: str, style: str) -> str:
    grouped = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return {"spaced": grouped, "compact": value, "lower": grouped.lower(),
            "dashed": grouped.replace(" ", "-"), "lowcompact": value.lower()}[style]


def make_ssn(rng: random.Random, sep: str) -> str:
    while True:
        area = rng.randint(1, 899)
        if area == 666:
            continue
        value = f"{area:03d}{sep}{rng.randint(1, 99):02d}{sep}{rng.randint(1, 9999):04d}"
        if ssn.is_valid(value.replace(" ", "")):
            return value


def sample(rng: random.Random, valid, make) -> str:  # type: ignore[no-untyped-def]
    while True:
        value = make()
        if valid(value.replace(" ", "")):
            return value


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def de_tax(rng: random.Random, spaced: bool) -> str:
    from stdnum.iso7064 import mod_11_10
    while True:
        body = str(rng.randint(1, 9)) + digits(rng, 9)
        value = body + mod_11_10.calc_check_digit(body)
        if idnr.is_valid(value):
            return f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}" if spaced else value


def fr_nir(rng: random.Random, spaced: bool) -> str:
    body = (str(rng.randint(1, 2)) + f"{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}"
            + f"{rng.randint(1, 95):02d}" + digits(rng, 3) + digits(rng, 3))
    value = body + nir.calc_check_digits(body)
    assert nir.is_valid(value)
    if spaced:
        return (f"{value[0]} {value[1:3]} {value[3:5]} {value[5:7]} {value[7:10]} "
                f"{value[10:13]} {value[13:]}")
    return value


def es_dni(rng: random.Random, dash: bool) -> str:
    body = digits(rng, 8)
    return body + ("-" if dash else "") + dni.calc_check_digit(body)


def es_nie(rng: random.Random, dash: bool) -> str:
    lead = rng.choice("XYZ")
    body = digits(rng, 7)
    check = nie.calc_check_digit(lead + body)
    return f"{lead}-{body}-{check}" if dash else lead + body + check


def it_cf(rng: random.Random) -> str:
    letters = string.ascii_uppercase
    months = "ABCDEHLMPRST"
    body = ("".join(rng.choice("BCDFGLMNPRSTVZ") for _ in range(6)) + f"{rng.randint(40, 99)}"
            + rng.choice(months) + f"{rng.choice([rng.randint(1, 28), rng.randint(41, 68)]):02d}"
            + rng.choice("ABCDEFGHILM") + digits(rng, 3))
    value = body + codicefiscale.calc_check_digit(body)
    assert codicefiscale.is_valid(value) and all(c in letters + string.digits for c in value)
    return value


def nl_bsn(rng: random.Random) -> str:
    return sample(rng, bsn.is_valid, lambda: str(rng.randint(1, 9)) + digits(rng, 8))


def pl_pesel(rng: random.Random) -> str:
    while True:
        body = (f"{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
                + digits(rng, 4))
        value = body + pesel.calc_check_digit(body)
        if pesel.is_valid(value):
            return value


def se_pnr(rng: random.Random, century: bool) -> str:
    while True:
        date = f"{rng.randint(40, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        serial = digits(rng, 3)
        value = date + "-" + serial + luhn.calc_check_digit(date + serial)
        if personnummer.is_valid(value):
            return ("19" + value) if century else value


def nino(rng: random.Random, spaced: bool) -> str:
    first = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        first, second = "A", "B"
    d = digits(rng, 6)
    suffix = rng.choice("ABCD")
    if spaced:
        return f"{first}{second} {d[:2]} {d[2:4]} {d[4:]} {suffix}"
    return f"{first}{second}{d}{suffix}"


def rand(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def write(name: str, rows: list[dict[str, object]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / name).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} examples")


def place(template: str, value: str, kind: str, subset: str,
          label: str | None = None) -> dict[str, object]:
    """``template`` with ``{}`` replaced by ``value``; the labelled span is ``label``
    (a part of value) or the whole value."""
    text = template.replace("{}", value)
    start = text.index(value)
    if label is not None:
        start += value.index(label)
        value = label
    return {"text": text, "spans": [[start, start + len(value), kind]], "set": subset}


def encoded(value: str, how: str) -> str:
    if how == "base64":
        return base64.b64encode(value.encode()).decode()
    if how == "url":
        return urllib.parse.quote(value, safe="")
    if how == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)
    if how == "zwsp":
        return "\u200b".join(value[i:i + 4] for i in range(0, len(value), 4))
    raise ValueError(how)


if __name__ == "__main__":
    from pii_corpus_blind import blind_rows
    from pii_corpus_clean import clean_rows
    from pii_corpus_held import heldout_rows
    from pii_corpus_sets import dev_rows

    write("dev.jsonl", dev_rows(random.Random(11)))
    write("heldout.jsonl", heldout_rows(random.Random(29)))
    write("clean.jsonl", clean_rows(random.Random(43)))
    write("blind.jsonl", blind_rows(random.Random(53)))
