"""Answers without a vision-language model.

With no endpoint configured (or when it cannot be reached), heron still helps: it
recognises the requests local tools can answer ("read this", "what does it say")
and routes them straight to those tools, then speaks their result. Anything else
gets a short answer that says what is needed to answer it. The offline thinker
speaks the same protocol as the model (tool calls, then text), so the graph, the
session log and the checkpoints are identical online and offline.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .events import ToolCall
from .thinking import ThinkRequest
from .vlm import VLMReply

READ_REQUEST = re.compile(
    r"""\b(?:
        read\w*                                        # read this, can you read it
      | what\s+(?:does|do|did)\b.*\b(?:say|says|read)\b   # what does it/the sign say
      | what(?:'s|s|\s+is)\s+(?:it\s+|that\s+|this\s+)?(?:written|printed)
      | what(?:'s|s|\s+is)\s+on\s+(?:the|this|that|my)\s+\w+     # what's on the label
      | (?:any|the|this|that)\s+text
    )""",
    re.IGNORECASE | re.VERBOSE,
)
"""Requests the text reader answers; anything else needs the model."""

NEEDS_MODEL = (
    'I can\'t answer that offline. I can read text: say "read this". For anything else, '
    "connect a vision model by setting HERON_VLM_BASE_URL or OPENAI_API_KEY."
)


def _current_turn(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The latest user text and the messages that followed it in this turn."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return str(messages[index].get("content") or ""), messages[index + 1 :]
    return "", []


def _spoken_reading(content: str) -> str:
    try:
        result = json.loads(content)
    except json.JSONDecodeError:
        return "I couldn't make sense of what the reader returned."
    if "error" in result:
        return f"I couldn't read that: {result['error']}."
    lines = [line["text"] for line in result.get("lines", []) if line.get("text")]
    if not lines:
        return "I don't see any text. Try moving closer or adding light."
    return "It says: " + ". ".join(line.rstrip(".") for line in lines) + "."


class OfflineThinker:
    """Routes requests it recognises to local tools and speaks their results."""

    name = "offline"

    def __init__(self, *, notice: str = "") -> None:
        self.notice = notice
        """Said before the answer, e.g. why the model could not be used this turn."""

    async def think(self, request: ThinkRequest) -> VLMReply:
        t0 = time.monotonic()
        user_text, turn = _current_turn(request.messages)
        tool_results = [m for m in turn if m.get("role") == "tool"]
        available = {t["function"]["name"] for t in request.tools}
        content = ""
        calls: list[ToolCall] = []
        if tool_results:
            content = _spoken_reading(str(tool_results[-1].get("content") or ""))
        elif READ_REQUEST.search(user_text) and "read_text" in available and request.allow_tools:
            calls = [ToolCall(id=f"offline_{int(t0 * 1000)}", name="read_text", arguments="{}")]
        else:
            content = NEEDS_MODEL
        if content and self.notice:
            content = f"{self.notice} {content}"
        now = time.monotonic()
        return VLMReply(
            content=content,
            tool_calls=calls,
            t_request=t0,
            t_first_token=now,
            t_done=now,
            finish_reason="tool_calls" if calls else "stop",
        )
