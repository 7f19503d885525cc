"""Keyframes: which camera frame, if any, goes to the model with a question.

Sending a frame at a fixed rate pays for every image token whether the view changed
or not. heron analyses every frame cheaply instead (on a small grey copy: a
difference hash for scene changes, the variance of the Laplacian for sharpness,
the mean for brightness) and sends a frame only when a question needs one:

- the frame sent with a question is the sharpest one captured *after the question
  began* (the user may be pointing the camera while asking), never an older one;
  if none has arrived yet, the selector waits briefly for one;
- while the scene has not changed since the last frame sent, nothing new is sent:
  the model already has that frame in the conversation, and the turn is text only.

:class:`KeyframeTracker` runs the analysis on its own thread, fed with the newest
frames of a :class:`~heron.agent.camera.VideoSource`, so capture never waits for
it; it keeps the sharpest frame of every short time slot in a :class:`FrameRing`.
:class:`KeyframeSelector` answers "which frame for this question?".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .config import KeyframeConfig
from .errors import CameraError
from .events import VideoFrame

log = logging.getLogger(__name__)

HASH_SIDE = 8
GRID = (32, 24)
"""The difference hash compares neighbours on a 9x8 thumbnail: 64 bits."""

NEAR_SHARPEST = 0.8
"""Frames at least this fraction as sharp as the sharpest count as sharp; the newest wins."""


@dataclass(frozen=True, slots=True, eq=False)
class FrameAnalysis:
    """What the cheap per-frame analysis found."""

    dhash: int
    """64-bit difference hash: nearby hashes mean the same scene."""
    sharpness: float
    """Variance of the Laplacian of the small grey copy (higher is sharper)."""
    brightness: float
    """Mean luminance, 0 (black) to 1 (white)."""
    contrast: float
    """Standard deviation of luminance, 0..0.5; near 0 is a featureless view."""
    focus: float
    """Edge strength in the weaker direction relative to contrast: low when the view
    is out of focus or smeared by motion (which keeps edges along the motion), and
    not lowered by dim light."""
    grid: np.ndarray
    """Mean luminance of 32x24 blocks (uint8): a local change (new text on a sign)
    moves a block even when the whole-frame hash barely changes."""


@dataclass(frozen=True, slots=True)
class AnalysedFrame:
    frame: VideoFrame
    analysis: FrameAnalysis

    @property
    def t_capture(self) -> float:
        return self.frame.t_capture


def to_grey(image: np.ndarray, width: int) -> np.ndarray:
    """A uint8 grey copy at most ``width`` pixels wide, from grey, BGR or BGRA input."""
    if not isinstance(image, np.ndarray) or image.size == 0 or image.ndim not in (2, 3):
        shape = getattr(image, "shape", None)
        raise CameraError(f"not a camera frame: an empty or malformed image (shape {shape})")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise CameraError(f"not a camera frame: {image.shape[2]} colour channels")
    if image.dtype != np.uint8:
        scaled = image * 255.0 if image.dtype.kind == "f" and image.max() <= 1.0 else image
        image = np.clip(scaled, 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    # Striding first makes huge frames (8000x8000) cost about what a normal one does;
    # the area resize afterwards still averages away the aliasing.
    step = max(1, w // (width * 2))
    if step > 1:
        image = image[::step, ::step]
        h, w = image.shape[:2]
    if image.ndim == 3:
        code = {1: None, 3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}[image.shape[2]]
        image = image[:, :, 0] if code is None else cv2.cvtColor(image, code)
    if w > width:
        size = (width, max(1, round(h * width / w)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def dhash(grey: np.ndarray) -> int:
    """The difference hash: is each pixel of a 9x8 thumbnail brighter than its right one."""
    thumb = cv2.resize(grey, (HASH_SIDE + 1, HASH_SIDE), interpolation=cv2.INTER_AREA)
    bits = (thumb[:, 1:] > thumb[:, :-1]).flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def analyse(image: np.ndarray, *, width: int = 160) -> FrameAnalysis:
    """Hash, sharpness and brightness of one frame; about a millisecond at 640x480.

    Raises :class:`CameraError` for something that is not an image.
    """
    grey = to_grey(image, width)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    mean, std = cv2.meanStdDev(grey)
    across = cv2.Sobel(grey, cv2.CV_32F, 2, 0, ksize=3).var()
    down = cv2.Sobel(grey, cv2.CV_32F, 0, 2, ksize=3).var()
    spread = max(float(std[0, 0]), 4.0)
    return FrameAnalysis(
        dhash=dhash(grey),
        sharpness=float(lap.var()),
        brightness=float(mean[0, 0]) / 255.0,
        contrast=float(std[0, 0]) / 255.0,
        focus=float(min(across, down)) / (spread * spread),
        grid=cv2.resize(grey, GRID, interpolation=cv2.INTER_AREA),
    )


def hash_distance(a: FrameAnalysis, b: FrameAnalysis) -> int:
    return (a.dhash ^ b.dhash).bit_count()


def detail_change(a: FrameAnalysis, b: FrameAnalysis) -> float:
    """The largest change of any block's mean luminance, 0..1."""
    if a.grid.shape != b.grid.shape:
        return 1.0
    return float(cv2.absdiff(a.grid, b.grid).max()) / 255.0


def same_scene(
    a: FrameAnalysis, b: FrameAnalysis, config: KeyframeConfig, *, detail: float | None = None
) -> bool:
    """True when ``b`` shows what ``a`` showed: the layout, the light and every part alike.

    ``detail`` overrides ``config.change_detail`` (the short-text channel looks closer).
    """
    return (
        hash_distance(a, b) < config.change_bits
        and abs(a.brightness - b.brightness) < config.change_brightness
        and detail_change(a, b) < (config.change_detail if detail is None else detail)
    )


def is_blurred(analysis: FrameAnalysis, config: KeyframeConfig) -> bool:
    """Too blurred to read: edges weak for the contrast there is (a flat view is not blurred)."""
    return analysis.contrast >= 0.03 and analysis.focus < config.blur_threshold


class FrameRing:
    """Recent analysed frames: the newest, and the sharpest of each time slot.

    Keeping one frame per ``slot_s`` over ``history_s`` bounds memory (60 frames
    by default, about 55 MB at 640x480) however fast the camera is, while the
    sharpest frame of any stretch of time is still at hand. Thread-safe.
    """

    def __init__(self, config: KeyframeConfig) -> None:
        self.config = config
        self._cond = threading.Condition()
        self._slots: deque[tuple[int, AnalysedFrame]] = deque()
        self._latest: AnalysedFrame | None = None
        self._closed = False
        self.analysed = 0

    def add(self, item: AnalysedFrame) -> None:
        slot = int(item.t_capture // self.config.slot_s)
        with self._cond:
            self._latest = item
            self.analysed += 1
            if self._slots and self._slots[-1][0] == slot:
                best = self._slots[-1][1]
                if item.analysis.sharpness >= best.analysis.sharpness:
                    self._slots[-1] = (slot, item)
            else:
                self._slots.append((slot, item))
            horizon = item.t_capture - self.config.history_s
            while self._slots and self._slots[0][1].t_capture < horizon:
                self._slots.popleft()
            self._cond.notify_all()

    def latest(self) -> AnalysedFrame | None:
        with self._cond:
            return self._latest

    def since(self, t: float) -> list[AnalysedFrame]:
        """Kept frames captured at or after monotonic time ``t``, oldest first."""
        with self._cond:
            found = [item for _, item in self._slots if item.t_capture >= t]
            latest = self._latest
        if latest is not None and latest.t_capture >= t and (not found or found[-1] is not latest):
            found.append(latest)
        return found

    def wait_newer(self, t: float, timeout: float) -> bool:
        """Wait until a frame captured at or after ``t`` is kept; False on timeout or close."""

        def ready() -> bool:
            latest = self._latest
            return self._closed or (latest is not None and latest.t_capture >= t)

        with self._cond:
            self._cond.wait_for(ready, timeout=timeout)
            return self._latest is not None and self._latest.t_capture >= t

    def close(self) -> None:
        """No more frames will come (the camera ended): waiters return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed


class FrameFeed(Protocol):
    """What the tracker reads: a :class:`~heron.agent.camera.VideoSource`, or a stand-in."""

    @property
    def status(self) -> str: ...

    def wait_for_frame(
        self, after: float | None = None, timeout: float = 5.0
    ) -> VideoFrame | None: ...


class KeyframeTracker:
    """Analyses the newest frames of ``source`` on its own thread into a :class:`FrameRing`.

    The camera's reader thread only ever publishes its newest frame; this thread
    takes whatever is newest when it is ready for more, so a slow analysis skips
    frames rather than delaying capture. ``on_frame`` (optional) is called on this
    thread with each analysed frame.
    """

    def __init__(
        self,
        source: FrameFeed,
        config: KeyframeConfig | None = None,
        *,
        on_frame: Callable[[AnalysedFrame], None] | None = None,
    ) -> None:
        self.source = source
        self.config = config or KeyframeConfig()
        self.ring = FrameRing(self.config)
        self.on_frame = on_frame
        self.skipped_bad = 0
        """Frames that could not be analysed (not images); they are never kept."""
        self.analysis_s = 0.0
        """Total seconds spent analysing, for the frames/s figure."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> KeyframeTracker:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heron-keyframes", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self.ring.close()

    def __enter__(self) -> KeyframeTracker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ended(self) -> bool:
        """True once the source has ended and every frame it gave was analysed."""
        return self.ring.closed

    def _run(self) -> None:
        after: float | None = None
        try:
            while not self._stop.is_set():
                frame = self.source.wait_for_frame(after, timeout=0.5)
                if frame is None:
                    if self.source.status in ("ended", "failed"):
                        return
                    continue
                after = frame.t_capture
                self.feed(frame)
        finally:
            self.ring.close()

    def feed(self, frame: VideoFrame) -> AnalysedFrame | None:
        """Analyse one frame and keep it; None (and a debug line) when it is not an image."""
        t0 = time.perf_counter()
        try:
            analysis = analyse(frame.image, width=self.config.analysis_width)
        except CameraError as exc:
            self.skipped_bad += 1
            log.debug("frame %d skipped: %s", frame.index, exc)
            return None
        self.analysis_s += time.perf_counter() - t0
        item = AnalysedFrame(frame, analysis)
        self.ring.add(item)
        if self.on_frame is not None:
            try:
                self.on_frame(item)
            except Exception:
                log.exception("the keyframe on_frame callback failed")
        return item


@dataclass(frozen=True, slots=True)
class Keyframe:
    """The selector's answer for one question."""

    frame: VideoFrame | None
    """The frame to look at (also when unchanged: tools read the freshest view)."""
    analysis: FrameAnalysis | None
    unchanged: bool
    """The scene is the one last sent: the model has it already; send text only."""
    waited_s: float
    """How long the selector waited for a frame newer than the question."""


class KeyframeSelector:
    """Chooses the frame for each question from a :class:`FrameRing`.

    ``clock`` (monotonic seconds, like ``VideoFrame.t_capture``) is injectable so
    tests control time.
    """

    def __init__(
        self,
        ring: FrameRing,
        config: KeyframeConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ring = ring
        self.config = config or ring.config
        self._clock = clock
        self._sent: FrameAnalysis | None = None
        self._lock = threading.Lock()
        self.images_sent = 0
        self.questions = 0

    def forget(self) -> None:
        """The model no longer has the last frame (a new conversation): send the next one."""
        with self._lock:
            self._sent = None

    def select(self, t_question: float | None = None) -> Keyframe:
        """The keyframe for a question that began at monotonic ``t_question`` (now if None).

        Never returns a frame captured before the question; waits up to
        ``config.wait_s`` for one, and returns ``Keyframe(frame=None, ...)`` if none
        comes (the camera is stalled or ended).
        """
        start = self._clock()
        t_q = start if t_question is None else t_question
        candidates = self.ring.since(t_q)
        if not candidates and self.ring.wait_newer(t_q, self.config.wait_s):
            candidates = self.ring.since(t_q)
        waited = max(0.0, self._clock() - start)
        with self._lock:
            self.questions += 1
            if not candidates:
                return Keyframe(None, None, False, waited)
            best = choose_sharpest(candidates)
            unchanged = self._sent is not None and same_scene(
                self._sent, best.analysis, self.config
            )
            if not unchanged:
                self._sent = best.analysis
                self.images_sent += 1
            return Keyframe(best.frame, best.analysis, unchanged, waited)


def choose_sharpest(candidates: list[AnalysedFrame]) -> AnalysedFrame:
    """The newest of the frames nearly as sharp as the sharpest (candidates oldest first)."""
    top = max(item.analysis.sharpness for item in candidates)
    return [item for item in candidates if item.analysis.sharpness >= NEAR_SHARPEST * top][-1]


class CameraKeyframes:
    """A session's camera path in one object: the analysis thread and the selector.

    ``Session(..., get_keyframe=keyframes.get)``; the question's start time comes
    from the turn (the utterance's start of speech).
    """

    def __init__(self, source: FrameFeed, config: KeyframeConfig | None = None) -> None:
        self.tracker = KeyframeTracker(source, config)
        self.selector = KeyframeSelector(self.tracker.ring, self.tracker.config)

    def start(self) -> CameraKeyframes:
        self.tracker.start()
        return self

    def stop(self) -> None:
        self.tracker.stop()

    async def get(self, t_question: float | None) -> Keyframe:
        """The keyframe for a question begun at ``t_question``, off the event loop."""
        return await asyncio.to_thread(self.selector.select, t_question)
