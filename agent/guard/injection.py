"""The prompt-injection check: instructions hidden in text from the world.

:func:`find_injection` normalises the text into several views, so that one rule
catches its disguises too, and runs the rules of :mod:`.injection_rules` on them:

- ``words``: Unicode NFKC (full-width and mathematical letters become plain ones),
  invisible format characters removed, lower case, transliterated to ASCII by
  ``anyascii`` (Cyrillic or Greek look-alike letters become Latin ones), letters
  repeated three times or more collapsed, punctuation turned into single spaces;
- ``leet``: the same after reading digits and symbols as letters (``1gn0r3``);
- ``joined``: letter-spaced words closed up (``i g n o r e`` → ``ignore``);
- ``squash``: every non-letter removed, for the distinctive rules only;
- ``raw``: lower case with punctuation, for chat-template tokens and URLs;
- ``native``: the original script, for the rules in other languages.

:func:`screen_content` applies the check to a tool's result: JSON results are
checked string by string and line by line (with each pair of neighbouring lines,
so an order broken over two lines of a sign is caught), flagged lines are replaced
by :data:`WITHHELD`, and the rest stays, so a menu with one hostile line is still
read.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from anyascii import anyascii

from .injection_rules import (
    NEGATION_BEFORE,
    NEGATION_SQUASHED,
    CoRule,
    Rule,
    compile_co_rules,
    compile_rules,
    squashed,
)

WITHHELD = "[text withheld: it contained instructions]"

_LEET_I = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
     "@": "a", "$": "s", "!": "i", "|": "i", "+": "t", "€": "e"}
)  # fmt: skip
_LEET_L = str.maketrans({"1": "l", "|": "l", "!": "i", "0": "o", "3": "e", "4": "a", "5": "s"})
_REPEATS = re.compile(r"([a-z])\1{2,}")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_LETTER_SPACED = re.compile(r"(?<![a-z0-9])(?:[a-z0-9] ){2,}[a-z0-9](?![a-z0-9])")
_SPACES = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?;:\n]+(?:\s+|$)|\s+-{2,}\s+")
MAX_CHARS = 20_000
"""Longer text is checked in its first part only (and that part's verdict applies)."""


@dataclass(frozen=True)
class Finding:
    """Instructions found in a text: which rule, what kind, and the words that matched."""

    rule: str
    category: str
    excerpt: str


@dataclass(frozen=True)
class _Views:
    words: tuple[str, ...]
    squash: str
    raw: str
    native: tuple[str, ...]
    sentences: tuple[str, ...]


# Letters of other scripts that look like Latin ones (from Unicode's confusables list)
# but transliterate to other letters: Cyrillic р is "r" to anyascii, "p" to the eye.
_LOOKALIKES = str.maketrans(
    "аЬвсԁеһіјкӏмноорԛѕтуԝхуаеіорсхѕϳαβεικνορτυχϲ",
    "abbcdehijklmhoopqstywxyaeiopcxsjabeiknoptuxc",
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS])
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return text.casefold()


def _words(ascii_text: str) -> str:
    return _NON_WORD.sub(" ", _REPEATS.sub(r"\1", ascii_text)).strip()


def _views(text: str) -> _Views:
    folded = _fold(text)
    ascii_text = anyascii(folded).lower()
    lookalike = anyascii(folded.translate(_LOOKALIKES)).lower()
    plain = _words(ascii_text)
    leet_i = _words(ascii_text.translate(_LEET_I))
    leet_l = _words(ascii_text.translate(_LEET_L))
    joined = _LETTER_SPACED.sub(lambda m: m.group().replace(" ", ""), leet_i)
    words = tuple(dict.fromkeys((plain, leet_i, leet_l, joined, _words(lookalike))))
    squash = re.sub(r"[^a-z]", "", leet_i)
    native = tuple(dict.fromkeys((_SPACES.sub(" ", folded).strip(), _SPACES.sub(" ", ascii_text))))
    sentences = tuple(
        dict.fromkeys(
            _words(part)
            for source in (ascii_text, ascii_text.translate(_LEET_I), lookalike)
            for part in _SENTENCE_END.split(source)
            if part.strip()
        )
    )
    return _Views(words, squash, ascii_text, native, sentences)


@lru_cache(maxsize=1)
def _rules() -> tuple[list[Rule], list[tuple[Rule, re.Pattern[str]]], list[CoRule]]:
    rules = compile_rules()
    squash = [(rule, squashed(rule.pattern)) for rule in rules if rule.squash]
    return rules, squash, compile_co_rules()


def _co_occurs(rule: CoRule, sentence: str) -> Finding | None:
    second = rule.second.search(sentence)
    if second is None:
        return None
    for first in rule.first.finditer(sentence):
        if not NEGATION_BEFORE.search(sentence[: first.start()]):
            start, end = min(first.start(), second.start()), max(first.end(), second.end())
            return Finding(rule.name, rule.category, sentence[start:end][:80])
    return None


def _search(rule: Rule, pattern: re.Pattern[str], text: str) -> Finding | None:
    for match in pattern.finditer(text):
        if rule.negatable and NEGATION_BEFORE.search(text[: match.start()]):
            continue
        return Finding(rule.name, rule.category, match.group()[:80])
    return None


def find_injection(text: str) -> Finding | None:
    """The first instruction aimed at an assistant found in ``text``, or ``None``."""
    if not text:
        return None
    views = _views(text)
    if not any(ch.isalpha() for ch in views.native[0]):
        return None
    rules, squash_rules, co_rules = _rules()
    for rule in rules:
        targets = {"words": views.words, "raw": (views.raw,), "native": views.native}[rule.view]
        for target in targets:
            found = _search(rule, rule.pattern, target)
            if found:
                return found
    for co_rule in co_rules:
        for sentence in views.sentences:
            found = _co_occurs(co_rule, sentence)
            if found:
                return found
    if len(views.squash) >= 12:
        for rule, pattern in squash_rules:
            for match in pattern.finditer(views.squash):
                if rule.negatable and NEGATION_SQUASHED.search(views.squash[: match.start()]):
                    continue
                return Finding(rule.name, rule.category, match.group()[:80])
    return None


@dataclass
class Screened:
    """A tool result after the check: the content the model may see, and what was found."""

    content: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def withheld(self) -> bool:
        return bool(self.findings)


def _string_leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, str):
        yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _string_leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _string_leaves(value, (*path, index))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = _get(node, path[:-1])
    parent[path[-1]] = value
    return node


def _flag_lines(lines: list[str]) -> tuple[set[int], list[Finding]]:
    """Indexes of lines holding instructions, alone or read with a neighbouring line.

    A pair that matches flags a clean neighbour only when the pair's match is not
    just the flagged line's own (its excerpt differs), so the line after a hostile
    one is kept.
    """
    alone: dict[int, Finding] = {}
    for i, line in enumerate(lines):
        found = find_injection(line)
        if found:
            alone[i] = found
    flagged, findings = set(alone), list(alone.values())
    for i in range(len(lines) - 1):
        pair = find_injection(f"{lines[i]} {lines[i + 1]}")
        if pair is None or (i in alone and i + 1 in alone):
            continue
        own = alone.get(i) or alone.get(i + 1)
        if own is None or own.excerpt != pair.excerpt:
            flagged.update((i, i + 1))
            if own is None:
                findings.append(pair)
    return flagged, findings


def _withhold(text: str, flagged: set[int], offset: int) -> str:
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if offset + i in flagged:
            if not out or out[-1] != WITHHELD:
                out.append(WITHHELD)
        else:
            out.append(line)
    return "\n".join(out)


def screen_content(content: str) -> Screened:
    """Withhold the lines of ``content`` (plain text or JSON) that give instructions."""
    if find_injection(_json_text(content)) is None:
        return Screened(content)
    try:
        data: Any = json.loads(content)
    except json.JSONDecodeError:
        data = content
    paths = list(_string_leaves(data))
    starts: list[int] = []
    lines: list[str] = []
    for path in paths:
        starts.append(len(lines))
        lines += str(_get(data, path)).split("\n")
    flagged, findings = _flag_lines(lines)
    if not flagged:  # an order spread over more lines than a pair: hold it all back
        flagged = set(range(len(lines)))
        findings = [f for f in (find_injection(_json_text(content)),) if f] or [
            Finding("whole_text", "override", "")
        ]
    for path, start in zip(paths, starts, strict=True):
        data = _set(data, path, _withhold(str(_get(data, path)), flagged, start))
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return Screened(text, findings)


def _json_text(content: str) -> str:
    """The string values of a JSON document joined by newlines (``content`` if not JSON)."""
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        return content
    return "\n".join(str(_get(data, path)) for path in _string_leaves(data))
