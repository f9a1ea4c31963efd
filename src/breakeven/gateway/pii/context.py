"""Values found by their shape and the words around them: dates of birth, postal
addresses and person names. Pure.

A date counts as a date of birth only after a cue ("born", "DOB", "date of birth",
"Geburtsdatum", "fecha de nacimiento", "data di nascita", "geboortedatum", ...); an ISO
date in a log line is not one. A street address is found by its shape in English, German,
Dutch, French, Spanish and Italian (number and street type in the order each language
writes them), or after a cue ("lives at", "address:"), and the span runs on over the
flat, the postcode and the city that follow, so pseudonymising it leaves none of them in
clear. Names are found only after a cue ("my name is", "Mr", "Dear"). Every repetition is
bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from breakeven.gateway.pii.finding import Finding

__all__ = ["addresses", "dates_of_birth", "names"]

_DOB_CUES = ("born", "dob", "d.o.b", "date of birth", "birth", "geburtsdatum", "geb.",
             "geboren", "née le", "nee le", "né le", "date de naissance",
             "fecha de nacimiento", "nacid", "data di nascita", "nato il", "nata il",
             "geboortedatum", "data urodzenia", "urodzon", "födelsedatum", "född", "b. ")
_MONTH = r"[A-Za-zéèûäöüíóáç]{3,10}\.?"
_DATE = (r"(?:[0-9]{4}[./-][0-9]{1,2}[./-][0-9]{1,2}"
         r"|[0-9]{1,2}[./-][0-9]{1,2}[./-](?:[0-9]{4}|[0-9]{2})(?![0-9])"
         r"|[0-9]{1,2}(?:st|nd|rd|th|er|\.|º)?\s(?:de\s)?" + _MONTH + r",?\s(?:de\s)?[0-9]{4}"
         r"|" + _MONTH + r"\s[0-9]{1,2}(?:st|nd|rd|th)?,?\s[0-9]{4})")
_DOB = re.compile(
    r"(?:born(?: on| in)?|d\.?o\.?b\b\.?|date of birth|birth ?date|birthday|"
    r"geburtsdatum|geb\.|geboren(?: am)?|n[ée]e? le|date de naissance|"
    r"fecha de nacimiento|nacid[oa](?: el)?|data di nascita|nat[oa] il|"
    r"geboortedatum|geboren op|data urodzenia|urodzon[ya](?: dnia)?|"
    r"födelsedatum|född(?: den)?|b\.(?= [0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{4}))"
    r"[\s:=,(\"'-]{0,4}(?:in [A-ZÀ-Ý][\w-]{1,30},?\s{1,3})?"
    r"(?:(?:is|was|am|on|le|el|il|op|ist|è|es|dnia|den)\s{1,3})?(" + _DATE + ")",
    re.IGNORECASE)

_CITY = (r"[A-ZÀ-Ý][\wÀ-ÿ'’.-]{1,30}(?:[ -](?:am |an der |sur |de |del )?"
         r"[A-ZÀ-Ý][\wÀ-ÿ'’.-]{1,30}){0,2}")
_UNIT = (r"(?:,?[ \t]*(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl|Piso|Puerta|Scala|Int|"
         r"Interno|bus|Bus|#)\.?[ \t]*[0-9A-Za-z]{1,5}"
         r"|,?[ \t]*[0-9]{1,2}[º°ªoa](?:[ \t]?[A-Za-z0-9]{1,4}\b)?){0,3}")
_POSTCODE = (r"(?:[0-9]{5}|[0-9]{4}[ \t]?[A-Z]{2}\b|[0-9]{2}-[0-9]{3}|[0-9]{3}[ \t][0-9]{2}"
             r"|[A-Z]{1,2}-[0-9]{4,5}|[0-9]{4})")
_UK_ZIP = r"(?:[0-9]{5}(?:-[0-9]{4})?|[A-Z]{1,2}[0-9][A-Z0-9]?[ \t]?[0-9][A-Z]{2})\b"
_TAIL = (_UNIT + r"(?:(?:,[ \t]*|[ \t]*[-–][ \t]*|[ \t]+)" + _POSTCODE + r"[ \t]+" + _CITY
         + r"(?:[ \t]*\([A-Z]{2}\))?" + r"|,[ \t]*" + _CITY + r"(?:,?[ \t]+[A-Z]{2})?,?[ \t]+"
         + _UK_ZIP + r"|,[ \t]*" + _CITY + r")?")
_PARTICLE = r"(?:de|del|della|delle|dei|degli|di|dello|da|des|du|le|la|las|los|les|el|aux|au)"
_NAMEWORD = r"[A-ZÀ-Ý][\wÀ-ÿ'’.-]{0,30}"
_NAMED = (r"(?:(?:" + _PARTICLE + r"|[dl][’'])[ \t]*){0,3}" + _NAMEWORD + r"(?:[ \t]+(?:"
          + _PARTICLE + r"[ \t]+|[dl][’']){0,3}" + _NAMEWORD + r"){0,4}")
_NUMBER = r"[0-9]{1,4}(?:[ \t]?[a-zA-Z]\b)?(?:[-/][0-9]{1,4}[a-zA-Z]?)?"
# English: 42 Baker Street, 1600 Pennsylvania Avenue NW (found from the street type back)
_EN_TYPES = (r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|"
             r"Place|Pl|Terrace|Square|Sq|Crescent|Close|Gardens|Grove|Parkway|Pkwy|Highway|"
             r"Hwy|Circle|Row|Mews|Hill)\b")
_EN_TYPE = re.compile(_EN_TYPES)
_EN = re.compile(r"\b[0-9]{1,5}[A-Za-z]?(?:-[0-9]{1,5})?,?[ \t]+(?:[A-Z][A-Za-z'.-]{1,30}[ \t]+)"
                 r"{1,4}" + _EN_TYPES + r"\.?(?:[ \t]+(?:NW|NE|SW|SE|N|S|E|W)\b)?")
# German and Dutch: Musterstraße 12a, Berliner Straße 5, Kalverstraat 92 (from the suffix)
_DE_SUFFIXES = ("straße", "strasse", "str.", "weg", "platz", "allee", "gasse", "ring",
                "damm", "ufer", "chaussee", "steig", "pfad", "markt", "straat", "laan",
                "gracht", "plein", "kade", "singel", "dijk", "steeg", "hof", "dreef")
_DE_PREFIX = r"(?:\b(?:[A-ZÄÖÜ][a-zäöüß]{1,20}|van|von|de|der|den|St\.)[ \t])"
_DE = re.compile(
    _DE_PREFIX + r"{0,2}\b[A-ZÄÖÜ][\wäöüßé'-]{2,40}?(?:straße|strasse|str\.|weg|platz|allee|"
    r"gasse|ring|damm|ufer|chaussee|steig|pfad|straat|laan|gracht|plein|kade|singel|dijk|"
    r"steeg|hof|markt|dreef)[ \t]+" + _NUMBER +
    r"|" + _DE_PREFIX + r"{1,2}(?:Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse|Ring|Damm|Ufer|"
    r"Chaussee|Markt)[ \t]+" + _NUMBER)
# French: 12 rue de la Paix, 3 bis avenue Victor Hugo (from the street type)
_FR_TYPES = ("rue ", "avenue ", "av. ", "boulevard ", "bd ", "place ", "chemin ", "allée ",
             "impasse ", "quai ", "route ", "cours ", "square ")
_FR = re.compile(r"\b[0-9]{1,4}(?:[ \t]?(?:bis|ter|[A-Z]))?,?[ \t]+(?i:rue|avenue|av\.|"
                 r"boulevard|bd|place|chemin|allée|impasse|quai|route|cours|square)[ \t]+"
                 + _NAMED)
# Spanish and Italian: Calle Mayor 12, C/ Alcalá, 45, Via Roma 1, Piazza Navona 2
_ES_IT_TYPES = ("calle ", "c/", "avenida ", "avda.", "av.", "paseo ", "plaza ", "pza.",
                "carrer ", "camino ", "ronda ", "travesía ", "rambla ", "passeig ", "via ",
                "viale ", "piazza ", "piazzale ", "corso ", "largo ", "vicolo ", "strada ")
_ES_IT = re.compile(
    r"(?:Calle|C/|Avenida|Avda\.|Av\.|Paseo|Plaza|Pza\.|Carrer|Camino|Ronda|Travesía|Rambla|"
    r"Passeig|Via|Viale|Piazza|Piazzale|Corso|Largo|Vicolo|Strada|calle|via|viale|piazza|"
    r"corso)[ \t]*" + _NAMED + r",?[ \t]+(?:n[º°.o]?[ \t]?)?" + _NUMBER)
_TAIL_RE = re.compile(_TAIL)
_ADDRESS_CUES = ("live", "address", "adress", "ship", "deliver", "located", "resid", "wohn",
                 "anschrift", "habite", "direcci", "vivo", "indirizzo", "abito", "woon")
_ADDRESS_CONTEXT = re.compile(
    r"(?:live[sd]? (?:at|in)|address(?: is|:)|ship(?:ping)? to|deliver(?:y)? to|"
    r"located at|resid(?:es|ing) at|wohne (?:in der|in|an der)|wohnhaft in|"
    r"anschrift:|adresse ?:|j'habite (?:au|à)|dirección:|vivo en|indirizzo:|"
    r"abito in|adres:|woon (?:op|aan))\s+"
    r"([\w'./-]{1,40}(?:[ \t\n][\w'./-]{1,40}){0,5})", re.IGNORECASE)
_NAME = re.compile(r"(?:[Mm]y name is|I am|I'm|[Nn]ame:|Dear|Mr\.?|Mrs\.?|Ms\.?|Dr\.?|"
                   r"Herr|Frau|Madame|Monsieur|Señor|Señora|Signor[a]?|[Ii]ch heiße|"
                   r"[Jj]e m'appelle|[Mm]e llamo|[Mm]i chiamo|[Ii]k heet|[Nn]ombre:|[Nn]om ?:|"
                   r"[Nn]aam:|[Pp]atient:|[Ee]mployee:)[ \t]+"
                   r"((?:[A-ZÀ-Ý][a-zà-ÿ']{1,30})(?:[ -](?:(?:de|van|der|den|von|di|da|del|"
                   r"la|le|ter|ten) ){0,2}[A-ZÀ-Ý][a-zà-ÿ']{1,30}){0,2})")
_NAME_CUES = ("my name", "i am", "i'm", "name:", "dear", "mr", "mrs", "ms", "dr", "herr",
              "frau", "madame", "monsieur", "señor", "signor", "ich heiße", "je m'appelle",
              "me llamo", "mi chiamo", "ik heet", "nombre:", "nom", "naam:", "patient:",
              "employee:")
_NOT_NAMES = frozenset({"The", "A", "An", "I", "We", "You", "Sir", "Madam", "Customer",
                        "Team", "All", "Support", "Sales", "Hello", "Thanks", "Here",
                        "Not", "Sorry", "Happy", "Glad", "Going", "Looking", "Writing",
                        "Admin", "User", "Unknown", "None", "Null", "Test", "Mr", "Mrs",
                        "Ms", "Dr", "Herr", "Frau"})


def _at_cues(text: str, lower: str, cues: tuple[str, ...],
             pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """``pattern`` matched where a word starts with one of the ``cues`` (found by
    substring search, so prose without them costs a few C-speed scans)."""
    if len(lower) != len(text):  # a character whose lower case is longer: search all
        yield from pattern.finditer(text)
        return
    tried: set[int] = set()
    for cue in cues:
        i = lower.find(cue)
        while i >= 0:
            if i not in tried and (i == 0 or not lower[i - 1].isalnum()):
                tried.add(i)
                m = pattern.match(text, i)
                if m:
                    yield m
            i = lower.find(cue, i + 1)


def _merged(spans: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        a, b = max(0, a), min(size, b)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(b, out[-1][1]))
        else:
            out.append((a, b))
    return out


def _streets(text: str, lower: str) -> Iterator[re.Match[str]]:
    n = len(text)
    aligned = len(lower) == n
    spans = [(m.start() - 160, m.end() + 4) for m in _EN_TYPE.finditer(text)]
    for a, b in _merged(spans, n):
        yield from _EN.finditer(text, a, b)
    spans = []
    for suffix in _DE_SUFFIXES if aligned else ():
        i = lower.find(suffix + " ")
        while i >= 0:
            j = i + len(suffix) + 1
            if j < n and text[j].isdigit():
                spans.append((i - 100, j + 16))
            i = lower.find(suffix + " ", i + 1)
    for a, b in _merged(spans, n):
        yield from _DE.finditer(text, a, b)
    spans = []
    for kind in _FR_TYPES if aligned else ():
        i = lower.find(kind)
        while i >= 0:
            spans.append((i - 16, i + 260))
            i = lower.find(kind, i + 1)
    for a, b in _merged(spans, n):
        yield from _FR.finditer(text, a, b)
    yield from _at_cues(text, lower, _ES_IT_TYPES, _ES_IT)


def dates_of_birth(text: str, lower: str) -> list[Finding]:
    return [Finding("DATE_OF_BIRTH", m.start(1), m.end(1), 0.85)
            for m in _at_cues(text, lower, _DOB_CUES, _DOB)]


def _with_tail(text: str, start: int, end: int, confidence: float) -> Finding:
    tail = _TAIL_RE.match(text, end)
    return Finding("ADDRESS", start, tail.end() if tail else end, confidence)


def addresses(text: str, lower: str, digits: int) -> list[Finding]:
    found: list[Finding] = []
    if digits:
        found += [_with_tail(text, m.start(), m.end(), 0.75) for m in _streets(text, lower)]
    found += [_with_tail(text, m.start(1), m.end(1), 0.7)
              for m in _at_cues(text, lower, _ADDRESS_CUES, _ADDRESS_CONTEXT)]
    return found


def names(text: str, lower: str) -> list[Finding]:
    return [Finding("PERSON", m.start(1), m.end(1), 0.6)
            for m in _at_cues(text, lower, _NAME_CUES, _NAME)
            if m.group(1).split()[0] not in _NOT_NAMES]
