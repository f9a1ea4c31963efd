"""The detector finds each format a person writes a value in, covers the whole value,
and leaves the look-alikes of technical text alone."""

from __future__ import annotations

import pytest

from breakeven.gateway.pii import Finding, detect


def _covered(text: str, value: str, kind: str) -> bool:
    start = text.index(value)
    end = start + len(value)
    return any(f.type == kind and f.start <= start and end <= f.end for f in detect(text))


@pytest.mark.parametrize(("text", "value", "kind"), [
    # cards: dots, slashes, dashes, none; Amex and Diners groupings
    ("card 4111.1111.1111.1111 please", "4111.1111.1111.1111", "CREDIT_CARD"),
    ("card 4111/1111/1111/1111 please", "4111/1111/1111/1111", "CREDIT_CARD"),
    ("pan=5555-5555-5555-4444 status=declined", "5555-5555-5555-4444", "CREDIT_CARD"),
    ("Amex 3782 822463 10005 on file", "3782 822463 10005", "CREDIT_CARD"),
    ("Diners 3056 930902 5904", "3056 930902 5904", "CREDIT_CARD"),
    ("two cards 4111 1111 1111 1111 5555 5555 5555 4444", "5555 5555 5555 4444",
     "CREDIT_CARD"),
    # IBANs: lower case, dashed, compact
    ("iban de89 3704 0044 0532 0130 00 ok", "de89 3704 0044 0532 0130 00", "IBAN"),
    ("IBAN DE89-3704-0044-0532-0130-00.", "DE89-3704-0044-0532-0130-00", "IBAN"),
    ("to nl91abna0417164300 thanks", "nl91abna0417164300", "IBAN"),
    ("Bankverbindung: DE89 3704 0044 0532 0130 00 (Sparkasse)",
     "DE89 3704 0044 0532 0130 00", "IBAN"),
    # SSNs with spaces
    ("SSN 536 90 4399 on the W-2", "536 90 4399", "US_SSN"),
    ("applicant 536-90-4399", "536-90-4399", "US_SSN"),
    # dates of birth in several languages and formats
    ("birthdate: 12.03.1985", "12.03.1985", "DATE_OF_BIRTH"),
    ("Geburtsdatum: 03.07.1961", "03.07.1961", "DATE_OF_BIRTH"),
    ("date of birth 1990-04-17", "1990-04-17", "DATE_OF_BIRTH"),
    ("fecha de nacimiento: 21/11/1979", "21/11/1979", "DATE_OF_BIRTH"),
    ("data di nascita 05/06/1988", "05/06/1988", "DATE_OF_BIRTH"),
    ("geboortedatum 14-02-1970", "14-02-1970", "DATE_OF_BIRTH"),
    ("Date of Birth: March 3, 1985", "March 3, 1985", "DATE_OF_BIRTH"),
    ("nacido el 3 de mayo de 1985", "3 de mayo de 1985", "DATE_OF_BIRTH"),
    ("geboren am 3. Juli 1961", "3. Juli 1961", "DATE_OF_BIRTH"),
    # addresses: postcode and city inside the span
    ("ship to 42 Baker Street, London NW1 6XE today", "42 Baker Street, London NW1 6XE",
     "ADDRESS"),
    ("HQ: 1600 Pennsylvania Avenue NW, Washington, DC 20500",
     "1600 Pennsylvania Avenue NW, Washington, DC 20500", "ADDRESS"),
    ("Lieferadresse: Musterstraße 12a, 10115 Berlin", "Musterstraße 12a, 10115 Berlin",
     "ADDRESS"),
    ("bei Berliner Straße 5, 60311 Frankfurt am Main", "Berliner Straße 5, 60311 Frankfurt am Main",
     "ADDRESS"),
    ("livraison 12 rue de la Paix, 75002 Paris", "12 rue de la Paix, 75002 Paris", "ADDRESS"),
    ("envío a Calle Mayor 12, 28013 Madrid", "Calle Mayor 12, 28013 Madrid", "ADDRESS"),
    ("envío a C/ Alcalá, 45, 3º B, 28014 Madrid", "C/ Alcalá, 45, 3º B, 28014 Madrid",
     "ADDRESS"),
    ("consegna Via Giuseppe Garibaldi, 7 - 20121 Milano",
     "Via Giuseppe Garibaldi, 7 - 20121 Milano", "ADDRESS"),
    ("adres Kalverstraat 92, 1012 PH Amsterdam", "Kalverstraat 92, 1012 PH Amsterdam",
     "ADDRESS"),
    # names after a cue, hyphens and particles included
    ("I am Jean-Pierre Martin from accounts", "Jean-Pierre Martin", "PERSON"),
    ("ik heet Daan de Jong", "Daan de Jong", "PERSON"),
    ("Dear Mr. Thompson, thanks", "Thompson", "PERSON"),
])
def test_finds_the_whole_value(text: str, value: str, kind: str) -> None:
    assert _covered(text, value, kind), detect(text)


SECRETS = [
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "rk_live_" + "51H8zQ2Ab3Cd4Ef5Gh6Ij7Kl",
    "ghp_" + "wWPw5k4aXcaT4fNP0UcnZwJUVFk6LO0pINUx",
    "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789abcdefghi",
    "glpat-" + "xXy1z2AbCdEfGhIjKlMn",
    "xoxb-" + "17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
    "https://hooks.slack.com/services/" + "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "AKIA" + "IOSFODNN7EXAMPLE",
    "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "sk-proj-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "sk-ant-api03-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    "eyJhbGciOiJIUzI1NiJ9." + "eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_finds_provider_secrets(secret: str) -> None:
    text = f"why does this fail? key={secret!r} thanks"
    assert _covered(text, secret, "SECRET"), detect(text)


def test_azure_connection_string_key_and_pem_blocks_are_covered() -> None:
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    conn = f"DefaultEndpointsProtocol=https;AccountName=logs;AccountKey={key};EndpointSuffix=x"
    assert _covered(conn, key, "SECRET")
    for kind in ("RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "PGP PRIVATE KEY BLOCK",
                 "PRIVATE KEY", "EC PRIVATE KEY"):
        block = f"-----BEGIN {kind}-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END {kind}-----"
        assert _covered(f"my key:\n{block}\nthanks", block, "SECRET"), kind


def test_a_password_in_a_url_is_a_secret() -> None:
    text = "DATABASE_URL=postgres://app:S3cr3tPa55@db.internal:5432/app"
    assert _covered(text, "S3cr3tPa55", "SECRET")


@pytest.mark.parametrize("text", [
    "Upgrade to version 10.2.33.4 fixes the crash.",
    "pip install 'torch==2.3.1' 'numpy>=1.26'",
    "Order #569467311258 shipped on 2026-05-01.",
    "Invoice INV-2024-000123 total $12,345.67",
    "2026-11-30T12:00:01.123456Z INFO worker-3 processed 18273 rows in 422 ms",
    "The release date was 2024-05-01 and the next one is planned for Q3.",
    "commit 698291396d93e4f8a1b2c3d4e5f60718293a4b5c fixed the parser",
    "Request 826741f0-edbe-4d58-9ad8-7003f255ad3b took 6013 ms",
    "SKU 555-0199-22 replaces model X100.",
    "echo aGVsbG8gd29ybGQ= | base64 -d",
    "Test card 4111 1111 1111 1112 was rejected as expected (Luhn check).",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "The birthday party for the team is on 2027-07-01? No, the offsite.",
    "Use the placeholder token <YOUR_API_KEY> in the docs.",
    "ISBN 978-0-306-40615-7 is the second edition.",
    "max_tokens: 4096\ntemperature: 0.7\nmodel: llama-3.1-70b",
    "I was sent via email 12 times.",
    "During 2024 the ring 3 network was rebuilt.",
])
def test_leaves_look_alikes_alone(text: str) -> None:
    assert detect(text) == []


def test_a_number_valid_as_two_ids_takes_the_type_its_cue_names() -> None:
    # 11 digits valid both as a PESEL and as a German tax id: the cue decides
    for text, kind in (("PESEL: 44051401458", "PL_PESEL"),):
        assert [f.type for f in detect(text)] == [kind]


def test_findings_are_typed_spans_of_the_text() -> None:
    text = "mail jane.doe@example.com now"
    assert detect(text) == [Finding("EMAIL", 5, 25, 0.95)]
