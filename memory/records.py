"""What goes into the memory and what comes out of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from heron.agent.errors import HeronError

KINDS = ("frame", "photo", "note", "turn", "frame_text")
"""frame: a camera keyframe; photo: an indexed image file; note: something the user
asked to keep; turn: a question and its answer; frame_text: the text read in a frame
or photo (OCR, labels), so words find the picture they were seen in."""


class MemoryStoreError(HeronError):
    """The memory store cannot be opened, reached or used (a Chroma server down, a
    collection made by another embedder); ``retryable`` when a server may come back."""


@dataclass
class FrameInput:
    """A picture to remember: a camera keyframe or a photo from a folder."""

    image: np.ndarray
    t: float = field(default_factory=time.time)
    session: str = ""
    kind: str = "frame"
    text: str = ""
    """Text read in the picture (OCR)."""
    labels: list[str] = field(default_factory=list)
    source: str = "camera"
    id: str | None = None
    """A fixed id (e.g. from the file's content); by default from the pixels."""


@dataclass
class TextInput:
    """A note, a conversation turn or the text of a picture."""

    text: str
    kind: str = "note"
    t: float = field(default_factory=time.time)
    session: str = ""
    frame_id: str | None = None
    id: str | None = None


@dataclass(frozen=True)
class Remembered:
    """What became of one input: stored, or folded into a near-duplicate already there."""

    id: str
    stored: bool
    duplicate_of: str | None = None


class Memory(BaseModel):
    """One recalled memory."""

    id: str
    kind: str
    score: float = Field(description="cosine similarity to the query, -1..1")
    time: str = Field(description="when it was remembered, local ISO time")
    text: str = Field("", description="the note, the turn, or the text read in the picture")
    session: str = ""
    thumbnail: str | None = Field(None, description="path of the kept picture, if any")
    source: str | None = None
    labels: list[str] = Field(default_factory=list)
    t: float = Field(0.0, description="when, as epoch seconds")


def iso_time(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")
