"""What a live session reports while it runs, and how a user interface steers it.

``run_live(..., on_event=callback, controls=LiveControls())``: the callback is
called on the session's event-loop thread with one of the events below; it must
return quickly (a UI hands the event to its own thread through a queue).
:class:`LiveControls` is safe to call from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

LiveState = Literal["starting", "listening", "hearing", "thinking", "speaking", "stopped"]
"""``hearing``: the user is speaking; ``thinking``: a turn runs until its first audio."""


@dataclass(frozen=True)
class StateChanged:
    state: LiveState


@dataclass(frozen=True)
class PartialTranscript:
    """The words heard so far in the utterance in progress (replaced by each next one)."""

    text: str


@dataclass(frozen=True)
class UserTurn:
    turn: int
    text: str


@dataclass(frozen=True)
class ReplyText:
    """The reply so far: grows sentence by sentence as it is spoken."""

    turn: int
    text: str
    final: bool = False
    interrupted: bool = False


@dataclass(frozen=True)
class TurnLatency:
    """Stage durations of a finished turn, in ms (keys as in the session log's ``trace``)."""

    turn: int
    stages_ms: dict[str, float]


@dataclass(frozen=True)
class Notice:
    """Something the user should know (camera lost, model unreachable, echo ignored…)."""

    text: str


LiveEvent = StateChanged | PartialTranscript | UserTurn | ReplyText | TurnLatency | Notice
EventCallback = Callable[[LiveEvent], None]


@dataclass
class LiveControls:
    """Steering a running session from another thread (a window, a terminal, a test)."""

    _talk_pressed: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _listeners: list[Callable[[bool], None]] = field(default_factory=list)

    def push_to_talk(self, pressed: bool) -> None:
        """Press (True) or release (False) the talk key."""
        if pressed == self._talk_pressed.is_set():
            return
        if pressed:
            self._talk_pressed.set()
        else:
            self._talk_pressed.clear()
        for listener in list(self._listeners):
            listener(pressed)

    @property
    def talk_pressed(self) -> bool:
        return self._talk_pressed.is_set()

    def on_push_to_talk(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)

    def stop(self) -> None:
        """Ask the session to end cleanly (as Ctrl-C does)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()
