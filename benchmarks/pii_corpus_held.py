"""The held-out part of the detector's corpus, written after the rules and never tuned
on: other sentences, other people, other formats of the same types (see
``pii_corpus_make.py``)."""

from __future__ import annotations

import random
import string

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

HELD_TEMPLATES: dict[str, list[str]] = {
    "EMAIL": ["can you draft a polite reminder to {} about the overdue timesheet?",
              "Error: SMTP 550 mailbox unavailable <{}>",
              "{\"customer\": {\"email\": \"{}\", \"tier\": \"gold\"}}",
              "Bitte antworte {} bis Montag."],
    "PHONE": ["Translate to Spanish: please call me back on {} tomorrow.",
              "contact.phone = \"{}\"", "Whatsapp: {}", "Tel. {} (Zentrale)"],
    "IP_ADDRESS": ["Jan 12 09:14:33 sshd[2211]: Accepted publickey for deploy from {} port 52814",
                   "X-Forwarded-For: {}", "Which country is {} in?",
                   "rule: deny src {} dst any"],
    "CREDIT_CARD": ["Is {} a Visa or a Mastercard?", "cc: {} | exp 03/29 | name on card J BROWN",
                    "Kreditkarte {} wurde abgelehnt.",
                    "I typed {} into the checkout and it spun forever"],
    "IBAN": ["Can you check if {} is a valid IBAN?", "Empfänger-IBAN: {}",
             "bank_account_iban={}", "Numero di conto {} presso Intesa"],
    "US_SSN": ["W-4 attached; SSN is {}.", "the caller gave {} as her social security number",
               "SSN# {}", "Verify SSN {} against the payroll record."],
    "UK_NINO": ["National Insurance No. {}", "P60 shows NI {}",
                "my NI number {} is wrong on the payslip"],
    "DE_TAX_ID": ["Steuer-Identifikationsnummer {} fehlt im Lohnkonto.",
                  "Die Steuer-ID {} gehört meiner Frau."],
    "FR_NIR": ["n° de sécurité sociale : {}", "Mon NIR {} est refusé par Ameli."],
    "ES_DNI": ["DNI {} caducado", "Con DNI número {}, solicito la baja."],
    "ES_NIE": ["NIE {} - permiso de trabajo", "El NIE {} aparece duplicado."],
    "IT_FISCAL_CODE": ["Codice Fiscale {} errato sulla fattura.", "c.f. {}"],
    "NL_BSN": ["Het BSN {} is onjuist ingevoerd.", "BSN-nummer: {}"],
    "PL_PESEL": ["Numer PESEL: {}", "PESEL {} w dokumentacji medycznej"],
    "SE_PERSONNUMMER": ["Personnumret {} finns redan.", "personnr: {}"],
    "DATE_OF_BIRTH": ["Applicant, {}, requests a visa.", "Passenger: A. Rossi, {}",
                      "Record updated - {}.", "{} | gender: F | nationality: IT"],
    "ADDRESS": ["Send the welcome pack to {} please.", "Anschrift: {}",
                "Domicilio: {}", "Woonadres: {}", "He moved to {} last month."],
    "PERSON": ["{} wrote in about the refund.", "Reply to {} re: contract renewal.",
               "{} - absent from 3 to 7 March."],
    "SECRET": ["Can you explain this error? openai.AuthenticationError for key {}",
               "settings.py: SECRET = '{}'", "token: {}",
               "The webhook is {} - is that safe to share?"],
}
EMAILS = ["liam.obrien@icloud.com", "s.petrova@yandex.ru", "hr@bakkerij-jansen.nl",
          "m.schulz@t-online.de", "antoine.girard@free.fr", "carmen.ruiz@telefonica.net",
          "noreply+ticket-8842@helpdesk.acme.com"]
PHONES = ["+44 7700 900461", "+1 312 555 0177", "0151 234 5678", "+49 171 2345678",
          "+33 6 12 34 56 78", "+39 347 123 4567", "(212) 555-0134", "+46 70 123 45 67",
          "+48 601 234 567", "+31 6 12345678"]
IPS = ["85.214.132.117", "2001:0db8:0000:0000:0000:ff00:0042:8329", "91.198.174.192",
       "151.101.1.69", "2a00:1450:4001:82b::200e", "62.210.16.6"]
DOBS = [("born on ", "{D} {Mon} {y}"), ("DOB ", "{d}-{m}-{y}"), ("date of birth: ", "{d}/{m}/{y}"),
        ("Geburtsdatum ", "{d}.{m}.{y}"), ("date de naissance : ", "{d}/{m}/{y}"),
        ("fecha de nacimiento ", "{d}-{m}-{y}"), ("data di nascita: ", "{d}.{m}.{y}"),
        ("geboortedatum: ", "{d}-{m}-{y}"), ("birth date ", "{y}/{m}/{d}"),
        ("b. ", "{d}/{m}/{y}")]
MONTHS = ["January", "February", "April", "June", "August", "October", "December"]
ADDRESSES = ["221B Baker Street, London NW1 6XE", "742 Evergreen Terrace, Springfield, OR 97403",
             "10 Downing Street, London SW1A 2AA", "Königsallee 60, 40212 Düsseldorf",
             "Lindenstraße 3-5, 20099 Hamburg", "15 avenue des Champs-Élysées, 75008 Paris",
             "Calle de Serrano 41, 28001 Madrid", "Paseo de la Castellana 100, 28046 Madrid",
             "Via Nazionale 91, 00184 Roma", "Viale Monza 12, 20127 Milano",
             "Herengracht 502, 1017 CB Amsterdam", "Oudegracht 158, 3511 AZ Utrecht"]
NAMES = ["my name is Oluwaseun Adeyemi", "Dear Mrs. Kowalczyk", "I'm Hannah Fischer",
         "Mr. Rafael Moreno", "je m'appelle Élodie Bernard", "Dear Dr. Chen",
         "mi chiamo Marco Esposito", "ik heet Daan de Jong"]


def _person(value: str) -> str:
    for cue in ("my name is ", "Dear Mrs. ", "I'm ", "Mr. ", "je m'appelle ", "Dear Dr. ",
                "mi chiamo ", "ik heet "):
        if value.startswith(cue):
            return value[len(cue):]
    raise ValueError(value)


def _value(kind: str, rng: random.Random, i: int) -> tuple[str, str | None]:
    if kind == "EMAIL":
        return EMAILS[i % len(EMAILS)], None
    if kind == "PHONE":
        return PHONES[i % len(PHONES)], None
    if kind == "IP_ADDRESS":
        return IPS[i % len(IPS)], None
    if kind == "CREDIT_CARD":
        prefix, length = [("4", 16), ("53", 16), ("2720", 16), ("37", 15), ("6011", 16),
                          ("4", 13)][i % 6]
        return fmt_card(card(rng, prefix, length), ["-", " ", "none", ".", "/"][i % 5]), None
    if kind == "IBAN":
        cc, n, letters = [("DE", 18, 0), ("ES", 20, 0), ("NL", 14, 4), ("FR", 23, 0),
                          ("IE", 18, 4), ("PT", 21, 0)][i % 6]
        style = ["lower", "dashed", "compact", "spaced", "lowcompact"][i % 5]
        return fmt_iban(make_iban(rng, cc, n, letters), style), None
    simple = {"US_SSN": lambda: make_ssn(rng, " " if i % 2 else "-"),
              "UK_NINO": lambda: nino(rng, i % 2 == 1),
              "DE_TAX_ID": lambda: de_tax(rng, i % 2 == 1),
              "FR_NIR": lambda: fr_nir(rng, i % 2 == 1), "ES_DNI": lambda: es_dni(rng, i % 2 == 1),
              "ES_NIE": lambda: es_nie(rng, i % 2 == 1), "IT_FISCAL_CODE": lambda: it_cf(rng),
              "NL_BSN": lambda: nl_bsn(rng), "PL_PESEL": lambda: pl_pesel(rng),
              "SE_PERSONNUMMER": lambda: se_pnr(rng, i % 2 == 1)}
    if kind in simple:
        return simple[kind](), None
    if kind == "DATE_OF_BIRTH":
        cue, fmt = DOBS[i % len(DOBS)]
        d, m, y = rng.randint(1, 28), rng.randint(1, 12), rng.randint(1935, 2006)
        date = fmt.format(d=f"{d:02d}", m=f"{m:02d}", y=y, D=d, Mon=rng.choice(MONTHS))
        return cue + date, date
    if kind == "ADDRESS":
        return ADDRESSES[i % len(ADDRESSES)], None
    if kind == "PERSON":
        value = NAMES[i % len(NAMES)]
        return value, _person(value)
    return _secret(rng, i)


def _secret(rng: random.Random, i: int) -> tuple[str, str | None]:
    al = string.ascii_letters + string.digits
    options: list[tuple[str, str | None]] = [
        ("sk-proj-" + rand(rng, 64, al + "_-"), None), ("sk_test_" + rand(rng, 30), None),
        ("ghs_" + rand(rng, 36), None), ("glpat-" + rand(rng, 20, al), None),
        ("https://hooks.slack.com/services/T0" + rand(rng, 7, string.ascii_uppercase) + "/B0"
         + rand(rng, 7, string.ascii_uppercase) + "/" + rand(rng, 24), None),
        ("ASIA" + rand(rng, 16, string.ascii_uppercase + "234567"), None),
        ("AIza" + rand(rng, 35, al + "_-"), None),
        ("sk-ant-api03-" + rand(rng, 90, al + "_-"), None),
        ("xoxp-" + rand(rng, 12, string.digits) + "-" + rand(rng, 12, string.digits) + "-"
         + rand(rng, 32, "0123456789abcdef"), None),
        ("github_pat_11B" + rand(rng, 19) + "_" + rand(rng, 59), None),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\n" + rand(rng, 70, al + "+/") + "\n"
         + rand(rng, 70, al + "+/") + "\n-----END OPENSSH PRIVATE KEY-----", None),
        ("eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYi5jbyJ9." + rand(rng, 60, al + "_-"), None),
    ]
    return options[i % len(options)]


def heldout_rows(rng: random.Random, per_type: int = 40) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for kind, sentences in HELD_TEMPLATES.items():
        for i in range(per_type):
            value, label = _value(kind, rng, i)
            template = sentences[(i + i // len(sentences)) % len(sentences)]
            out.append(place(template, value, kind, "heldout", label))
    plain = [("EMAIL", "liam.obrien@icloud.com"), ("CREDIT_CARD", "5555 5555 5555 4444"),
             ("PHONE", "+49 171 2345678"), ("IBAN", "NL91 ABNA 0417 1643 00")]
    for i, how in enumerate(["base64", "fullwidth", "zwsp", "base64", "url", "fullwidth",
                             "base64", "zwsp"] * 2):
        kind, value = plain[i % len(plain)]
        if how == "url" and kind != "EMAIL":
            how = "base64"
        out.append(place(["Field value: {}", "log line: user={} action=update"][i % 2],
                         encoded(value, how), kind, "heldout"))
    return out
