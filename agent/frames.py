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

from .config import VLMConfig
from .events import VideoFrame
from .vlm import encode_frame, estimate_image_tokens, image_data_url


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


class FrameStore:
    """Saves turn frames under ``<session>/frames`` at the VLM's size and quality."""

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

    def save(self, frame: VideoFrame) -> FrameRef:
        jpeg = encode_frame(
            frame.image,
            max_side=self._config.image_max_side,
            jpeg_quality=self._config.jpeg_quality,
        )
        # the same arithmetic encode_frame resizes with
        height, width = frame.image.shape[:2]
        scale = min(1.0, self._config.image_max_side / max(height, width))
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        with self._lock:
            name = f"frames/{next(self._counter):06d}.jpg"
        (self.session_dir / name).write_bytes(jpeg)
        return FrameRef(
            name=name,
            width=width,
            height=height,
            bytes=len(jpeg),
            image_tokens=estimate_image_tokens(width, height),
            t_capture=frame.t_capture,
            source=frame.source,
        )

    def data_url(self, name: str) -> str:
        cached_name, url = self._last_url
        if cached_name != name:
            url = image_data_url((self.session_dir / name).read_bytes())
            self._last_url = (name, url)
        return url
