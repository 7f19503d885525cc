"""Time filters in plain words: "this morning", "yesterday", "since 10am", "before 2026-11-20".

:func:`parse_when` turns one phrase into a :class:`TimeRange` (epoch seconds, either
end open). :func:`split_when` finds such a phrase inside a question ("what was on
that letter this morning?") and returns the question without it, so the words
about time do not take part in the search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from heron.agent.errors import ToolArgumentsError

PARTS_OF_DAY = {
    "morning": (5, 12),
    "afternoon": (12, 17),
    "evening": (17, 22),
    "night": (18, 30),  # into the small hours of the next day
}
UNITS = {"minute": 60, "min": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


@dataclass(frozen=True)
class TimeRange:
    since: float | None = None
    until: float | None = None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None


def _day_start(day: datetime) -> datetime:
    return datetime.combine(day.date(), time(0), tzinfo=day.tzinfo)


def _span(start: datetime, hours: tuple[int, int]) -> TimeRange:
    base = _day_start(start)
    return TimeRange(
        (base + timedelta(hours=hours[0])).timestamp(),
        (base + timedelta(hours=hours[1])).timestamp(),
    )


_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")


def _period(phrase: str, now: datetime) -> TimeRange | None:
    """A phrase naming a period of time, or None."""
    p = phrase.strip().lower()
    today = _day_start(now)
    if p in ("today", "this day"):
        return TimeRange(today.timestamp(), None)
    if p == "yesterday":
        return TimeRange((today - timedelta(days=1)).timestamp(), today.timestamp())
    if p == "tonight":
        return _span(now, (17, 30))
    if p == "last night":
        return _span(now - timedelta(days=1), PARTS_OF_DAY["night"])
    for part, hours in PARTS_OF_DAY.items():
        if p == f"this {part}":
            return _span(now, hours)
        if p == f"yesterday {part}":
            return _span(now - timedelta(days=1), hours)
    if p in ("this week", "last week"):
        return TimeRange((now - timedelta(days=7)).timestamp(), None)
    match = re.fullmatch(
        r"(?:the\s+)?(?:last|past)\s+(?:(\d+|a|an)\s+)?(minute|min|hour|day|week)s?", p
    )
    if match:
        count = 1 if match.group(1) in (None, "a", "an") else int(match.group(1))
        return TimeRange(now.timestamp() - count * UNITS[match.group(2)], None)
    match = re.fullmatch(r"(\d+|a|an)\s+(minute|min|hour|day|week)s?\s+ago", p)
    if match:
        count = 1 if match.group(1) in ("a", "an") else int(match.group(1))
        return TimeRange(None, now.timestamp() - count * UNITS[match.group(2)])
    return None


def _instant(phrase: str, now: datetime) -> float | None:
    """A point in time: an ISO date or time, a clock time today, or the start of a period."""
    p = phrase.strip().lower()
    try:
        moment = datetime.fromisoformat(p.upper())
    except ValueError:
        moment = None
    if moment is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=now.tzinfo)
        return moment.timestamp()
    match = _CLOCK.match(p)
    if match and (match.group(2) or match.group(3)):
        hour = int(match.group(1)) % 12 if match.group(3) else int(match.group(1))
        minute = int(match.group(2) or 0)
        if match.group(3) == "pm":
            hour += 12
        if hour < 24 and minute < 60:
            return (_day_start(now) + timedelta(hours=hour, minutes=minute)).timestamp()
    period = _period(p, now)
    if period is not None:
        return period.since if period.since is not None else period.until
    return None


def parse_when(phrase: str, now: datetime | None = None) -> TimeRange:
    """``"this morning"``, ``"since 10am"``, ``"before 2026-11-20"``, ... as a range.

    Raises :class:`ToolArgumentsError` (a message the model can act on) when the
    phrase is not understood.
    """
    now = now or datetime.now().astimezone()
    p = " ".join(phrase.lower().split())
    if not p:
        return TimeRange()
    match = re.fullmatch(r"(since|after|from|before|until|till)\s+(.+)", p)
    if match:
        at = _instant(match.group(2), now)
        if at is None:
            raise ToolArgumentsError(f"cannot tell the time {match.group(2)!r} in {phrase!r}")
        if match.group(1) in ("since", "after", "from"):
            return TimeRange(at, None)
        return TimeRange(None, at)
    period = _period(p, now)
    if period is not None:
        return period
    at = _instant(p, now)
    if at is not None and "T" not in phrase and len(p) == 10:  # a date: that whole day
        return TimeRange(at, at + 86400)
    if at is not None:
        return TimeRange(at, None)
    raise ToolArgumentsError(
        f"cannot tell the time {phrase!r}; say e.g. 'this morning', 'yesterday', "
        "'last 2 hours', 'since 10am' or an ISO date"
    )


_WHEN_IN_TEXT = re.compile(
    r"\b(?:(?:since|after|before|until)\s+(?:\d{1,2}(?::\d{2})?\s*(?:am|pm)|\d{4}-\d{2}-\d{2})"
    r"|(?:this|yesterday)\s+(?:morning|afternoon|evening)|last\s+night|tonight|today|yesterday"
    r"|(?:the\s+)?(?:last|past)\s+(?:\d+\s+|a\s+|an\s+)?(?:minute|hour|day|week)s?"
    r"|this\s+week|last\s+week)\b",
    re.IGNORECASE,
)


def split_when(text: str, now: datetime | None = None) -> tuple[str, TimeRange]:
    """The question without its time phrase, and the range that phrase names."""
    match = _WHEN_IN_TEXT.search(text)
    if match is None:
        return text, TimeRange()
    try:
        found = parse_when(match.group(0), now)
    except ToolArgumentsError:
        return text, TimeRange()
    rest = (text[: match.start()] + text[match.end() :]).strip()
    return " ".join(rest.split()), found
