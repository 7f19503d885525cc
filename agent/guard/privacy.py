"""Personal data out of text that leaves the machine, and where "the machine" ends.

:func:`redact` finds personal data with libraries that validate what they find,
so ordinary numbers on a sign (prices, opening hours, model numbers) are kept:

- e-mail addresses (a regular expression: the address grammar is simple enough);
- phone numbers: Google's ``phonenumbers`` (``PhoneNumberMatcher``, valid numbers
  only; local numbers are read in ``phone_region``);
- payment card numbers: 13–19 digits in the usual groupings, Luhn-checked and
  with a known card prefix (``python-stdnum``'s ``luhn``);
- IBANs: ``python-stdnum``'s ``iban`` (country format and check digits);
- US social security numbers: ``python-stdnum``'s ``us.ssn`` (rejects the
  numbers never issued).

:func:`is_local_endpoint` decides whether an endpoint is on this machine: its host
is ``localhost`` or a loopback address, or a name that resolves only to loopback
addresses, or is listed by the user (``guard.local_hosts``). Private LAN addresses
are *not* local by default: another machine on the network is still another
machine, and the user says when they trust it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

PLACEHOLDERS = {
    "email": "[email]",
    "phone": "[phone number]",
    "card": "[card number]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
}

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6(?:011|5|4[4-9]|22)|35|62|8)")
"""Visa, Mastercard, Amex, Diners, Discover, JCB, UnionPay, UATP: other Luhn-valid
numbers (IMEIs, some barcodes) are not payment cards."""
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b", re.IGNORECASE)
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")


def _spans_emails(text: str) -> Iterable[tuple[int, int]]:
    for m in _EMAIL.finditer(text):
        yield m.span()


def _spans_cards(text: str) -> Iterable[tuple[int, int]]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
            yield m.span()


def _spans_ibans(text: str) -> Iterable[tuple[int, int]]:
    for m in _IBAN.finditer(text):
        candidate = m.group()
        # the pattern may run on into the next word: try shorter ends too
        for end in range(len(candidate), 14, -1):
            if iban.is_valid(candidate[:end]):
                yield m.start(), m.start() + len(candidate[:end].rstrip())
                break


def _spans_ssns(text: str) -> Iterable[tuple[int, int]]:
    for m in _SSN.finditer(text):
        if ssn.is_valid(m.group()):
            yield m.span()


def _spans_phones(text: str, region: str) -> Iterable[tuple[int, int]]:
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    for match in matcher:
        yield match.start, match.end


def redact(text: str, *, region: str = "US") -> tuple[str, Counter[str]]:
    """``text`` with personal data replaced by placeholders, and what was found, by kind."""
    found: list[tuple[int, int, str]] = []
    finders = (
        ("email", _spans_emails(text)),
        ("iban", _spans_ibans(text)),
        ("card", _spans_cards(text)),
        ("ssn", _spans_ssns(text)),
        ("phone", _spans_phones(text, region)),
    )
    for kind, spans in finders:
        for start, end in spans:
            # earlier kinds win where two overlap (an IBAN's digits are not a phone)
            if all(end <= s or start >= e for s, e, _ in found):
                found.append((start, end, kind))
    counts: Counter[str] = Counter()
    for start, end, kind in sorted(found, reverse=True):
        text = text[:start] + PLACEHOLDERS[kind] + text[end:]
        counts[kind] += 1
    return text, counts


def _redact_node(node: Any, region: str, counts: Counter[str]) -> Any:
    if isinstance(node, str):
        text, found = redact(node, region=region)
        counts.update(found)
        return text
    if isinstance(node, dict):
        return {key: _redact_node(value, region, counts) for key, value in node.items()}
    if isinstance(node, list):
        return [_redact_node(value, region, counts) for value in node]
    return node


def redact_content(content: str, *, region: str = "US") -> tuple[str, Counter[str]]:
    """Redact a message's text; a JSON document is redacted value by value (its keys,
    numbers and structure are kept, so box coordinates are never taken for phones)."""
    counts: Counter[str] = Counter()
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return redact(content, region=region)
    if not isinstance(data, dict | list):
        return redact(content, region=region)
    redacted = _redact_node(data, region, counts)
    if not counts:
        return content, counts
    return json.dumps(redacted, ensure_ascii=False), counts


@lru_cache(maxsize=32)
def _resolves_to_loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def endpoint_host(base_url: str | None) -> str:
    if not base_url:
        return ""
    return (urlsplit(base_url if "//" in base_url else f"//{base_url}").hostname or "").lower()


def is_local_endpoint(base_url: str | None, local_hosts: Iterable[str] = ()) -> bool:
    """True when ``base_url`` is served from this machine (or a host the user trusts).

    No URL means OpenAI's own service: remote.
    """
    host = endpoint_host(base_url)
    if not host:
        return False
    if host in {h.lower() for h in local_hosts}:
        return True
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return _resolves_to_loopback(host)
