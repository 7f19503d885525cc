"""What the user's own words allow: state-changing tools, identifying people, "why".

- A tool with ``changes_state = True`` (remember, forget) runs only when the
  user's words in this turn ask for that kind of change. Text the camera read, a
  memory or another voice cannot ask: only the turn's transcript counts.
- Asking who a person is ("who is this?", "what's her name?", "recognise this
  face") is refused politely, before the model is asked anything.
- "Why didn't you read that?", "why did you refuse?" are answered from the guard
  decisions in the session log.
"""

from __future__ import annotations

import re

_SAVE = (
    r"remember|memori[sz]e|save|store|keep|note|make a note|write (?:it |this |that )?down|log"
    r"|record|add (?:it|this|that) to|bookmark|don'?t forget|do not forget|never forget|pin"
)
_REMOVE = r"forget|delete|erase|remove|wipe|clear|discard|drop|purge|get rid of|unsave|undo"
INTENT = {
    "remember": re.compile(rf"\b(?:{_SAVE})\b", re.IGNORECASE),
    "forget": re.compile(
        rf"(?<!don't )(?<!dont )(?<!do not )(?<!never )\b(?:{_REMOVE})\b", re.IGNORECASE
    ),
}
"""Words that ask for each kind of change; other state-changing tools need either."""

_ANY_CHANGE = re.compile(rf"\b(?:{_SAVE}|{_REMOVE})\b", re.IGNORECASE)


def _intent_for(tool_name: str) -> re.Pattern[str]:
    name = tool_name.lower()
    if any(word in name for word in ("forget", "delete", "remove", "erase", "clear")):
        return INTENT["forget"]
    if any(word in name for word in ("remember", "save", "store", "note")):
        return INTENT["remember"]
    words = "|".join(re.escape(w) for w in re.split(r"[_\W]+", name) if len(w) > 2)
    return re.compile(rf"{_ANY_CHANGE.pattern}|\b(?:{words or '(?!)'})\b", re.IGNORECASE)


def user_asked_for(tool_name: str, user_text: str) -> bool:
    """Whether the user's own words ask for what ``tool_name`` does."""
    text = " ".join(user_text.replace("’", "'").split())
    if not text:
        return False
    return bool(_intent_for(tool_name).search(text))


_PERSON = (
    r"person|man|woman|guy|girl|boy|lady|gentleman|kid|child|baby|people|men|women|face|faces"
    r"|someone|somebody|individual|player|actor|actress|celebrity|he|she|they"
)
IDENTIFY_REQUEST = re.compile(
    rf"""
    \bwho(?:'s|\s+is|\s+are|\s+was|s)\s+(?:this|that|these|those|he|she|they|it|him|her)
        (?:\s+(?:{_PERSON}))?\s*(?:(?:here|there|in\s+(?:the|this|that)\s+\w+|on\s+the\s+\w+
        |right\s+now|again)\s*)?[?.!]*\s*$
  | \bwho(?:'s|\s+is|\s+are|\s+was|s)\s+(?:the|this|that|these|those)\s+(?:\w+\s+){{0,2}}?
        (?:{_PERSON})\b
  | \bwho\s+am\s+i\s+(?:looking\s+at|seeing|talking\s+to)\b
  | \bwhat(?:'s|\s+is|\s+was)\s+(?:his|her|their|this\s+person's|that\s+person's
        |the\s+(?:man|woman|person|guy|girl|boy|lady)'s)\s+(?:full\s+|real\s+|first\s+
        |last\s+)?name\b
  | \b(?:recogni[sz]e|identify|name|tell\s+me\s+who)\s+(?:this|that|the|these|those|him|her|them)
        (?:\s+(?:{_PERSON}))?\b(?!\s+(?:plant|flower|bird|dog|cat|breed|song|car|model|font|logo
        |brand|object|thing|building|place|street|text|sign|color|colour))
  | \bdo\s+you\s+(?:know|recogni[sz]e)\s+(?:who\s+(?:this|that|he|she)|him|her
        |this\s+(?:person|man|woman|guy)|that\s+(?:person|man|woman|guy))\b
  | \bis\s+(?:this|that|he|she)\s+(?:a\s+)?(?:famous|a\s+celebrity|someone\s+famous
        |somebody\s+famous)\b
  | \bface\s+(?:recognition|id|match)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)

IDENTIFY_REFUSAL = (
    "I don't identify people from how they look. I can describe what I see, like what "
    "someone is wearing or doing, or read a name tag if there is one."
)

WHY_QUESTION = re.compile(
    r"\bwhy\b.{0,40}\b(?:didn'?t|did\s+not|don'?t|won'?t|wouldn'?t|couldn'?t|can'?t|did\s+you"
    r"|do\s+you|not|refuse\w*|withh[eo]ld\w*|skip\w*|leave|left|block\w*|blur\w*|redact\w*"
    r"|hide|hid|held|stop\w*|offline|without)\b"
    r"|\bwhat\s+did\s+you\s+(?:leave\s+out|skip|withhold|hold\s+back|hide|block)\b",
    re.IGNORECASE,
)


def asks_to_identify(user_text: str) -> bool:
    return bool(IDENTIFY_REQUEST.search(" ".join(user_text.replace("’", "'").split())))


def asks_why(user_text: str) -> bool:
    return bool(WHY_QUESTION.search(user_text))
