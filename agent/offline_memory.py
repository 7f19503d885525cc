"""Offline requests to remember and recall: "remember that my keys are on the shelf",
"where did I leave my keys?", "have I seen this before?".

The memory tools work without a model; these rules turn the user's words into
their arguments and their results into a spoken answer.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

REMEMBER = re.compile(
    r"^\W*(?:please\s+)?(?:remember|note|keep\s+in\s+mind)\b\s*(?:that\b|this\b|:)?\s*(?P<note>.*)$",
    re.IGNORECASE,
)
SEEN_BEFORE = re.compile(
    r"\b(?:have|did)\s+(?:i|you|we)\s+(?:ever\s+)?seen?\s+(?:this|that|it)\b", re.IGNORECASE
)
RECALL = re.compile(
    r"""^\W*(?:
        where\s+(?:did|have)\s+i\s+(?:leave|left|put|park(?:ed)?)\s+(?P<where>.+)
      | (?:do\s+you\s+)?remember\s+(?:what|where|when|who)\s+(?P<what>.+)
      | what\s+(?:did|do)\s+(?:i|you)\s+(?:say|tell\s+you|note)\s+about\s+(?P<about>.+)
      | what\s+was\s+(?P<was>.+)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_POSSESSIVE = re.compile(r"\b(?:my|the|a|an)\b\s*", re.IGNORECASE)


def memory_request(text: str, available: set[str]) -> tuple[str, dict[str, Any]] | None:
    """The memory tool and its arguments for these words, if they ask for one."""
    words = text.strip()
    if "recall" in available:
        if SEEN_BEFORE.search(words):
            return "recall", {"use_current_view": True}
        found = RECALL.match(words)
        if found:
            query = next(v for v in found.groupdict().values() if v)
            return "recall", {"query": query.strip(" ?.!")}
    if "remember" in available:
        found = REMEMBER.match(words)
        if found:
            note = found.group("note").strip(" .!")
            return "remember", {"note": note or None, "include_view": not note}
    return None


def spoken_memory_result(tool: str, content: str) -> str | None:
    """The sentence for a memory tool's JSON result, or None for other tools."""
    if tool not in ("remember", "recall"):
        return None
    try:
        result = json.loads(content)
    except json.JSONDecodeError:
        return "I couldn't make sense of my memory's answer."
    if "error" in result:
        return f"I couldn't {tool} that: {result['error']}."
    if tool == "remember":
        if result.get("note"):
            return "I'll remember that."
        if result.get("view") == "already remembered":
            return "I already remember this view."
        return "I'll remember this view."
    memories = result.get("memories") or []
    if not memories:
        return "I don't remember anything about that."
    best = memories[0]
    when = _spoken_time(str(best.get("time") or ""))
    if best.get("text"):
        return f"{when}, I noted: {best['text'].rstrip('.')}."
    return f"Yes, I saw something like this {when.lower()}."


def _spoken_time(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return "Earlier"
    now = datetime.now(moment.tzinfo)
    day = "Today" if moment.date() == now.date() else moment.strftime("On %A %-d %B")
    return f"{day} at {moment.strftime('%-I:%M %p').lstrip('0')}"
