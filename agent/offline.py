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

from .describe import spoken_result, tool_arguments
from .events import ToolCall
from .offline_memory import memory_request, spoken_memory_result
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

PERCEPTION_REQUESTS: list[tuple[str, re.Pattern[str]]] = [
    # (tool, request); the first that matches wins, so the specific ones come first
    ("scan_codes", re.compile(r"\b(?:bar\s*codes?|qr\b|scan\w*)", re.IGNORECASE)),
    (
        "people",
        re.compile(
            r"\b(?:how\s+many\s+(?:people|persons|faces)|any\s*(?:one|body)\s+(?:here|there|around)"
            r"|is\s+(?:there\s+)?(?:any|some)\s*(?:one|body)|people|faces?)\b",
            re.IGNORECASE,
        ),
    ),
    ("colours", re.compile(r"\bcolou?rs?\b", re.IGNORECASE)),
    (
        "light",
        re.compile(
            r"\b(?:is\s+it\s+(?:too\s+)?(?:dark|bright|blurr?y)|how(?:'s|s|\s+is)\s+the\s+light"
            r"|lighting|too\s+(?:dark|bright)|blurr?(?:y|ed))\b",
            re.IGNORECASE,
        ),
    ),
    (
        "describe_scene",
        re.compile(
            r"\b(?:describe\w*|what(?:'s|s|\s+is)\s+(?:in\s+front|around|here|there)"
            r"|what\s+(?:do|can)\s+you\s+see|look\s+around)\b",
            re.IGNORECASE,
        ),
    ),
]
"""Requests the other local perception tools answer (heron.agent.describe speaks them)."""

NEEDS_MODEL = (
    "I can't answer that offline. I can read text, scan codes, count people, name colours, "
    'check the light, describe the view and remember things: say "read this", "scan", '
    '"how many people", "what colour", "how\'s the light", "describe", '
    '"remember that …" or "where did I leave …". For anything else, '
    "connect a vision model by setting HERON_VLM_BASE_URL or OPENAI_API_KEY."
)


def _current_turn(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The latest user text and the messages that followed it in this turn."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return str(messages[index].get("content") or ""), messages[index + 1 :]
    return "", []


def _wanted_tool(user_text: str, available: set[str]) -> str | None:
    """The local tool that answers this request, if one does and the session has it."""
    for tool, pattern in PERCEPTION_REQUESTS:
        if tool in available and pattern.search(user_text):
            return tool
    if "read_text" in available and READ_REQUEST.search(user_text):
        return "read_text"
    return None


def _tool_name(turn: list[dict[str, Any]], call_id: str) -> str:
    """The name of the tool called with ``call_id`` in this turn's assistant messages."""
    for message in turn:
        for call in message.get("tool_calls") or []:
            if call.get("id") == call_id:
                return str(call.get("function", {}).get("name") or "")
    return ""


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
        wanted = _wanted_tool(user_text, available) if request.allow_tools else None
        memory = memory_request(user_text, available) if request.allow_tools else None
        if tool_results:
            last = tool_results[-1]
            result = str(last.get("content") or "")
            name = _tool_name(turn, str(last.get("tool_call_id") or ""))
            content = (
                spoken_memory_result(name, result)
                or spoken_result(name, result)
                or _spoken_reading(result)
            )
        elif memory is not None:
            tool, memory_args = memory
            call_id = f"offline_{int(t0 * 1000)}"
            calls = [ToolCall(id=call_id, name=tool, arguments=json.dumps(memory_args))]
        elif wanted is not None:
            arguments = tool_arguments(wanted, user_text)
            calls = [ToolCall(id=f"offline_{int(t0 * 1000)}", name=wanted, arguments=arguments)]
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
