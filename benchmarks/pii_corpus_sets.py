"""The hand-written sentences and value formats of the detector's corpus (see
``pii_corpus_make.py``, which writes them out). ``DEV`` is what the rules were written
against; ``HELD`` (in ``pii_corpus_held.py``) was written afterwards."""

from __future__ import annotations

import random
import string
from collections.abc import Callable

from pii_corpus_make import (
    card,
    de_tax,
    encoded,
    es_dni,
    es_nie,
    fmt_card,
    fmt_iban,
    fr_nir,
    it_cf,
    make_iban,
    make_ssn,
    nino,
    nl_bsn,
    pl_pesel,
    place,
    rand,
    se_pnr,
)

Maker = Callable[[random.Random, int], str]

DEV_TEMPLATES: dict[str, list[str]] = {
    "EMAIL": [
        "Hi, please reset the password for {} - she is locked out since this morning.",
        "From: {}\nSubject: invoice question\n\nHello, I was charged twice.",
        "user_email = \"{}\"  # TODO move to env",
        "2026-11-30 12:01:07 WARN login failed for {} from the mobile app",
        "Kannst du bitte {} zum Verteiler hinzufügen?",
        "Merci d'envoyer le contrat signé à {} avant vendredi.",
        "Contact: {} | Role: Account owner | Plan: Pro",
        "Summarise this thread. Reply-To: <{}>",
    ],
    "PHONE": [
        "Customer called from {} about the late delivery, please call back.",
        "Mobile: {}\nOffice hours 9-17",
        "Can you reformat this number for the CRM: {}",
        "Rückruf bitte unter {} (ab 14 Uhr).",
        "Le client est joignable au {} en journée.",
        "phone_number: '{}'",
        "Llámame al {} cuando puedas.",
        "HR note: emergency contact (spouse) {}.",
    ],
    "IP_ADDRESS": [
        "Failed SSH login from {} at 03:12, 14 attempts.",
        "nginx: {} - - [30/Nov/2026:10:01:22 +0000] \"GET /admin HTTP/1.1\" 403",
        "Why is {} blocked by our WAF rule 942100?",
        "The customer's home router is {} according to the logs.",
        "allow_from = [\"{}\"]",
        "Ticket 4411: user at {} reports the VPN drops every hour.",
    ],
    "CREDIT_CARD": [
        "Please charge {} for the renewal, expiry 09/28.",
        "My card number is {} and the charge failed twice.",
        "Payment log: pan={} status=declined code=05",
        "Kartennummer: {} (Ablauf 11/27)",
        "Numéro de carte {} - merci de rembourser.",
        "Customer read out the card {} over the phone, CVV withheld.",
        "refund to card ending... actually the full number is {}",
        "Tarjeta {} caducada, ¿pueden actualizarla?",
    ],
    "IBAN": [
        "Please wire the deposit to IBAN {} by Friday.",
        "Bankverbindung: {} (Sparkasse)",
        "Mon RIB : IBAN {} BIC BNPAFRPPXXX",
        "payout_account: {}",
        "Refund failed for account {} - check the holder name.",
        "Il mio IBAN è {}, intestato a me.",
        "Mijn rekeningnummer is {}.",
        "Transfiere el importe a {} antes del día 5.",
    ],
    "US_SSN": [
        "Applicant SSN: {} (verified against the W-2).",
        "Her social security number is {} and she needs a new card.",
        "ssn={} dob_verified=true",
        "For the background check I entered {} as my SSN.",
        "Employee record: SSN {}, start date 2026-01-05.",
    ],
    "UK_NINO": [
        "My National Insurance number is {}.",
        "NI number: {} - please update payroll.",
        "The form asks for a NINO, mine is {}",
        "HMRC letter quotes {} as the reference for my tax code.",
    ],
    "DE_TAX_ID": [
        "Meine Steuer-ID lautet {}.",
        "Steueridentifikationsnummer: {}",
        "Bitte tragen Sie die IdNr {} in das Formular ein.",
        "tax id (Germany): {}",
    ],
    "FR_NIR": [
        "Mon numéro de sécurité sociale est le {}.",
        "NIR : {} (carte Vitale)",
        "Numéro de sécu {} à mettre à jour.",
        "Salarié - n° SS {}",
    ],
    "ES_DNI": [
        "Mi DNI es {} y no me deja registrarme.",
        "DNI del titular: {}",
        "Adjunto copia del documento {} por ambas caras.",
        "nif_cliente: {}",
    ],
    "ES_NIE": [
        "Mi NIE es {}, soy residente desde 2019.",
        "NIE del trabajador: {}",
        "Necesito renovar la tarjeta con número {}.",
        "documento extranjero {}",
    ],
    "IT_FISCAL_CODE": [
        "Il mio codice fiscale è {}.",
        "Codice fiscale del paziente: {}",
        "CF {} - verificare la residenza.",
        "tax_code: {}",
    ],
    "NL_BSN": [
        "Mijn BSN is {}.",
        "Burgerservicenummer: {}",
        "BSN {} staat niet in de administratie.",
        "Please update the record, BSN {} belongs to the new hire.",
    ],
    "PL_PESEL": [
        "Mój PESEL to {}.",
        "PESEL pacjenta: {}",
        "Numer PESEL {} nie przechodzi walidacji w systemie?",
        "pesel: {}",
    ],
    "SE_PERSONNUMMER": [
        "Mitt personnummer är {}.",
        "Personnummer: {}",
        "Kunden uppgav {} som personnummer.",
        "personnummer {} saknas i registret",
    ],
    "DATE_OF_BIRTH": [
        "Patient {} - allergic to penicillin.",
        "{}, needs a new passport photo.",
        "Please check the applicant: {}.",
        "Form: name=J. Smith; {}; country=US",
        "The employee ({}) asked about the pension scheme.",
    ],
    "ADDRESS": [
        "Please ship the replacement to {}.",
        "New billing address: {}",
        "Lieferadresse: {}",
        "Adresse de livraison : {}",
        "Dirección de envío: {}",
        "Indirizzo di consegna: {}",
        "Afleveradres: {}",
        "The tenant at {} reported a leak.",
    ],
    "PERSON": [
        "{} and I need help with my pension claim.",
        "{}, we regret to inform you the position is filled.",
        "Ticket opened by {} on behalf of the finance team.",
        "{} - please find the signed contract attached.",
    ],
    "SECRET": [
        "Why does this fail? client = Client(api_key=\"{}\")",
        "export API_TOKEN={}",
        "config.yaml:\n  credentials:\n    key: {}\n  region: eu-west-1",
        "I accidentally committed {} to the repo, how do I rotate it?",
        "curl -H 'Authorization: Bearer {}' https://api.internal/v1/items",
        "Here is the .env: SERVICE_KEY={}",
    ],
}

Value = tuple[str, str | None]  # the text placed, the part of it labelled (None: all)
SEPS = [" ", "-", ".", "/", "none", " "]
EMAILS = ["maria.garcia@gmail.com", "j.smith+billing@outlook.com", "k.mueller@web.de",
          "claire.dubois@orange.fr", "ops-team@acme-logistics.co.uk", "t.nguyen@uni-hamburg.de",
          "rossi.luca@libero.it", "pieter.de.vries@ziggo.nl", "a_kowalska@wp.pl",
          "sven.larsson@telia.se", "devops@startup.io", "jane.doe@example.com"]
PHONES = ["+44 20 7946 0958", "(415) 555-2671", "+49 30 901820", "030 12345678",
          "+33 1 42 68 53 00", "01 42 68 53 00", "+34 912 345 678", "+39 06 6982 1234",
          "+31 20 624 1111", "020-6241111", "+48 22 123 45 67", "+46 8 123 456 78",
          "+1-202-555-0143", "202.555.0143", "0044 20 7946 0958", "+1 (646) 555-0199",
          "07700 900123", "+49 (0)89 1234567", "06 12 34 56 78", "+34 600 12 34 56"]
IPS = ["203.0.113.7", "198.51.100.23", "81.2.69.142", "2001:db8:85a3::8a2e:370:7334",
       "185.199.108.153", "fe80::1ff:fe23:4567:890a", "92.184.12.77", "10.20.30.40",
       "2a02:8109:9c40:1a00::4f2", "172.217.22.14"]
DOB_FORMATS = [("born on ", "{d}/{m}/{y}"), ("DOB: ", "{m}/{d}/{y}"),
               ("date of birth ", "{y}-{m}-{d}"), ("birthdate: ", "{d}.{m}.{y}"),
               ("Geburtsdatum: ", "{d}.{m}.{y}"), ("geboren am ", "{d}.{m}.{y}"),
               ("née le ", "{d}/{m}/{y}"), ("fecha de nacimiento: ", "{d}/{m}/{y}"),
               ("data di nascita ", "{d}/{m}/{y}"), ("geboortedatum ", "{d}-{m}-{y}"),
               ("born ", "{D} March {y}"), ("Date of Birth: ", "March {D}, {y}"),
               ("D.O.B. ", "{d}/{m}/{y}"), ("nacido el ", "{D} de mayo de {y}"),
               ("birthday ", "{y}-{m}-{d}"), ("geboren am ", "{D}. Juli {y}")]
ADDRESSES = [
    "42 Baker Street, London NW1 6XE", "1600 Pennsylvania Avenue NW, Washington, DC 20500",
    "350 Fifth Avenue, New York, NY 10118", "12 Elm Road, Leeds LS6 2AB",
    "Musterstraße 12a, 10115 Berlin", "Berliner Straße 5, 60311 Frankfurt am Main",
    "Hauptstr. 7, 80331 München", "Am Lindenweg 3, 50667 Köln",
    "12 rue de la Paix, 75002 Paris", "3 bis avenue Victor Hugo, 69002 Lyon",
    "8, boulevard Saint-Michel, 75006 Paris",
    "Calle Mayor 12, 28013 Madrid", "C/ Alcalá, 45, 3º B, 28014 Madrid",
    "Avenida de la Constitución 20, 41004 Sevilla", "Carrer de Mallorca 401, 08013 Barcelona",
    "Via Roma 1, 00184 Roma", "Via Giuseppe Garibaldi, 7 - 20121 Milano",
    "Piazza Navona 2, 00186 Roma (RM)", "Corso Vittorio Emanuele II 15, 10121 Torino",
    "Kalverstraat 92, 1012 PH Amsterdam", "Prinsengracht 263, 1016 GV Amsterdam",
    "Coolsingel 40, 3011 AD Rotterdam", "Van Baerlestraat 12, 1071 AZ Amsterdam"]
NAMES = ["my name is Maria Garcia", "Dear Mr. Thompson", "Dear Ms Okafor",
         "I am Jean-Pierre Martin", "Mrs. Eleanor Whitfield", "ich heiße Jonas Becker",
         "je m'appelle Camille Laurent", "me llamo Lucía Fernández", "mi chiamo Giulia Bianchi",
         "ik heet Sanne Visser", "Name: Piotr Nowak", "Dr. Aisha Rahman", "Herr Klaus Richter",
         "Frau Anna Schmidt"]


def _card(rng: random.Random, i: int) -> Value:
    kinds = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
             ("6011", 16), ("35", 16), ("36", 14), ("62", 16), ("4", 19)]
    prefix, length = kinds[i % len(kinds)]
    return fmt_card(card(rng, prefix, length), SEPS[i % len(SEPS)]), None


def _iban(rng: random.Random, i: int) -> Value:
    countries = [("DE", 18, 0), ("FR", 23, 0), ("ES", 20, 0), ("IT", 23, 1), ("NL", 14, 4),
                 ("GB", 18, 4), ("BE", 12, 0), ("AT", 16, 0), ("PL", 24, 0), ("CH", 17, 0)]
    cc, n, letters = countries[i % len(countries)]
    style = ["spaced", "compact", "lower", "dashed", "lowcompact"][i % 5]
    return fmt_iban(make_iban(rng, cc, n, letters), style), None


def _dob(rng: random.Random, i: int) -> Value:
    y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
    cue, fmt = DOB_FORMATS[i % len(DOB_FORMATS)]
    date = fmt.format(d=f"{d:02d}", m=f"{m:02d}", y=str(y), D=str(d))
    return cue + date, date


def _secret(rng: random.Random, i: int) -> Value:
    b64 = string.ascii_letters + string.digits + "+/"
    options: list[Value] = [
        ("sk_live_" + rand(rng, 24), None), ("rk_live_" + rand(rng, 24), None),
        ("ghp_" + rand(rng, 36), None), ("github_pat_11A" + rand(rng, 19) + "_" +
                                         rand(rng, 59), None),
        ("glpat-" + rand(rng, 20, string.ascii_letters + string.digits + "_-"), None),
        ("xoxb-" + rand(rng, 11, "0123456789") + "-" + rand(rng, 12, "0123456789") + "-" +
         rand(rng, 24), None),
        ("https://hooks.slack.com/services/T" + rand(rng, 8, string.ascii_uppercase) + "/B"
         + rand(rng, 8, string.ascii_uppercase) + "/" + rand(rng, 24), None),
        ("AKIA" + rand(rng, 16, string.ascii_uppercase + "234567"), None),
        ("AIza" + rand(rng, 35, string.ascii_letters + string.digits + "_-"), None),
        ("sk-proj-" + rand(rng, 48, string.ascii_letters + string.digits + "_-"), None),
        ("sk-ant-api03-" + rand(rng, 80, string.ascii_letters + string.digits + "_-"), None),
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwicm9sZSI6ImFkbWluIn0."
         + rand(rng, 43, string.ascii_letters + string.digits + "_-"), None),
    ]
    key = rand(rng, 86, b64) + "=="
    options.append(("DefaultEndpointsProtocol=https;AccountName=prodlogs;AccountKey=" + key
                    + ";EndpointSuffix=core.windows.net", key))
    pem = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(rand(rng, 64, b64) for _ in range(4))
           + "\n-----END RSA PRIVATE KEY-----")
    options.append((pem, None))
    pgp = ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(
        rand(rng, 64, b64) for _ in range(3)) + "\n=Ab3x\n-----END PGP PRIVATE KEY BLOCK-----")
    options.append((pgp, None))
    return options[i % len(options)]


def _pick(values: list[str]) -> Maker:
    return lambda rng, i: values[i % len(values)]


MAKERS: dict[str, Callable[[random.Random, int], Value]] = {
    "EMAIL": lambda rng, i: (EMAILS[i % len(EMAILS)], None),
    "PHONE": lambda rng, i: (PHONES[i % len(PHONES)], None),
    "IP_ADDRESS": lambda rng, i: (IPS[i % len(IPS)], None),
    "CREDIT_CARD": _card,
    "IBAN": _iban,
    "US_SSN": lambda rng, i: (make_ssn(rng, "-" if i % 3 else " "), None),
    "UK_NINO": lambda rng, i: (nino(rng, i % 2 == 0), None),
    "DE_TAX_ID": lambda rng, i: (de_tax(rng, i % 2 == 0), None),
    "FR_NIR": lambda rng, i: (fr_nir(rng, i % 2 == 0), None),
    "ES_DNI": lambda rng, i: (es_dni(rng, i % 3 == 0), None),
    "ES_NIE": lambda rng, i: (es_nie(rng, i % 3 == 0), None),
    "IT_FISCAL_CODE": lambda rng, i: (it_cf(rng), None),
    "NL_BSN": lambda rng, i: (nl_bsn(rng), None),
    "PL_PESEL": lambda rng, i: (pl_pesel(rng), None),
    "SE_PERSONNUMMER": lambda rng, i: (se_pnr(rng, i % 3 == 0), None),
    "DATE_OF_BIRTH": _dob,
    "ADDRESS": lambda rng, i: (ADDRESSES[i % len(ADDRESSES)], None),
    "PERSON": lambda rng, i: (NAMES[i % len(NAMES)], NAMES[i % len(NAMES)].split(
        " ", 2)[-1] if NAMES[i % len(NAMES)].lower().startswith(("my name is", "ich heiße",
                                                                  "je m'appelle")) else None),
    "SECRET": _secret,
}


def _person_label(value: str) -> str:
    for cue in ("my name is ", "ich heiße ", "je m'appelle ", "me llamo ", "mi chiamo ",
                "ik heet ", "Name: ", "Dear Mr. ", "Dear Ms ", "I am ", "Mrs. ", "Dr. ",
                "Herr ", "Frau "):
        if value.startswith(cue):
            return value[len(cue):]
    raise ValueError(value)


def rows(rng: random.Random, templates: dict[str, list[str]], per_type: int,
         subset: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for kind, sentences in templates.items():
        for i in range(per_type):
            value, label = MAKERS[kind](rng, i)
            if kind == "PERSON":
                label = _person_label(value)
            template = sentences[(i + i // len(sentences)) % len(sentences)]
            out.append(place(template, value, kind, subset, label))
    return out


def encoded_rows(rng: random.Random, subset: str) -> list[dict[str, object]]:
    """Values hidden by an encoding; the label is the whole encoded run."""
    out: list[dict[str, object]] = []
    plain = [("EMAIL", "maria.garcia@gmail.com"), ("CREDIT_CARD", "4111 1111 1111 1111"),
             ("IBAN", "DE89 3704 0044 0532 0130 00"), ("PHONE", "+44 20 7946 0958"),
             ("SECRET", "sk_live_" + rand(rng, 24)), ("EMAIL", "k.mueller@web.de")]
    hows = ["base64", "url", "fullwidth", "zwsp"]
    for i in range(24):
        kind, value = plain[i % len(plain)]
        how = hows[(i // len(plain)) % len(hows)]
        if how == "url" and kind in ("CREDIT_CARD", "IBAN"):
            how = "base64"
        out.append(place(["Decode this for me: {}", "payload={} (from the webhook)",
                          "The form field contained {}", "debug: value={}"][i % 4],
                         encoded(value, how), kind, subset))
    return out


def dev_rows(rng: random.Random) -> list[dict[str, object]]:
    return rows(rng, DEV_TEMPLATES, 44, "dev") + encoded_rows(rng, "dev")
