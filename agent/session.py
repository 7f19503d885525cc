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
from dataclasses import dataclass
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
from .graph import TurnComponents, build_graph
from .offline import OfflineThinker
from .thinking import Thinker, VLMThinker
from .trace import TurnTrace
from .vlm import VLMClient

log = logging.getLogger(__name__)

FrameGetter = Callable[[], Awaitable[VideoFrame | None]]
SpeakFn = Callable[[str], Awaitable[SpeechOut | None]]


def new_session_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def session_exists(settings: Settings, session_id: str) -> bool:
    return (Path(settings.data_dir) / "sessions" / session_id / "log.jsonl").is_file()


def recent_sessions(settings: Settings, count: int = 5) -> list[str]:
    """The ids of the latest sessions, newest first."""
    folder = Path(settings.data_dir) / "sessions"
    found = sorted(folder.glob("*/log.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [path.parent.name for path in found[:count]]


def default_tools() -> ToolRegistry:
    from heron.tools.ocr import ReadTextTool

    return ToolRegistry([ReadTextTool()])


@dataclass(frozen=True)
class TurnResult:
    turn: int
    user_text: str
    reply: str
    frame: str | None
    timing: dict[str, Any]


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
    ) -> None:
        self.settings = settings
        self.resumed = False
        """True once opened if the session already had checkpoints or a log."""
        self.id = session_id or new_session_id()
        self.dir = Path(settings.data_dir) / "sessions" / self.id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = SessionLog(self.dir / "log.jsonl")
        self.tools = tools if tools is not None else default_tools()
        self._vlm: VLMClient | None = None
        if thinker is None:
            if settings.vlm.enabled:
                self._vlm = VLMClient(settings.vlm)
                thinker = VLMThinker(
                    self._vlm,
                    system_prompt=settings.vlm.system_prompt,
                    assistant_name=settings.assistant_name,
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
        )
        self._conn: aiosqlite.Connection | None = None
        self._graph: Any = None
        self._turns = 0
        self._lock = asyncio.Lock()

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

    async def turn(self, text: str, *, utterance: Utterance | None = None) -> TurnResult:
        """Run one turn: the user's words in, the spoken reply out."""
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
            except Exception as exc:
                self.log.write("error", turn=self._turns, where="turn", error=repr(exc))
                raise
            trace.mark("turn_end")
            timing = trace.summary()
            self.log.write("turn.timing", turn=self._turns, **timing)
            return TurnResult(
                turn=self._turns,
                user_text=text,
                reply=state.get("reply", ""),
                frame=state.get("frame"),
                timing=timing,
            )

    async def close(self) -> None:
        self.log.write("session.end", session=self.id, turns=self._turns, t_end=time.time())
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if self._vlm is not None:
            await self._vlm.close()
        self.log.close()
