"""The turn graph (LangGraph): one run per user turn.

    listen → perceive → recall → think ⇄ act → speak

- ``listen`` records the user's words;
- ``perceive`` takes the freshest camera frame, saves it as the JPEG the model sees;
- ``recall`` adds what memory holds about the words (a message marked as memories,
  for this request only) when memory is on and something relevant is found;
- ``think`` asks the thinker (the VLM, or the offline router) for tool calls or an answer;
- ``act`` runs the requested tools concurrently; each result (or error) goes back to
  the model as a tool message, so a failing tool never ends the turn;
- ``speak`` says the answer (and memory stores the turn in the background).

Nodes are thin: they call the components handed in at construction. The state is
the conversation in OpenAI's message format, checkpointed after every step under
the session's thread id, so a session resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Protocol, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from heron.memory.session_log import SessionLog
from heron.tools.base import ToolContext, ToolRegistry

from .errors import VLMError
from .events import SpeechOut, ToolCall, VideoFrame
from .frames import FrameRef, FrameStore
from .guard.moderation import BLOCKED_NOTICE
from .guard.session_guard import WITHHELD_NOTICE, Guard, withheld_this_turn
from .keyframes import Keyframe
from .offline import OfflineThinker
from .reply_stream import ModeratedFeed
from .thinking import Thinker, ThinkRequest
from .trace import TurnTrace

log = logging.getLogger(__name__)

NO_ANSWER = "Sorry, I have no answer to that."


def merge_messages(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append new messages; one with the ``id`` of a stored message replaces it.

    Replacing is how an interrupted reply is corrected to what was actually heard.
    """
    merged = list(left)
    where = {m["id"]: i for i, m in enumerate(merged) if m.get("id")}
    for message in right:
        index = where.get(message.get("id") or "")
        if index is None:
            merged.append(message)
        else:
            merged[index] = message
    return merged


class ReplySpeech(Protocol):
    """A reply spoken while it is generated (:class:`~heron.agent.playback.SpeechStream`)."""

    @property
    def fed_text(self) -> str: ...

    def spoken_text(self) -> str: ...

    def finish(self, timeout: float | None = None) -> SpeechOut: ...

    def feed(self, delta: str) -> None: ...

    def feed_sentence(self, sentence: str) -> None: ...

    async def afinish(self) -> SpeechOut: ...


class TurnState(TypedDict, total=False):
    """What is checkpointed: the conversation, and the current turn's working fields."""

    messages: Annotated[list[dict[str, Any]], merge_messages]
    turn: int
    user_text: str
    frame: str | None
    pending: list[dict[str, str]]
    rounds: int
    reply: str
    fallback: str | None
    """Why this turn answers without the model (set when the model failed)."""
    memories: str | None
    """Remembered things relevant to this turn, as the message put before the model."""


class TurnMemory(Protocol):
    """Recall before thinking and storing each finished turn (see heron.memory)."""

    def begin_recall(self, text: str) -> None: ...

    async def context(self, turn: int | None) -> str | None: ...

    def remember_turn(
        self, turn: int | None, user_text: str, reply: str, frame: VideoFrame | None
    ) -> None: ...


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
    get_keyframe: Callable[[float | None], Awaitable[Keyframe]] | None = None
    """When set, replaces ``get_frame``: the keyframe for a question begun at the time given."""
    t_question: float | None = None
    """Monotonic time the current question began (the start of speech), if known."""
    speech: ReplySpeech | None = None
    """This turn's streamed reply; when None, ``speak`` says the whole reply at the end."""
    feed: ModeratedFeed | None = None
    """The turn's text on its way into ``speech`` (set per turn)."""
    last_frame: FrameRef | None = None
    """The frame last sent to the model; reused while the keyframe says nothing changed."""
    memory: TurnMemory | None = None
    """Recalls memories for each turn and remembers the turn; None when memory is off."""
    guard: Guard | None = None
    """Checks world text, state-changing calls and replies (heron.agent.guard)."""


def interrupted_reply(message: dict[str, Any], said: str) -> dict[str, Any]:
    """The assistant message as far as it was heard before the user cut in."""
    content = f"{said} [interrupted by the user]" if said else "[interrupted before answering]"
    return {**message, "content": content, "interrupted": True}


def guarded_reply(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The turn's last assistant message as the guards let it be said."""
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    return [{**last, "content": text}] if last is not None and last.get("id") else []


def _streaming(c: TurnComponents) -> Callable[[str], None] | None:
    return c.feed.on_text if c.feed is not None else None


def _moderated_feed(c: TurnComponents, turn: int | None) -> ModeratedFeed | None:
    """This turn's path from the model's text to speech, each sentence moderated."""
    if c.speech is None:
        return None
    guard = c.guard
    if guard is None:
        return ModeratedFeed(c.speech, None, BLOCKED_NOTICE)

    async def allowed(sentence: str) -> bool:
        return (await guard.check_reply(sentence, turn)).allowed

    return ModeratedFeed(c.speech, allowed, BLOCKED_NOTICE)


def with_memories(messages: list[dict[str, Any]], memories: str | None) -> list[dict[str, Any]]:
    """The history with the turn's memories just before the latest user message.

    The memories go to the model with this request only; the history keeps none.
    """
    if not memories:
        return messages
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    note = {"role": "system", "content": memories, "untrusted": "memory"}  # marked as data
    return [*messages[:last_user], note, *messages[last_user:]]


def build_graph(
    components: TurnComponents, checkpointer: Checkpointer = None
) -> CompiledStateGraph:
    c = components

    async def listen(state: TurnState) -> dict[str, Any]:
        c.trace.mark("graph_start")
        c.feed = _moderated_feed(c, state.get("turn"))
        text = " ".join(state.get("user_text", "").split())
        if c.memory is not None:
            c.memory.begin_recall(text)  # searched while the frame is taken
        return {
            "user_text": text,
            "rounds": 0,
            "pending": [],
            "reply": "",
            "fallback": None,
            "memories": None,
        }

    async def perceive(state: TurnState) -> dict[str, Any]:
        unchanged = False
        if c.get_keyframe is not None:
            keyframe = await c.get_keyframe(c.t_question)
            frame, unchanged = keyframe.frame, keyframe.unchanged
            if frame is None:
                # never an older frame than the question: the model gets none this turn
                waited = round(keyframe.waited_s * 1000, 1)
                c.log.write("frame", turn=state.get("turn"), ref=None, waited_ms=waited)
        else:
            frame = await c.get_frame()
        c.current_frame = frame  # tools always read the freshest view
        message: dict[str, Any] = {
            "role": "user",
            "content": state["user_text"],
            "id": f"t{state.get('turn', 0)}-user",
        }
        if frame is not None and unchanged and c.last_frame is not None:
            # the model has this scene in the conversation already: text only
            c.log.write(
                "frame",
                turn=state.get("turn"),
                ref=c.last_frame.name,
                reused=True,
                image_tokens=0,
                age_ms=round((time.monotonic() - frame.t_capture) * 1000, 1),
                source=frame.source,
            )
            c.trace.mark("perceived")
            return {"messages": [message], "frame": c.last_frame.name}
        if frame is not None:
            ref = await asyncio.to_thread(c.frame_store.save, frame)
            c.last_frame = ref
            message["frame"] = ref.name
            c.log.write(
                "frame",
                turn=state.get("turn"),
                ref=ref.name,
                size=[ref.width, ref.height],
                bytes=ref.bytes,
                quality=ref.quality,
                image_tokens=ref.image_tokens,
                age_ms=round((time.monotonic() - frame.t_capture) * 1000, 1),
                source=ref.source,
            )
        c.trace.mark("perceived")
        return {"messages": [message], "frame": message.get("frame")}

    async def recall(state: TurnState) -> dict[str, Any]:
        if c.memory is None:
            return {}
        memories = await c.memory.context(state.get("turn"))
        if c.guard is not None:
            memories = c.guard.screen_text("memory", memories, state.get("turn"))
        return {"memories": memories}

    async def think(state: TurnState) -> dict[str, Any]:
        rounds = state.get("rounds", 0)
        shortcut = None
        if c.guard is not None and rounds == 0:
            shortcut = c.guard.shortcut(state["user_text"], state.get("turn"))
        if shortcut is not None:  # a refusal or an explanation: no model asked
            said = {"role": "assistant", "content": shortcut, "id": f"t{state.get('turn', 0)}-r0"}
            return {"messages": [said], "pending": [], "reply": shortcut, "rounds": 1}
        allow_tools = rounds < c.max_tool_rounds
        frame_name = state.get("frame")
        image = c.frame_store.data_url(frame_name) if frame_name else None
        request = ThinkRequest(
            messages=with_memories(state["messages"], state.get("memories")),
            tools=c.tools.schemas(),
            allow_tools=allow_tools,
            image_data_url=image,
            image_frame=frame_name,
            on_text=_streaming(c),
        )
        fallback = state.get("fallback")
        # once the model has failed in a turn, the rest of the turn stays offline
        thinker: Thinker = OfflineThinker(notice=fallback) if fallback else c.thinker
        c.trace.mark("think_start")
        if (
            c.feed is not None
            and c.guard is not None
            and rounds > 0
            and not c.feed.said
            and withheld_this_turn(state["messages"])
        ):
            c.feed.say_first(WITHHELD_NOTICE)
        received_before = c.feed.received if c.feed is not None else 0
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
            image_tokens=c.frame_store.tokens_of(frame_name) if frame_name else 0,
        )
        pending = [asdict(call) for call in reply.tool_calls] if allow_tools else []
        message = reply.as_message()
        message["id"] = f"t{state.get('turn', 0)}-r{rounds}"
        streamed = c.feed is not None and c.feed.received > received_before
        if c.feed is not None and reply.content and not pending and not streamed:
            c.feed.on_text(reply.content + " ")  # the thinker did not stream it
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
        # tools that ask the model themselves get its client, unless it failed this turn
        vlm = None if state.get("fallback") else getattr(c.thinker, "client", None)
        ctx = ToolContext(frame=c.current_frame, session_id=c.session_id, vlm=vlm)
        calls = [ToolCall(**call) for call in state.get("pending", [])]
        for call in calls:
            c.log.write(
                "tool.call",
                turn=state.get("turn"),
                id=call.id,
                name=call.name,
                arguments=call.arguments,
            )
        refused = (
            c.guard.refuse_calls(calls, c.tools, state["user_text"], state.get("turn"))
            if c.guard
            else {}
        )
        results = await asyncio.gather(
            *(c.tools.call(call, ctx) for call in calls if call.id not in refused)
        )
        messages = [
            {"role": "tool", "tool_call_id": call_id, "content": content}
            for call_id, content in refused.items()
        ]
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
            content = result.content
            if c.guard is not None:  # world text that gives orders is withheld
                turn = state.get("turn")
                content = c.guard.screen_result(f"the {result.name} tool", content, turn)
            messages.append({"role": "tool", "tool_call_id": result.call_id, "content": content})
        return {"messages": messages, "pending": []}

    async def speak(state: TurnState) -> dict[str, Any]:
        text = state.get("reply") or ""
        update: dict[str, Any] = {}
        if c.feed is not None:  # streamed: each sentence was moderated on its way
            if not c.feed.started:
                c.feed.on_text(text)
            text = await c.feed.finish()
            if text != state.get("reply"):
                update = {"reply": text, "messages": guarded_reply(state["messages"], text)}
        elif c.guard is not None:  # the withheld-text notice, then moderation
            text = await c.guard.before_speaking(text, state["messages"], state.get("turn"))
            if text != state.get("reply"):
                update = {"reply": text, "messages": guarded_reply(state["messages"], text)}
        c.trace.mark("reply_ready")
        c.log.write("reply", turn=state.get("turn"), text=text)
        if c.memory is not None:  # stored in the background while the reply is spoken
            c.memory.remember_turn(
                state.get("turn"), state.get("user_text", ""), text, c.current_frame
            )
        if c.speech is not None:
            out: SpeechOut | None = await c.speech.afinish()
        else:
            out = await c.speak(text)
        if out is None:
            return update
        if out.t_first_audio is not None:
            c.trace.mark("first_audio", out.t_first_audio)
        c.trace.mark("speech_done", out.t_end)
        c.log.write(
            "speech",
            turn=state.get("turn"),
            seconds=round(out.audio_seconds, 3),
            interrupted=out.interrupted,
            said=out.said if out.interrupted else None,
        )
        if not out.interrupted:
            return update
        # the conversation keeps what the user heard, not what was planned
        last = next(m for m in reversed(state["messages"]) if m.get("role") == "assistant")
        heard = interrupted_reply(last, out.said)
        return {"messages": [heard], "reply": heard["content"]}

    def after_think(state: TurnState) -> str:
        return "act" if state.get("pending") else "speak"

    graph = StateGraph(TurnState)
    graph.add_node("listen", listen)
    graph.add_node("perceive", perceive)
    graph.add_node("recall", recall)
    graph.add_node("think", think)
    graph.add_node("act", act)
    graph.add_node("speak", speak)
    graph.add_edge(START, "listen")
    graph.add_edge("listen", "perceive")
    graph.add_edge("perceive", "recall")
    graph.add_edge("recall", "think")
    graph.add_conditional_edges("think", after_think, {"act": "act", "speak": "speak"})
    graph.add_edge("act", "think")
    graph.add_edge("speak", END)
    return graph.compile(checkpointer=checkpointer)
