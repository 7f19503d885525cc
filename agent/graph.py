"""The turn graph (LangGraph): one run per user turn.

    listen → perceive → think ⇄ act → speak

- ``listen`` records the user's words;
- ``perceive`` takes the freshest camera frame, saves it as the JPEG the model sees;
- ``think`` asks the thinker (the VLM, or the offline router) for tool calls or an answer;
- ``act`` runs the requested tools concurrently; each result (or error) goes back to
  the model as a tool message, so a failing tool never ends the turn;
- ``speak`` says the answer.

Nodes are thin: they call the components handed in at construction. The state is
the conversation in OpenAI's message format, checkpointed after every step under
the session's thread id, so a session resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from heron.memory.session_log import SessionLog
from heron.tools.base import ToolContext, ToolRegistry

from .errors import VLMError
from .events import SpeechOut, ToolCall, VideoFrame
from .frames import FrameStore
from .offline import OfflineThinker
from .thinking import Thinker, ThinkRequest
from .trace import TurnTrace

log = logging.getLogger(__name__)

NO_ANSWER = "Sorry, I have no answer to that."


class TurnState(TypedDict, total=False):
    """What is checkpointed: the conversation, and the current turn's working fields."""

    messages: Annotated[list[dict[str, Any]], operator.add]
    turn: int
    user_text: str
    frame: str | None
    pending: list[dict[str, str]]
    rounds: int
    reply: str
    fallback: str | None
    """Why this turn answers without the model (set when the model failed)."""


@dataclass
class TurnComponents:
    """Everything the nodes call; built by the session, shared by all turns."""

    thinker: Thinker
    tools: ToolRegistry
    frame_store: FrameStore
    log: SessionLog
    get_frame: Callable[[], Awaitable[VideoFrame | None]]
    speak: Callable[[str], Awaitable[SpeechOut | None]]
    session_id: str = ""
    max_tool_rounds: int = 4
    trace: TurnTrace = field(default_factory=lambda: TurnTrace(turn=0))
    current_frame: VideoFrame | None = None


def build_graph(
    components: TurnComponents, checkpointer: Checkpointer = None
) -> CompiledStateGraph:
    c = components

    async def listen(state: TurnState) -> dict[str, Any]:
        c.trace.mark("graph_start")
        text = " ".join(state.get("user_text", "").split())
        return {"user_text": text, "rounds": 0, "pending": [], "reply": "", "fallback": None}

    async def perceive(state: TurnState) -> dict[str, Any]:
        frame = await c.get_frame()
        c.current_frame = frame
        message: dict[str, Any] = {"role": "user", "content": state["user_text"]}
        if frame is not None:
            ref = await asyncio.to_thread(c.frame_store.save, frame)
            message["frame"] = ref.name
            c.log.write(
                "frame",
                turn=state.get("turn"),
                ref=ref.name,
                size=[ref.width, ref.height],
                bytes=ref.bytes,
                image_tokens=ref.image_tokens,
                age_ms=round((time.monotonic() - frame.t_capture) * 1000, 1),
                source=ref.source,
            )
        c.trace.mark("perceived")
        return {"messages": [message], "frame": message.get("frame")}

    async def think(state: TurnState) -> dict[str, Any]:
        rounds = state.get("rounds", 0)
        allow_tools = rounds < c.max_tool_rounds
        frame_name = state.get("frame")
        image = c.frame_store.data_url(frame_name) if frame_name else None
        request = ThinkRequest(
            messages=state["messages"],
            tools=c.tools.schemas(),
            allow_tools=allow_tools,
            image_data_url=image,
        )
        fallback = state.get("fallback")
        # once the model has failed in a turn, the rest of the turn stays offline
        thinker: Thinker = OfflineThinker(notice=fallback) if fallback else c.thinker
        c.trace.mark("think_start")
        try:
            reply = await thinker.think(request)
        except VLMError as exc:
            fallback = "I can't reach the vision model right now."
            c.log.write("error", where="think", error=str(exc), retryable=exc.retryable)
            log.warning("model call failed, answering offline this turn: %s", exc)
            thinker = OfflineThinker(notice=fallback)
            reply = await thinker.think(request)
        if reply.t_first_token is not None:
            c.trace.mark("first_token", reply.t_first_token)
        c.log.write(
            "think",
            turn=state.get("turn"),
            thinker=thinker.name,
            content=reply.content,
            tool_calls=[asdict(call) for call in reply.tool_calls],
            ms=round((reply.t_done - reply.t_request) * 1000, 1),
            usage=reply.usage,
        )
        pending = [asdict(call) for call in reply.tool_calls] if allow_tools else []
        message = reply.as_message()
        if not pending:
            # calls that will not run must not stay in the history: every tool call
            # needs a tool result after it, or the endpoint rejects the next request
            message.pop("tool_calls", None)
        update: dict[str, Any] = {
            "messages": [message],
            "pending": pending,
            "reply": reply.content,
            "rounds": rounds + 1,
            "fallback": fallback,
        }
        if not pending and not reply.content:
            update["reply"] = NO_ANSWER
        return update

    async def act(state: TurnState) -> dict[str, Any]:
        ctx = ToolContext(frame=c.current_frame, session_id=c.session_id)
        calls = [ToolCall(**call) for call in state.get("pending", [])]
        for call in calls:
            c.log.write(
                "tool.call",
                turn=state.get("turn"),
                id=call.id,
                name=call.name,
                arguments=call.arguments,
            )
        results = await asyncio.gather(*(c.tools.call(call, ctx) for call in calls))
        messages = []
        for result in results:
            c.trace.tool(result.name, result.t_start, result.t_end, result.ok)
            c.log.write(
                "tool.result",
                turn=state.get("turn"),
                id=result.call_id,
                name=result.name,
                ok=result.ok,
                content=result.content,
                error=result.error,
                ms=round((result.t_end - result.t_start) * 1000, 1),
            )
            messages.append(
                {"role": "tool", "tool_call_id": result.call_id, "content": result.content}
            )
        return {"messages": messages, "pending": []}

    async def speak(state: TurnState) -> dict[str, Any]:
        text = state.get("reply") or ""
        c.trace.mark("reply_ready")
        c.log.write("reply", turn=state.get("turn"), text=text)
        out = await c.speak(text)
        if out is not None:
            if out.t_first_audio is not None:
                c.trace.mark("first_audio", out.t_first_audio)
            c.trace.mark("speech_done", out.t_end)
            c.log.write(
                "speech",
                turn=state.get("turn"),
                seconds=round(out.audio_seconds, 3),
                interrupted=out.interrupted,
            )
        return {}

    def after_think(state: TurnState) -> str:
        return "act" if state.get("pending") else "speak"

    graph = StateGraph(TurnState)
    graph.add_node("listen", listen)
    graph.add_node("perceive", perceive)
    graph.add_node("think", think)
    graph.add_node("act", act)
    graph.add_node("speak", speak)
    graph.add_edge(START, "listen")
    graph.add_edge("listen", "perceive")
    graph.add_edge("perceive", "think")
    graph.add_conditional_edges("think", after_think, {"act": "act", "speak": "speak"})
    graph.add_edge("act", "think")
    graph.add_edge("speak", END)
    return graph.compile(checkpointer=checkpointer)
