"""A second held-out set, written one sentence at a time after every rule was fixed
(no template is reused from the other sets) and scored once, never tuned on. Values with
a checksum come from the makers in ``pii_corpus_make.py``; the rest are written inline.
Each entry: (type, sentence with ``[[value]]`` marking the labelled span)."""

from __future__ import annotations

import random

from pii_corpus_make import de_tax, es_dni, es_nie, fr_nir, it_cf, nino, nl_bsn, pl_pesel, se_pnr


def sentences(rng: random.Random) -> list[tuple[str, str]]:
    return [
        ("EMAIL", "Forwarding the complaint from [[dana.whitaker@protonmail.com]], see below."),
        ("EMAIL", "git config user.email \"[[r.okonkwo@lagos-tech.ng]]\""),
        ("EMAIL", "El cliente [[pepe.lopez@hotmail.es]] no recibe las facturas."),
        ("PHONE", "Please text the driver at [[+1 415-555-0132]] when the parcel is ready."),
        ("PHONE", "Rufnummer der Praxis: [[089 2180 3456]]"),
        ("PHONE", "call centre escalation line [[+33 (0)1 70 36 41 00]]"),
        ("IP_ADDRESS", "fail2ban banned [[45.33.32.156]] after 5 retries"),
        ("IP_ADDRESS", "upstream connect error to [[2606:4700:4700::1111]]:443"),
        ("IP_ADDRESS", "My laptop shows [[192.0.2.44]] but the VPN says otherwise"),
        ("CREDIT_CARD", "Card on file: [[5500 0000 0000 0004]], please stop charging it."),
        ("CREDIT_CARD", "amex [[3400 000000 00009]] exp 1/30"),
        ("CREDIT_CARD", "pay with [[6011.0000.0000.0004]] instead"),
        ("IBAN", "Überweisung an [[GB82 WEST 1234 5698 7654 32]] bitte bestätigen"),
        ("IBAN", "iban: [[fr14-2004-1010-0505-0001-3m02-606]]"),
        ("IBAN", "Cuenta [[ES9121000418450200051332]] a nombre de la empresa"),
        ("US_SSN", "The IRS letter references SSN [[412 56 7780]]."),
        ("US_SSN", "ssn:[[401-22-9087]]"),
        ("US_SSN", "member social security no. [[523-71-4418]] needs review"),
        ("UK_NINO", "Payroll has the wrong NI number, it should be [[" + nino(rng, True) + "]]."),
        ("UK_NINO", "NINO=[[" + nino(rng, False) + "]]"),
        ("UK_NINO", "NI: [[" + nino(rng, True) + "]] (from the P45)"),
        ("DE_TAX_ID", "IdNr. des Kindes: [[" + de_tax(rng, True) + "]]"),
        ("DE_TAX_ID", "steuerliche Identifikationsnummer [[" + de_tax(rng, False) + "]]"),
        ("DE_TAX_ID", "Steuer-ID [[" + de_tax(rng, False) + "]] wurde abgelehnt"),
        ("FR_NIR", "Numéro de sécurité sociale [[" + fr_nir(rng, True) + "]] du salarié"),
        ("FR_NIR", "nir=[[" + fr_nir(rng, False) + "]]"),
        ("FR_NIR", "Mon numéro de sécu : [[" + fr_nir(rng, True) + "]]"),
        ("ES_DNI", "Titular con DNI [[" + es_dni(rng, False) + "]] solicita copia."),
        ("ES_DNI", "dni: [[" + es_dni(rng, True) + "]]"),
        ("ES_DNI", "El documento [[" + es_dni(rng, False) + "]] no coincide con la foto"),
        ("ES_NIE", "Tarjeta de residencia NIE [[" + es_nie(rng, False) + "]]"),
        ("ES_NIE", "nie=[[" + es_nie(rng, True) + "]]"),
        ("ES_NIE", "Su NIE es [[" + es_nie(rng, False) + "]], compruébelo."),
        ("IT_FISCAL_CODE", "Il CF [[" + it_cf(rng) + "]] risulta già registrato."),
        ("IT_FISCAL_CODE", "codice_fiscale=[[" + it_cf(rng) + "]]"),
        ("IT_FISCAL_CODE", "Per la ricetta serve il codice fiscale [[" + it_cf(rng) + "]]."),
        ("NL_BSN", "Graag het BSN [[" + nl_bsn(rng) + "]] controleren."),
        ("NL_BSN", "bsn: [[" + nl_bsn(rng) + "]]"),
        ("NL_BSN", "De werknemer met burgerservicenummer [[" + nl_bsn(rng) + "]] is gestart."),
        ("PL_PESEL", "Proszę o zmianę danych, PESEL [[" + pl_pesel(rng) + "]]."),
        ("PL_PESEL", "pesel=[[" + pl_pesel(rng) + "]]"),
        ("PL_PESEL", "Mój numer PESEL: [[" + pl_pesel(rng) + "]]"),
        ("SE_PERSONNUMMER", "Ange personnummer [[" + se_pnr(rng, False) + "]] vid bokning."),
        ("SE_PERSONNUMMER", "personnummer=[[" + se_pnr(rng, True) + "]]"),
        ("SE_PERSONNUMMER", "Patientens personnummer är [[" + se_pnr(rng, False) + "]]."),
        ("DATE_OF_BIRTH", "Passenger was born on [[29/02/1988]] in Leeds."),
        ("DATE_OF_BIRTH", "Geburtsdatum des Versicherten: [[17.09.1958]]"),
        ("DATE_OF_BIRTH", "date of birth [[July 4, 1976]], nationality US"),
        ("ADDRESS", "Deliver to [[77 Mass Avenue, Cambridge, MA 02139]] before noon."),
        ("ADDRESS", "Neue Anschrift: [[Goethestraße 14, 04109 Leipzig]]"),
        ("ADDRESS", "Entregar en [[Calle de Alcalá 50, 28014 Madrid]], portería."),
        ("PERSON", "Dear Ms. Lindqvist, your order has shipped."),
        ("PERSON", "my name is [[Tomás Oliveira]] and I cannot log in"),
        ("PERSON", "Herr [[Matthias Vogel]] bittet um Rückruf."),
        ("SECRET", "STRIPE_SECRET_KEY=[[sk_live_51MzQ9bKs7d2eFgH8iJkL0mNoPqRsTuV]]"),
        ("SECRET", "remote = https://oauth2:[[glpat-9f8e7d6c5b4a3f2e1d0c]]@gitlab.com/x.git"),
        ("SECRET", "aws_access_key_id = [[AKIAZ7QW3ERTY5UIOP2A]]"),
    ]


CLEAN = [
    "Bump version to 3.11.7 and rebuild the wheels for manylinux2014.",
    "The p99 latency went from 412 ms to 388 ms after the 2026-10-14 deploy.",
    "Order 100023948812 was split into shipments 1/3, 2/3 and 3/3.",
    "Invoice total: 1.234,56 EUR (incl. 19% VAT), due 30.12.2026.",
    "The container listens on 0.0.0.0:8080; health check every 10 s.",
    "Git tag v2.14.0-rc.1 points at 3f9a2c1e.",
    "Use 4 x 16 GB DIMMs; the board supports 2133-3200 MT/s.",
    "The phone model SM-G991B ships with firmware G991BXXU5CVF1.",
    "Serial number 5CG1234XYZ is under warranty until 2027.",
    "Run pytest -k 'test_parse and not slow' -n 4 --maxfail=1.",
    "Her birthday cake order: 2 kg, chocolate, pick-up Saturday 10:00.",
    "Lines 1200-1350 of parser.c handle the UTF-16 surrogate pairs.",
    "Room 4.12 is booked from 14:00 to 15:30 on 12/05.",
    "The API key goes in the X-Api-Key header; see the docs for the format.",
    "Conversion rate 1 USD = 0.9213 EUR on 2026-11-30.",
]


def blind_rows(rng: random.Random) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for kind, marked in sentences(rng):
        if "[[" not in marked:  # "Dear Ms. Lindqvist": the name is the one after the cue
            marked = marked.replace("Lindqvist", "[[Lindqvist]]")
        start = marked.index("[[")
        end = marked.index("]]") - 2
        text = marked.replace("[[", "").replace("]]", "")
        out.append({"text": text, "spans": [[start, end, kind]], "set": "blind"})
    out += [{"text": text, "spans": [], "set": "blind-clean"} for text in CLEAN]
    return out
