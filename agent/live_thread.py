"""A live session on a background thread, for user interfaces that own the main thread.

GUI toolkits (OpenCV's windows among them) must draw on the main thread, so the
session runs :func:`~heron.agent.live.run_live` on a thread of its own with its own
asyncio loop. What it reports crosses to the interface through a queue: the
session's events (:mod:`~heron.agent.live_events`), the lines it says
(:class:`Said`) and, last, :class:`Ended` with the exit code. The interface steers
it with :attr:`LiveThread.controls` and ends it with :meth:`LiveThread.stop`.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from .camera import VideoSource
from .config import Settings
from .errors import HeronError
from .live_events import LiveControls, LiveEvent

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0
"""After :meth:`LiveThread.stop`, the session has this long to end by itself before it is
cancelled (it closes its session log either way)."""


@dataclass(frozen=True)
class Said:
    """A line the session said to its user ("loading speech models…", "camera: …")."""

    text: str


@dataclass(frozen=True)
class Ended:
    """The session is over: ``code`` as ``heron live`` exits; ``error`` when it failed."""

    code: int
    error: str | None = None


Report = LiveEvent | Said | Ended


class LiveThread:
    """``run_live`` on a daemon thread; reports arrive on :attr:`reports`.

    The options are those of :class:`~heron.agent.live.LiveOptions`; the live module
    (and the models it imports) loads on the session's thread, so a window can show
    at once.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        duration_s: float | None = None,
        max_turns: int | None = None,
        resume: str | None = None,
        controls: LiveControls | None = None,
        camera: VideoSource | None = None,
    ) -> None:
        self.settings = settings
        self.camera = camera
        """A started camera the window shares with the session (a webcam opens once)."""
        self.options: dict[str, Any] = {
            "duration_s": duration_s,
            "max_turns": max_turns,
            "resume": resume,
        }
        self.controls = controls or LiveControls()
        self.reports: queue.Queue[Report] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="heron-live-session", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._ready = threading.Event()
        self._stopping = False

    def start(self) -> LiveThread:
        self._thread.start()
        return self

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask the session to end (as Ctrl-C does); cancel it if it has not after ``grace_s``."""
        self._stopping = True
        self.controls.stop()
        if self._thread.ident is None:  # never started: nothing to wait for
            self.reports.put(Ended(0))
            return
        self._thread.join(timeout=grace_s)
        if self._thread.is_alive() and self._ready.wait(timeout=1.0):
            loop, task = self._loop, self._task
            if loop is not None and task is not None:
                loop.call_soon_threadsafe(task.cancel)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the session's end; True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            code = asyncio.run(self._main())
        except HeronError as exc:
            self.reports.put(Ended(2, str(exc)))
        except Exception as exc:  # the interface must hear of any failure, not hang
            log.exception("the live session failed")
            self.reports.put(Ended(1, f"{type(exc).__name__}: {exc}"))
        else:
            self.reports.put(Ended(code))

    async def _main(self) -> int:
        from .live import LiveOptions, run_live

        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._ready.set()
        try:
            return await run_live(
                self.settings,
                LiveOptions(**self.options),
                say=lambda line: self.reports.put(Said(line)),
                on_event=self.reports.put,
                controls=self.controls,
                camera=self.camera,
            )
        except asyncio.CancelledError:
            if self._stopping:
                return 0
            raise
