"""A session: the turn graph with its components, its log, checkpoints and folder.

Everything a session produces lives in ``<data_dir>/sessions/<session_id>/``: the
log (``log.jsonl``), the frames the model saw (``frames/``). Checkpoints of every
session are in ``<data_dir>/checkpoints.sqlite`` under the session id as LangGraph's
thread id, so ``Session(..., session_id=ID)`` continues an earlier conversation.

A session does not own sensors: it is handed a frame getter and a ``speak``
function, so the live loop, a scripted scenario and a test drive it the same way.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from heron.memory.session_log import SessionLog
from heron.tools.base import ToolRegistry

from .config import Settings
from .events import SpeechOut, Utterance, VideoFrame
from .frames import FrameStore
from .graph import ReplySpeech, TurnComponents, build_graph, interrupted_reply
from .guard.session_guard import LOCAL_ONLY_NOTICE, Guard
from .keyframes import Keyframe
from .offline import OfflineThinker
from .thinking import Thinker, VLMThinker
from .trace import TurnTrace
from .vlm import VLMClient

log = logging.getLogger(__name__)

FrameGetter = Callable[[], Awaitable[VideoFrame | None]]
SpeakFn = Callable[[str], Awaitable[SpeechOut | None]]
KeyframeGetter = Callable[[float | None], Awaitable[Keyframe]]
"""The keyframe for a question begun at a monotonic time (now when None)."""


def new_session_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def session_exists(settings: Settings, session_id: str) -> bool:
    return (Path(settings.data_dir) / "sessions" / session_id / "log.jsonl").is_file()


def recent_sessions(settings: Settings, count: int = 5) -> list[str]:
    """The ids of the latest sessions, newest first."""
    folder = Path(settings.data_dir) / "sessions"
    found = sorted(folder.glob("*/log.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [path.parent.name for path in found[:count]]


def default_tools(settings: Settings | None = None) -> ToolRegistry:
    """The built-in tools; with settings that enable memory, also remember/recall/forget."""
    from heron.tools.media_check import CheckMediaTool
    from heron.tools.perception_tools import perception_tools

    registry = ToolRegistry(perception_tools())
    registry.add(CheckMediaTool(settings.media if settings is not None else None))
    if settings is not None and settings.memory.enabled:
        # the store opens lazily, on a background thread: no cost at start
        from heron.memory.session_memory import shared_memory
        from heron.tools.memory_tools import memory_tools

        for tool in memory_tools(shared_memory(settings)):
            registry.add(tool)
    return registry


def _session_memory(settings: Settings, session_id: str, log: SessionLog) -> Any:
    """Recall and turn storage for the graph, or None when memory is off."""
    if not settings.memory.enabled:
        return None
    from heron.memory.session_memory import SessionMemory, shared_memory

    return SessionMemory(
        shared_memory(settings),
        session_id=session_id,
        log=log,
        results=settings.memory.recall_results,
    )


@dataclass(frozen=True)
class TurnResult:
    turn: int
    user_text: str
    reply: str
    frame: str | None
    timing: dict[str, Any]
    marks: dict[str, float] = field(default_factory=dict)
    """The trace's marks as monotonic times (``timing`` has them relative to speech end)."""


async def _no_frame() -> VideoFrame | None:
    return None


async def _silent(text: str) -> SpeechOut | None:
    return None


class Session:
    """One conversation: ``await session.turn("what does the sign say?")``."""

    def __init__(
        self,
        settings: Settings,
        *,
        session_id: str | None = None,
        get_frame: FrameGetter = _no_frame,
        speak: SpeakFn = _silent,
        tools: ToolRegistry | None = None,
        thinker: Thinker | None = None,
        get_keyframe: KeyframeGetter | None = None,
    ) -> None:
        self.settings = settings
        self.resumed = False
        """True once opened if the session already had checkpoints or a log."""
        self.id = session_id or new_session_id()
        self.dir = Path(settings.data_dir) / "sessions" / self.id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = SessionLog(self.dir / "log.jsonl")
        self.tools = tools if tools is not None else default_tools(settings)
        self.memory = _session_memory(settings, self.id, self.log)
        self._vlm: VLMClient | None = None
        self.guard = Guard(settings.guard, settings.vlm, self.log)
        if thinker is None:
            if self.guard.local_only:  # the privacy policy keeps everything here
                thinker = OfflineThinker(notice=LOCAL_ONLY_NOTICE)
            elif settings.vlm.enabled:
                self._vlm = VLMClient(settings.vlm)
                thinker = VLMThinker(
                    self._vlm,
                    system_prompt=settings.vlm.system_prompt,
                    assistant_name=settings.assistant_name,
                    outbound=self.guard.outbound,
                )
            else:
                thinker = OfflineThinker()
        self.thinker = thinker
        self.components = TurnComponents(
            thinker=thinker,
            tools=self.tools,
            frame_store=FrameStore(self.dir, settings.vlm),
            log=self.log,
            get_frame=get_frame,
            speak=speak,
            session_id=self.id,
            max_tool_rounds=settings.vlm.max_tool_rounds,
            get_keyframe=get_keyframe,
            memory=self.memory,
            guard=self.guard,
        )
        self._conn: aiosqlite.Connection | None = None
        self._graph: Any = None
        self._turns = 0
        self._lock = asyncio.Lock()

    @property
    def next_turn(self) -> int:
        """The number the next turn will have."""
        return self._turns + 1

    @property
    def offline(self) -> bool:
        return isinstance(self.thinker, OfflineThinker)

    @property
    def config(self) -> dict[str, Any]:
        return {"configurable": {"thread_id": self.id}, "recursion_limit": 50}

    async def open(self) -> Session:
        self._conn = await aiosqlite.connect(Path(self.settings.data_dir) / "checkpoints.sqlite")
        saver = AsyncSqliteSaver(self._conn)
        await saver.setup()
        self._graph = build_graph(self.components, saver)
        snapshot = await self._graph.aget_state(self.config)
        self.resumed = bool(snapshot.values) or self.log.continued
        self._turns = int(snapshot.values.get("turn", 0)) if snapshot.values else 0
        self.log.write(
            "session.start",
            session=self.id,
            resumed=self.resumed,
            turns_before=self._turns,
            thinker=self.thinker.name,
            model=self.settings.vlm.model if not self.offline else None,
            endpoint=self._vlm.endpoint if self._vlm else None,
            tools=self.tools.names(),
            guard=self.guard.describe(),
        )
        return self

    async def __aenter__(self) -> Session:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def history(self) -> list[dict[str, Any]]:
        """The conversation so far, as checkpointed."""
        snapshot = await self._graph.aget_state(self.config)
        return list(snapshot.values.get("messages", [])) if snapshot.values else []

    async def turn(
        self,
        text: str,
        *,
        utterance: Utterance | None = None,
        t_question: float | None = None,
        speech: ReplySpeech | None = None,
    ) -> TurnResult:
        """Run one turn: the user's words in, the spoken reply out.

        ``t_question`` (monotonic) is when the question began; it defaults to the
        utterance's start of speech. No frame captured before it is sent.
        ``speech``: the reply is streamed into it as it is generated. Cancelling the
        turn (barge-in) stops it; the conversation then records the reply as far as
        it was heard, and no tool call is left without a result.
        """
        if self._graph is None:
            raise RuntimeError("open the session first: `async with Session(...) as s`")
        async with self._lock:
            self._turns += 1
            trace = TurnTrace(turn=self._turns)
            trace.mark("turn_start")
            if utterance is not None:
                trace.mark("speech_end", utterance.t_end)
                if utterance.t_endpoint is not None:
                    trace.mark("endpoint", utterance.t_endpoint)
                trace.mark("transcript", utterance.t_final)
            self.components.trace = trace
            if t_question is None and utterance is not None:
                t_question = utterance.t_start
            self.components.t_question = t_question
            self.components.speech = speech
            self.log.write(
                "utterance",
                turn=self._turns,
                text=text,
                source=utterance.source if utterance else "text",
                speech_s=round(utterance.t_end - utterance.t_start, 3) if utterance else None,
            )
            try:
                state = await self._graph.ainvoke(
                    {"user_text": text, "turn": self._turns}, self.config
                )
            except asyncio.CancelledError:
                said = ""
                if speech is not None:  # the player stops within a block; then count
                    heard = await asyncio.shield(asyncio.to_thread(speech.finish, 2.0))
                    said = heard.said
                trace.mark("barge_in")
                await asyncio.shield(self._record_interruption(self._turns, text, said))
                self.log.write("turn.timing", turn=self._turns, interrupted=True, **trace.summary())
                raise
            except Exception as exc:
                self.log.write("error", turn=self._turns, where="turn", error=repr(exc))
                raise
            trace.mark("turn_end")
            timing = trace.summary()
            self.log.write("turn.timing", turn=self._turns, **timing)
            if self.memory is not None:
                self.memory.turn_finished()  # stored now, off the turn's critical path
            return TurnResult(
                turn=self._turns,
                user_text=text,
                reply=state.get("reply", ""),
                frame=state.get("frame"),
                timing=timing,
                marks=dict(trace.marks),
            )

    async def _record_interruption(self, turn: int, text: str, said: str) -> None:
        """Leave the checkpoint as a finished turn that was cut off after ``said``."""
        snapshot = await self._graph.aget_state(self.config)
        messages: list[dict[str, Any]] = list(snapshot.values.get("messages", []))
        prefix = f"t{turn}-"
        fixes: list[dict[str, Any]] = []
        if not any(m.get("id") == f"{prefix}user" for m in messages):
            fixes.append({"role": "user", "content": text, "id": f"{prefix}user"})
        answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
        for message in messages:
            for call in message.get("tool_calls") or []:
                if call["id"] not in answered:
                    fixes.append(
                        {
                            "role": "tool",
                            "tool_call_id": call["id"],
                            "content": "not run: the user interrupted",
                        }
                    )
        this_turn = [
            m
            for m in messages
            if m.get("role") == "assistant"
            and str(m.get("id", "")).startswith(prefix)
            and not m.get("tool_calls")
        ]
        base = this_turn[-1] if this_turn else {"role": "assistant", "id": f"{prefix}heard"}
        heard = interrupted_reply(base, said)
        fixes.append(heard)
        await self._graph.aupdate_state(
            self.config, {"messages": fixes, "reply": heard["content"]}, as_node="speak"
        )
        self.log.write("interrupted", turn=turn, said=said)

    async def close(self) -> None:
        if self.memory is not None:
            await self.memory.close()  # turns still being stored
        self.log.write("session.end", session=self.id, turns=self._turns, t_end=time.time())
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._vlm is not None:
            await self._vlm.close()
        await self.guard.aclose()
        self.log.close()
