"""Frames a turn looked at: saved once as the JPEG that is sent, referenced by name.

The conversation state and the session log carry only the reference
(``frames/000003.jpg``); the bytes live in the session folder. What the model
was shown is therefore exactly what is on disk, and checkpoints stay small.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2

from .config import VLMConfig
from .events import VideoFrame
from .frame_budget import encode_within_budget
from .vlm import estimate_image_tokens, image_data_url


@dataclass(frozen=True)
class FrameRef:
    """A saved frame: its name in the session folder and what sending it costs."""

    name: str
    width: int
    height: int
    bytes: int
    image_tokens: int
    t_capture: float
    source: str
    quality: int = 0
    """JPEG quality it was saved at (lower than configured when the byte budget forced it)."""


class FrameStore:
    """Saves turn frames under ``<session>/frames`` within the VLM's frame budget."""

    def __init__(self, session_dir: Path, config: VLMConfig) -> None:
        self.session_dir = session_dir
        self.folder = session_dir / "frames"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._config = config
        existing = sorted(self.folder.glob("*.jpg"))
        start = int(existing[-1].stem) + 1 if existing else 1
        self._counter = itertools.count(start)
        self._lock = threading.Lock()
        self._last_url: tuple[str, str] = ("", "")
        """The latest frame's data URL: every think round of a turn sends it again."""
        self._tokens: dict[str, int] = {}

    def tokens_of(self, name: str) -> int:
        """Estimated image tokens of sending the saved frame ``name`` (0 if it is gone)."""
        if name not in self._tokens:
            image = cv2.imread(str(self.session_dir / name), cv2.IMREAD_UNCHANGED)
            height, width = image.shape[:2] if image is not None else (0, 0)
            self._tokens[name] = estimate_image_tokens(width, height) if width else 0
        return self._tokens[name]

    def save(self, frame: VideoFrame) -> FrameRef:
        encoded = encode_within_budget(
            frame.image,
            max_side=self._config.image_max_side,
            quality=self._config.jpeg_quality,
            max_bytes=self._config.image_max_bytes,
        )
        with self._lock:
            name = f"frames/{next(self._counter):06d}.jpg"
        (self.session_dir / name).write_bytes(encoded.jpeg)
        self._tokens[name] = encoded.image_tokens
        return FrameRef(
            name=name,
            width=encoded.width,
            height=encoded.height,
            bytes=len(encoded.jpeg),
            image_tokens=encoded.image_tokens,
            t_capture=frame.t_capture,
            source=frame.source,
            quality=encoded.quality,
        )

    def data_url(self, name: str) -> str:
        cached_name, url = self._last_url
        if cached_name != name:
            url = image_data_url((self.session_dir / name).read_bytes())
            self._last_url = (name, url)
        return url
