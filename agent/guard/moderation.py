"""Checking a reply before it is spoken.

:class:`Moderator` uses the endpoint's moderation API (``POST /moderations``, the
``openai`` client's ``moderations.create``) where the endpoint has one, and local
rules otherwise. Many OpenAI-compatible servers (Ollama, llama.cpp, LM Studio)
have no moderation route: the first 404 (or 405/501, or a 400 naming the model)
switches the session to local rules for good, logged once. A failed call
(connection, time-out) is checked with the local rules that one time.

The local rules are narrow on purpose: a camera assistant says "never mix bleach
and ammonia" and "the knife is on the left", so only replies that *encourage*
harm are blocked: self-harm, threats, making weapons, explosives or drugs, mixing
toxic chemicals, and insults aimed at the listener. A warning (a sentence with
"never", "don't", "dangerous"…) is not encouragement.

``check_reply`` takes any text: a whole reply, or one sentence when replies are
spoken sentence by sentence.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import openai

from .record import ALLOW, Decision

log = logging.getLogger(__name__)

BLOCKED_NOTICE = "I held back that answer because it did not pass my safety check."
Mode = Literal["auto", "endpoint", "local", "off"]

_WARNING = re.compile(
    r"\b(?:never|don'?t|do not|avoid|shouldn'?t|should not|must not|mustn'?t|dangerous|danger"
    r"|toxic|poisonous|unsafe|not safe|warning|caution|careful|hazard\w*|harmful|deadly|illegal"
    r"|please (?:call|contact|reach)|helpline|hotline|crisis|988|samaritans)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _LocalRule:
    category: str
    pattern: re.Pattern[str]
    warnings_exempt: bool = True


def _rule(category: str, pattern: str, *, warnings_exempt: bool = True) -> _LocalRule:
    return _LocalRule(category, re.compile(pattern, re.IGNORECASE), warnings_exempt)


LOCAL_RULES = [
    _rule(
        "self-harm",
        r"\b(?:you should|go|just|why not|better to|might as well|you could|try to|i suggest you)"
        r" (?:kill|hurt|harm|cut|end|starve|hang|drown|poison)"
        r" (?:yourself|your life|your own life)\b"
        r"|\b(?:kill yourself|kys|end it all|take your own life)\b"
        r"|\b(?:how to|ways to|the best way to) (?:kill yourself|commit suicide|self[- ]harm)\b"
        r"|\b(?:overdose|od) on (?:\w+ )?(?:pills|tablets|medication|paracetamol|insulin)\b",
        warnings_exempt=False,
    ),
    _rule(
        "violence",
        r"\bi(?: will|'ll| am going to|'m going to| want to) (?:kill|hurt|stab|shoot|beat|murder"
        r"|strangle|attack|find) you\b"
        r"|\b(?:you should|go|just|so) (?:kill|stab|shoot|poison|strangle|beat up|attack|hurt)"
        r" (?:him|her|them|that (?:man|woman|person|guy)|the (?:man|woman|person|guy|child|kid"
        r"|neighbou?r|dog|cat))\b"
        r"|\b(?:kill|murder) (?:all|every) (?:\w+ )?(?:people|men|women|immigrants|jews|muslims"
        r"|christians|gays|blacks|whites)\b",
        warnings_exempt=False,
    ),
    _rule(
        "weapons",
        r"\b(?:to|you can|you could|here's how to|here is how to|steps to|how to|you'll need to"
        r"|first,?) (?:make|build|assemble|construct|cook|synthesi[sz]e|brew|mix up)"
        r" (?:a |an |some |your own )?(?:pipe |nail |car |fertili[sz]er |homemade |home-made )?"
        r"(?:bomb|explosive|ied|molotov(?: cocktail)?|napalm|thermite|nerve agent|sarin|ricin"
        r"|mustard gas|chlorine gas|meth|methamphetamine|crystal meth|fentanyl|ghost gun"
        r"|untraceable gun|silencer|suppressor)s?\b",
    ),
    _rule(
        "dangerous-mix",
        r"\b(?:mix|mixing|combine|combining|add|adding|pour)\b.{0,40}\b(?:bleach|chlorine)\b"
        r".{0,40}\b(?:ammonia|vinegar|acid|rubbing alcohol|isopropyl)\b"
        r"|\b(?:mix|mixing|combine|combining|add|adding|pour)\b.{0,40}\b(?:ammonia|vinegar|acid"
        r"|rubbing alcohol)\b.{0,40}\b(?:bleach|chlorine)\b",
    ),
    _rule(
        "harassment",
        r"\byou(?: are|'re| look| sound) (?:so |such an? |really |very |a |an )?(?:stupid|idiot"
        r"|worthless|pathetic|ugly|disgusting|moron|loser|useless|fat|retarded|dumb)\b"
        r"|\b(?:shut up|nobody (?:loves|likes|cares about) you|no one (?:loves|likes|cares about)"
        r" you)\b",
        warnings_exempt=False,
    ),
]

_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def check_local(text: str) -> Decision:
    """The local rules' verdict on ``text``, sentence by sentence."""
    for sentence in _SENTENCES.split(text):
        for rule in LOCAL_RULES:
            if not rule.pattern.search(sentence):
                continue
            if rule.warnings_exempt and _WARNING.search(sentence):
                continue
            return Decision(
                "moderation",
                "block",
                f"my answer looked like it encouraged {rule.category.replace('-', ' ')},"
                " so I did not say it",
                {"checker": "local", "category": rule.category},
            )
    return Decision("moderation", ALLOW, "the answer passed the local rules", {"checker": "local"})


class Moderator:
    """``await moderator.check_reply(text)`` → a :class:`Decision` (``block`` or ``allow``)."""

    def __init__(self, mode: Mode, client: openai.AsyncOpenAI | None = None) -> None:
        self.mode = mode
        self.client = client
        self.endpoint_supported = client is not None and mode in ("auto", "endpoint")
        self.notes: list[Decision] = []
        """Decisions about the checker itself (the endpoint has no moderation API…),
        for the caller to log; emptied by :meth:`take_notes`."""

    def take_notes(self) -> list[Decision]:
        notes, self.notes = self.notes, []
        return notes

    async def check_reply(self, text: str) -> Decision:
        if self.mode == "off" or not text.strip():
            return Decision("moderation", ALLOW, "moderation is off", {"checker": "off"})
        local = check_local(text)
        if not local.allowed or not self.endpoint_supported:
            return local
        verdict = await self._check_endpoint(text)
        return verdict or local

    async def _check_endpoint(self, text: str) -> Decision | None:
        assert self.client is not None
        try:
            response = await self.client.moderations.create(input=text)
        except openai.APIStatusError as exc:
            if exc.status_code in (400, 404, 405, 501):
                self.endpoint_supported = False
                self.notes.append(
                    Decision(
                        "moderation",
                        "fallback",
                        "the model endpoint has no moderation service, so I check answers"
                        " with my own rules",
                        {"status": exc.status_code},
                    )
                )
                return None
            log.warning("moderation call failed (%s); using local rules", exc.status_code)
            return None
        except openai.APIError as exc:  # connection errors, time-outs
            log.warning("moderation call failed (%s); using local rules", type(exc).__name__)
            return None
        return _endpoint_decision(response)


def _endpoint_decision(response: Any) -> Decision:
    flagged = [r for r in response.results if r.flagged]
    if not flagged:
        return Decision("moderation", ALLOW, "the endpoint's moderation passed it", {})
    categories = sorted(
        {name for r in flagged for name, hit in r.categories.model_dump().items() if hit}
    )
    named = ", ".join(c.replace("/", " ").replace("_", " ") for c in categories) or "harm"
    return Decision(
        "moderation",
        "block",
        f"the moderation service flagged my answer ({named}), so I did not say it",
        {"checker": "endpoint", "categories": categories},
    )
