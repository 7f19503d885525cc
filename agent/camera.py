"""The camera: the latest frame from a device, a video or image file, or a stream.

An agent that answers questions about what it sees needs *the frame of now*,
not the oldest one in a buffer. Capture libraries queue frames (OpenCV, FFmpeg,
the kernel's TCP buffer for a network stream), so a consumer that reads only
when it needs a picture gets one from seconds ago. :class:`VideoSource` reads
continuously on its own daemon thread and keeps only the newest frame, stamped
with the monotonic time it arrived; callers take it with :meth:`~VideoSource.latest`
or wait for a fresh one with :meth:`~VideoSource.wait_for_frame`, never blocking
on the capture itself.

Live sources fail in ordinary ways: Wi-Fi cameras drop, RTSP servers restart.
Streams and devices therefore reconnect with exponential backoff and report each
change of :attr:`~VideoSource.status` through ``on_status``, so a session can say
"camera stream lost, reconnecting" instead of going silently blind. What cannot
work at all (a missing file, a corrupt image, a device that will not open) is a
:class:`~heron.agent.errors.CameraError` from :meth:`~VideoSource.start`.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# FFmpeg and OpenCV print every failed connection attempt to stderr; heron reports
# the camera's state itself. Set before the first capture opens; users may override.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2
import numpy as np

from .config import CameraConfig
from .errors import CameraError
from .events import VideoFrame

log = logging.getLogger(__name__)

Status = Literal["connecting", "live", "reconnecting", "ended", "failed"]
SourceKind = Literal["device", "file", "image", "url"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_DEVICE_PATH_RE = re.compile(r"^/dev/video(\d+)$")
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "pass", "token", "key", "auth"})
_BACKOFF_START_S = 0.5
_STILL_FPS = 10.0
"""A still image is re-served at this rate so waiting for a fresh frame works as live."""
_FALLBACK_FPS = 30.0
_MAX_LATENESS_S = 1.0
"""A paced file this far behind its deadlines re-anchors instead of bursting to catch up."""
_JOIN_TIMEOUT_S = 1.0
"""stop() waits this long; a read blocked in FFmpeg finishes on the daemon thread later."""


def describe_source(spec: str) -> SourceKind:
    """What kind of source ``spec`` names: "device", "file", "image" or "url"."""
    spec = spec.strip()
    if spec.isdigit() or _DEVICE_PATH_RE.match(spec):
        return "device"
    if _URL_RE.match(spec):
        return "url"
    if Path(spec).suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "file"


def redact_source(spec: str) -> str:
    """``spec`` fit for logs and frames: a URL loses its password and secret query values."""
    spec = spec.strip()
    if not _URL_RE.match(spec):
        return spec
    parts = urlsplit(spec)
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{parts.username}@{host}" if parts.username else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
            hidden = [(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs]
            query = urlencode(hidden, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def list_cameras(max_index: int = 5) -> list[int]:
    """Indices 0..``max_index`` (inclusive) of capture devices that open.

    On Linux only indices with a ``/dev/video<N>`` node are tried, so a machine
    without cameras answers at once instead of waiting on each backend.
    """
    found: list[int] = []
    linux = sys.platform.startswith("linux")
    for index in range(max_index + 1):
        if linux and not Path(f"/dev/video{index}").exists():
            continue
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
        try:
            if cap.isOpened():
                found.append(index)
        finally:
            cap.release()
    return found


class VideoSource:
    """Frames from one source, read on a daemon thread; only the newest is kept.

    ``with VideoSource(config) as cam:`` starts and stops it. ``on_status`` is
    called with ``(status, message)`` on every change of :attr:`status`, from the
    reader thread; it must be quick and must not call :meth:`stop`.
    """

    def __init__(
        self,
        config: CameraConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_status: Callable[[str, str], None] | None = None,
    ) -> None:
        if config.source is None:
            raise CameraError("no camera source configured (camera.source is empty)")
        self.config = config
        self.spec = config.source.strip()
        self.kind: SourceKind = describe_source(self.spec)
        self.display = redact_source(self.spec)
        """The source as shown in logs, messages and frames (no passwords)."""
        self.on_status = on_status
        self._clock = clock
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: VideoFrame | None = None
        self._frames_read = 0
        self._finished = False
        self._status: Status = "connecting"
        self._last_error: str | None = None

    # -- public API ------------------------------------------------------------

    @property
    def status(self) -> Status:
        with self._cond:
            return self._status

    @property
    def last_error(self) -> str | None:
        with self._cond:
            return self._last_error

    @property
    def frames_read(self) -> int:
        with self._cond:
            return self._frames_read

    def start(self) -> VideoSource:
        """Open the source and start reading; raises CameraError when it cannot work."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        with self._cond:
            self._finished = False
        run: Callable[[], None]
        if self.kind == "image":
            image = self._load_image()
            self._set_status("live", f"camera shows the still image {self.display}")
            run = partial(self._run_image, image)
        elif self.kind == "file":
            cap, first = self._open_file()
            self._set_status("live", f"camera plays the video file {self.display}")
            self._publish(first)
            run = partial(self._run_file, cap)
        elif self.kind == "device":
            dev = self._open_capture()
            if dev is None:
                raise CameraError(
                    f"cannot open camera device {self.display} "
                    "(is it connected, and free? `heron devices` lists the ones that open)"
                )
            self._set_status("live", f"camera device {self.display} is live")
            run = partial(self._run_stream, dev)
        else:
            self._set_status("connecting", f"connecting to camera stream {self.display}")
            run = partial(self._run_stream, None)
        self._thread = threading.Thread(
            target=self._guard, args=(run,), name=f"camera {self.display}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading; returns within about a second even if a read is blocked."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.debug("camera %s: a blocked read finishes in the background", self.display)
        if self.status not in ("ended", "failed"):
            self._set_status("ended", f"camera {self.display} stopped", force=True)
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def latest(self) -> VideoFrame | None:
        """The newest frame, or None before the first one; never blocks on the capture."""
        with self._cond:
            return self._latest

    def wait_for_frame(self, after: float | None = None, timeout: float = 5.0) -> VideoFrame | None:
        """The newest frame captured after monotonic time ``after`` (any frame if None).

        Returns None when none arrives within ``timeout`` seconds, or when the
        source has ended and its last frame is not new enough.
        """

        def fresh() -> bool:
            frame = self._latest
            return frame is not None and (after is None or frame.t_capture > after)

        with self._cond:
            self._cond.wait_for(lambda: fresh() or self._finished, timeout=timeout)
            return self._latest if fresh() else None

    def __enter__(self) -> VideoSource:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"VideoSource({self.display!r}, kind={self.kind}, status={self.status})"

    # -- opening ---------------------------------------------------------------

    def _load_image(self) -> np.ndarray:
        path = Path(self.spec).expanduser()
        if not path.is_file():
            raise CameraError(f"image file not found: {path}")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or image.size == 0:
            raise CameraError(f"cannot read image file {path} (corrupt or not an image)")
        return image

    def _open_file(self) -> tuple[cv2.VideoCapture, np.ndarray]:
        path = Path(self.spec).expanduser()
        if not path.is_file():
            raise CameraError(f"video file not found: {path}")
        cap = cv2.VideoCapture(str(path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            cap.release()
            raise CameraError(f"cannot read video file {path} (corrupt, empty or unknown format)")
        return cap, first

    def _open_capture(self) -> cv2.VideoCapture | None:
        """Open a device or stream; None when it does not open (no exception: we retry)."""
        cfg = self.config
        if self.kind == "url":
            ms = int(cfg.open_timeout_s * 1000), int(cfg.read_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms[0], cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms[1]]
            # The timeouts keep a dead stream from blocking the reader thread forever.
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        else:
            match = _DEVICE_PATH_RE.match(self.spec)
            cap = cv2.VideoCapture(int(match.group(1) if match else self.spec))
            if cap.isOpened():
                if cfg.width:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
                if cfg.height:
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    # -- reader threads ----------------------------------------------------------

    def _guard(self, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception as exc:  # the thread must end with a status, not silently
            log.exception("camera %s failed", self.display)
            self._set_status("failed", f"camera {self.display} failed: {exc}", error=True)
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _run_image(self, image: np.ndarray) -> None:
        while True:
            # A copy per frame: consumers may draw on their frame.
            self._publish(image.copy())
            if self._stop.wait(1.0 / _STILL_FPS):
                return

    def _run_file(self, cap: cv2.VideoCapture) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not 0 < fps <= 1000:
            fps = _FALLBACK_FPS
        period = 1.0 / fps
        # Absolute deadlines (anchor + n * period) so sleep overshoot never accumulates.
        anchor = time.monotonic()
        n = 1  # the first frame was published by start()
        try:
            while not self._stop.is_set():
                if self.config.realtime:
                    wait = anchor + n * period - time.monotonic()
                    if wait > 0:
                        if self._stop.wait(wait):
                            return
                    elif wait < -_MAX_LATENESS_S:
                        anchor = time.monotonic() - n * period
                ok, image = cap.read()
                if not ok and self.config.loop:
                    # Reopening is more reliable than seeking to 0 across codecs.
                    cap.release()
                    cap = cv2.VideoCapture(str(Path(self.spec).expanduser()))
                    ok, image = cap.read()
                if not ok or image is None:
                    self._set_status("ended", f"video file {self.display} ended")
                    return
                self._publish(image)
                n += 1
        finally:
            cap.release()

    def _run_stream(self, cap: cv2.VideoCapture | None) -> None:
        what = "camera stream" if self.kind == "url" else "camera device"
        delay = _BACKOFF_START_S
        was_live = cap is not None
        try:
            while not self._stop.is_set():
                if cap is None:
                    cap = self._open_capture()
                if cap is not None:
                    ok, image = cap.read()
                    if ok and image is not None:
                        if self.status != "live":
                            note = "is back" if was_live else "is live"
                            self._set_status("live", f"{what} {self.display} {note}")
                        was_live = True
                        delay = _BACKOFF_START_S
                        self._publish(image)
                        continue
                    cap.release()
                    cap = None
                if was_live:
                    msg = f"{what} {self.display} lost; reconnecting in {delay:.1f} s"
                else:
                    msg = f"{what} {self.display} cannot be opened; retrying in {delay:.1f} s"
                self._set_status("reconnecting", msg, error=True)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.config.reconnect_max_s)
        finally:
            if cap is not None:
                cap.release()

    # -- shared state ------------------------------------------------------------

    def _publish(self, image: np.ndarray) -> None:
        t_capture = self._clock()
        with self._cond:
            self._latest = VideoFrame(
                image,
                t_capture=t_capture,
                wall_time=time.time(),
                index=self._frames_read,
                source=self.display,
            )
            self._frames_read += 1
            self._cond.notify_all()

    def _set_status(
        self, status: Status, message: str, *, error: bool = False, force: bool = False
    ) -> None:
        with self._cond:
            # After stop() the reader may still finish a blocked read; it must not
            # report "reconnecting" about a camera that was closed on purpose.
            if self._stop.is_set() and not force:
                return
            changed = status != self._status
            self._status = status
            if error:
                self._last_error = message
            self._cond.notify_all()
        if error:
            log.warning("%s", message)
        elif changed:
            log.info("%s", message)
        if changed and self.on_status is not None:
            try:
                self.on_status(status, message)
            except Exception:
                log.exception("camera on_status callback failed")
