"""Clean technical text for the detector's corpus: look-alikes of every type, no value
(see ``pii_corpus_make.py``). Each maker writes one line of the kind people paste into a
chat: version strings, order numbers, timestamps, ISO dates that are not birthdates,
prices, git hashes, UUIDs, IP-like version numbers, phone-like product codes, base64 of
harmless text, Luhn-failing 16-digit numbers, code and config without secrets."""

from __future__ import annotations

import base64
import random
import string
import uuid
from collections.abc import Callable

from stdnum import luhn


def _luhn_fail(rng: random.Random) -> str:
    while True:
        n = "4" + "".join(rng.choice(string.digits) for _ in range(15))
        if not luhn.is_valid(n):
            return " ".join(n[i:i + 4] for i in range(0, 16, 4))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


HARMLESS = ["hello world", "the build passed", "deploy staging now", "lorem ipsum dolor sit amet"]


def _upper(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def makers(rng: random.Random) -> list[Callable[[], str]]:
    r = rng.randint
    return [
        lambda: f"Upgrade to version {r(1, 12)}.{r(0, 30)}.{r(0, 99)}.{r(0, 999)} fixes the crash.",
        lambda: f"pip install 'torch=={r(1, 2)}.{r(0, 9)}.{r(0, 3)}' "
                f"'numpy>={r(1, 2)}.{r(20, 26)}'",
        lambda: f"Order #{r(10**11, 10**12 - 1)} shipped on 2026-{r(1, 12):02d}-{r(1, 28):02d}.",
        lambda: f"Invoice INV-{r(2020, 2026)}-{r(1, 999999):06d} total "
                f"${r(10, 99999):,}.{r(0, 99):02d}",
        lambda: f"2026-11-{r(1, 30):02d}T{r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}."
                f"{r(0, 999999):06d}Z "
                f"INFO worker-{r(1, 64)} processed {r(1, 10**6)} rows in {r(1, 9999)} ms",
        lambda: f"The release date was {r(2015, 2026)}-{r(1, 12):02d}-{r(1, 28):02d} and the "
                f"next one is planned for Q{r(1, 4)}.",
        lambda: f"Price dropped from €{r(10, 999)},{r(0, 99):02d} to €{r(5, 500)},{r(0, 99):02d} "
                f"({r(5, 60)}% off).",
        lambda: f"commit {_hex(rng, 40)}\nAuthor: CI Bot\n    fix flaky test in parser",
        lambda: f"Request {uuid.UUID(int=rng.getrandbits(128), version=4)} took {r(1, 9999)} ms",
        lambda: f"Our build agents run Ubuntu 22.04.{r(1, 5)} with kernel "
                f"{r(5, 6)}.{r(0, 15)}.0-{r(10, 99)}",
        lambda: f"Part number {r(100, 999)}-{r(1000, 9999)}-{r(10, 99)} is back in stock "
                f"({r(1, 500)} units).",
        lambda: f"SKU 555-{r(1000, 9999)}-{r(10, 99)} replaces model X{r(100, 999)}.",
        lambda: f"echo {_b64(rng.choice(HARMLESS))} | base64 -d",
        lambda: f"Test card {_luhn_fail(rng)} was rejected as expected (Luhn check).",
        lambda: f"Tracking number 1Z{_upper(rng, 16)} left the depot.",
        lambda: f"docker run -p {r(1024, 9999)}:{r(1024, 9999)} -e WORKERS={r(1, 32)} "
                f"app:{r(1, 9)}.{r(0, 9)}.{r(0, 9)}",
        lambda: f"SELECT id, total FROM orders WHERE created_at > '2026-{r(1, 12):02d}-01' "
                f"AND total > {r(100, 10000)} LIMIT {r(10, 500)};",
        lambda: f"for i in range({r(2, 100)}):\n    total += weights[i] * {r(1, 9)}.{r(0, 99)}",
        lambda: f"max_tokens: {r(256, 8192)}\ntemperature: 0.{r(0, 9)}\ntop_p: "
                f"0.{r(80, 99)}\nmodel: llama-3.1-{r(8, 70)}b",
        lambda: f"The meeting moved to {r(8, 18)}:{rng.choice(['00', '30'])} in room "
                f"{r(100, 999)}, "
                f"agenda item {r(1, 20)}.",
        lambda: f"Revenue grew {r(1, 40)}.{r(0, 9)}% to ${r(1, 900)}.{r(0, 9)}M; EBITDA "
                f"{r(1, 30)}.{r(0, 9)}%",
        lambda: f"Stack trace: File \"/app/src/handlers.py\", line {r(10, 999)}, in handle\n"
                f"    raise ValueError('bad input {r(1, 99)}')",
        lambda: f"Set the log level to DEBUG and the timeout to {r(5, 120)} s; retries = "
                f"{r(1, 9)}.",
        lambda: f"ISBN 978-{r(0, 1)}-{r(100, 999)}-{r(10000, 99999)}-{r(0, 9)} is the "
                f"second edition.",
        lambda: f"The sensor reported {r(10, 99)}.{r(0, 999)} °C at {r(0, 23):02d}:{r(0, 59):02d} "
                f"(batch {r(1000, 9999)}).",
        lambda: f"Ticket JIRA-{r(100, 99999)}: the dashboard shows {r(1, 999)} errors since "
                f"build {r(1000, 99999)}.",
        lambda: "Use the placeholder token <YOUR_API_KEY> in the docs, never a real one.",
        lambda: f"const timeoutMs = {r(100, 60000)}; // see RFC {r(1000, 9999)} section "
                f"{r(1, 9)}.{r(1, 9)}",
        lambda: f"Coordinates {r(10, 80)}.{r(100000, 999999)}, "
                f"{r(1, 170)}.{r(100000, 999999)} mark the site.",
        lambda: f"Chapter {r(1, 30)}, verse {r(1, 50)}: page {r(1, 900)} of {r(900, 1200)}.",
        lambda: f"The API returned HTTP {rng.choice([200, 201, 400, 404, 429, 500, 503])} after "
                f"{r(1, 30)}.{r(0, 999):03d} s with x-request-id {_hex(rng, 32)}",
        lambda: f"sha256:{_hex(rng, 64)} is the image digest we pinned.",
        lambda: f"Your subscription renews on {r(1, 28)}/{r(1, 12)}/{r(2026, 2028)} for "
                f"{r(5, 99)}.{r(0, 99):02d} EUR.",
        lambda: f"The birthday party for the team is on "
                f"{r(2026, 2027)}-{r(1, 12):02d}-{r(1, 28):02d}? "
                f"No - that is the offsite, sorry.",
        lambda: f"Regex {r(1, 9)}: ^\\d{{3}}-\\d{{4}}$ matches {r(1, 99)} of {r(100, 200)} "
                f"samples.",
        lambda: f"Benchmark: {r(100, 9000)} tokens/s at batch {r(1, 256)}, p99 {r(10, 900)} ms, "
                f"{r(1, 8)}x H100.",
        lambda: f"Lot {r(10000, 99999)}/{r(100, 999)} expires 20{r(27, 30)}-{r(1, 12):02d}.",
        lambda: f"Migration 00{r(10, 99)}_add_index ran in {r(1, 99)}.{r(0, 9)} s on "
                f"{r(1, 9)}{r(0, 9)} GB.",
    ]


def clean_rows(rng: random.Random, n: int = 400) -> list[dict[str, object]]:
    made = makers(rng)
    return [{"text": made[i % len(made)](), "spans": [], "set": "clean"} for i in range(n)]
