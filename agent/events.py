"""Events that flow between heron's components.

Plain, immutable, timestamped data with no behaviour. Times named ``t_*`` are
``time.monotonic()`` seconds (comparable across threads, immune to clock
changes); ``wall_time`` is ``time.time()`` for logs people read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SAMPLE_RATE = 16_000
"""Everything inside heron's speech path is 16 kHz mono float32 in [-1, 1]."""


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A block of 16 kHz mono float32 audio."""

    samples: np.ndarray
    t_capture: float
    """Monotonic time at which the first sample was captured."""
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def t_end(self) -> float:
        return self.t_capture + self.duration


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One camera frame (BGR, as OpenCV delivers it)."""

    image: np.ndarray
    t_capture: float
    wall_time: float
    index: int
    source: str = ""


@dataclass(frozen=True, slots=True)
class Utterance:
    """What the user said in one turn."""

    text: str
    t_start: float
    """Monotonic time of the start of speech."""
    t_end: float
    """Monotonic time of the end of speech."""
    t_final: float
    """Monotonic time at which the final transcript was ready."""
    t_endpoint: float | None = None
    """Monotonic time at which the end of the utterance was decided (VAD silence)."""
    source: Literal["microphone", "file", "text"] = "microphone"
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    no_speech_prob: float = 0.0
    utterance_id: int = 0
    """The segmenter's count: voice events of the same utterance carry it too."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call requested by the model (arguments as the raw JSON text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call; ``content`` is what the model reads."""

    call_id: str
    name: str
    ok: bool
    content: str
    t_start: float
    t_end: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechOut:
    """A reply as it was spoken."""

    text: str
    t_start: float
    t_first_audio: float | None
    t_end: float
    audio_seconds: float
    interrupted: bool = False
    spoken_text: str | None = None
    """What was actually said: ``text`` cut where playback was interrupted."""

    @property
    def said(self) -> str:
        return self.text if self.spoken_text is None else self.spoken_text
