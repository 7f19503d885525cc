"""The camera through real boundaries: files OpenCV writes, and MJPEG over loopback HTTP."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from heron.agent.camera import VideoSource, describe_source, list_cameras, redact_source
from heron.agent.config import CameraConfig
from heron.agent.errors import CameraError
from heron.agent.events import VideoFrame
from tests.support.mjpeg import MJPEGServer

W, H = 64, 48
DIGITS = 3  # a counter up to 16**3 - 1, one hex digit per horizontal band


def counter_frame(n: int) -> np.ndarray:
    """A frame that carries ``n`` in flat bands that survive JPEG compression."""
    image = np.zeros((H, W, 3), np.uint8)
    band = H // DIGITS
    for i in range(DIGITS):
        digit = (n >> (4 * (DIGITS - 1 - i))) & 0xF
        image[i * band : (i + 1) * band] = digit * 16 + 8
    return image


def read_counter(image: np.ndarray) -> int:
    band = image.shape[0] // DIGITS
    n = 0
    for i in range(DIGITS):
        # Sample the middle of each band, away from JPEG ringing at the edges.
        level = float(image[i * band + band // 2, :, :].mean())
        n = (n << 4) | round((level - 8) / 16)
    return n


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class StatusLog:
    """Records on_status calls and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self._cond = threading.Condition()

    def __call__(self, status: str, message: str) -> None:
        with self._cond:
            self.events.append((status, message))
            self._cond.notify_all()

    def mark(self) -> int:
        """A position to wait from: take it *before* the action that changes the status."""
        with self._cond:
            return len(self.events)

    def wait_for(self, status: str, since: int = 0, timeout: float = 5.0) -> str | None:
        """The message of the first ``status`` event at or after position ``since``."""
        with self._cond:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [m for s, m in self.events[since:] if s == status]
                return bool(found)

            self._cond.wait_for(seen, timeout=timeout)
            return found[0] if found else None


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames at 30 fps, MJPG in AVI, frame i carrying counter i."""
    path = tmp_path_factory.mktemp("video") / "counter.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (W, H))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for i in range(30):
        writer.write(counter_frame(i))
    writer.release()
    return path


class CountingSource:
    """Frames for the MJPEG server, each carrying the next counter value."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self) -> np.ndarray:
        with self._lock:
            self.n += 1
            return counter_frame(self.n)


@pytest.fixture()
def server() -> Iterator[tuple[MJPEGServer, CountingSource]]:
    source = CountingSource()
    srv = MJPEGServer(source, fps=30).start()
    yield srv, source
    srv.stop()


def stream_config(url: str, **kw: object) -> CameraConfig:
    settings: dict[str, object] = {
        "source": url,
        "open_timeout_s": 2.0,
        "read_timeout_s": 1.0,
        "reconnect_max_s": 0.5,
    }
    settings.update(kw)
    return CameraConfig.model_validate(settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- describing sources ------------------------------------------------------------


def test_describe_source_kinds() -> None:
    assert describe_source("0") == "device"
    assert describe_source("/dev/video2") == "device"
    assert describe_source("clip.mp4") == "file"
    assert describe_source("photo.JPG") == "image"
    assert describe_source("http://cam.local/video.mjpg") == "url"
    assert describe_source("rtsp://10.0.0.2:554/stream") == "url"


def test_redact_source_removes_passwords() -> None:
    assert redact_source("rtsp://admin:hunter2@10.0.0.2/s") == "rtsp://admin@10.0.0.2/s"
    shown = redact_source("http://cam/video.cgi?user=a&pwd=hunter2")
    assert "hunter2" not in shown and "user=a" in shown
    assert redact_source("clip.mp4") == "clip.mp4"


def test_list_cameras_is_quick() -> None:
    t0 = time.monotonic()
    found = list_cameras()
    assert time.monotonic() - t0 < 3.0
    assert all(isinstance(i, int) for i in found)
    if not any(Path(f"/dev/video{i}").exists() for i in range(6)):
        assert found == []


# -- video files ---------------------------------------------------------------------


def test_video_file_paced(video_file: Path) -> None:
    frames: list[VideoFrame] = []
    with VideoSource(CameraConfig(source=str(video_file), realtime=True)) as cam:
        frame = cam.wait_for_frame(timeout=2.0)
        while frame is not None:
            frames.append(frame)
            frame = cam.wait_for_frame(after=frame.t_capture, timeout=2.0)
        assert cam.status == "ended"
        assert cam.frames_read == 30
    counters = [read_counter(f.image) for f in frames]
    # A consumer that keeps up sees (almost) every frame, in order, each once.
    assert len(frames) >= 25
    assert counters == sorted(set(counters))
    assert counters[-1] == 29
    times = [f.t_capture for f in frames]
    assert all(a < b for a, b in itertools.pairwise(times))
    # Paced at 30 fps on absolute deadlines: 29 frame periods from first to last.
    span = frames[-1].t_capture - frames[0].t_capture
    assert 0.85 < span < 1.3, span
    assert frames[-1].source == str(video_file)


def test_video_file_unpaced_keeps_only_latest(video_file: Path) -> None:
    cam = VideoSource(CameraConfig(source=str(video_file), realtime=False))
    t0 = time.monotonic()
    with cam:
        assert wait_until(lambda: cam.status == "ended", timeout=3.0)
    assert time.monotonic() - t0 < 1.0
    assert cam.frames_read == 30
    last = cam.latest()
    assert last is not None
    assert last.index == 29 and read_counter(last.image) == 29
    # Nothing newer will come: waiting returns at once instead of after the timeout.
    t1 = time.monotonic()
    assert cam.wait_for_frame(after=last.t_capture, timeout=3.0) is None
    assert time.monotonic() - t1 < 0.5


def test_video_file_loops(video_file: Path) -> None:
    cfg = CameraConfig(source=str(video_file), realtime=False, loop=True)
    seen: set[int] = set()
    with VideoSource(cfg) as cam:

        def looped() -> bool:
            frame = cam.latest()
            if frame is not None:
                seen.add(read_counter(frame.image))
            return cam.frames_read > 75

        assert wait_until(looped, timeout=5.0)
        assert cam.status == "live"
        last = cam.latest()
        assert last is not None and last.index >= 75
    assert cam.status == "ended"  # stopped


# -- still images ------------------------------------------------------------------


def test_still_image_is_a_static_camera(tmp_path: Path) -> None:
    path = tmp_path / "scene.png"
    assert cv2.imwrite(str(path), counter_frame(0x5A3))
    with VideoSource(CameraConfig(source=str(path))) as cam:
        first = cam.wait_for_frame(timeout=2.0)
        assert first is not None and read_counter(first.image) == 0x5A3
        assert cam.status == "live"
        # Re-served, so waiting for a frame newer than one in hand works as with a camera.
        again = cam.wait_for_frame(after=first.t_capture, timeout=2.0)
        assert again is not None and again.index > first.index
        assert np.array_equal(again.image, first.image)


# -- MJPEG over HTTP -----------------------------------------------------------------


def test_mjpeg_stream_delivers_fresh_frames(
    server: tuple[MJPEGServer, CountingSource],
) -> None:
    srv, source = server
    with VideoSource(stream_config(srv.url)) as cam:
        first = cam.wait_for_frame(timeout=5.0)
        assert first is not None, cam.last_error
        assert cam.status == "live"
        assert first.source == srv.url
        # The consumer looks away; the camera keeps draining the stream meanwhile.
        time.sleep(1.0)
        now = time.monotonic()
        frame = cam.latest()
        assert frame is not None
        assert now - frame.t_capture < 0.2
        # Recent content, not the frame that was next in the socket buffer.
        assert read_counter(frame.image) >= source.n - 3, (read_counter(frame.image), source.n)
        assert read_counter(frame.image) > read_counter(first.image) + 20
        following = cam.wait_for_frame(after=frame.t_capture, timeout=2.0)
        assert following is not None and following.t_capture > frame.t_capture
    assert srv.frames_served >= 30


def test_mjpeg_stream_reconnects(server: tuple[MJPEGServer, CountingSource]) -> None:
    srv, source = server
    statuses = StatusLog()
    cam = VideoSource(stream_config(srv.url), on_status=statuses)
    with cam:
        assert cam.wait_for_frame(timeout=5.0) is not None, cam.last_error
        assert cam.status == "live"

        mark = statuses.mark()
        srv.stop()
        lost = statuses.wait_for("reconnecting", since=mark)
        assert lost is not None and srv.url in lost and "reconnecting" in lost
        assert cam.status == "reconnecting"
        assert cam.last_error is not None and srv.url in cam.last_error

        dropped_at = time.monotonic()
        counter_at_drop = source.n
        mark = statuses.mark()
        srv.start()
        back = statuses.wait_for("live", since=mark)
        assert back is not None and "is back" in back and srv.url in back
        frame = cam.wait_for_frame(after=dropped_at, timeout=5.0)
        assert frame is not None
        assert read_counter(frame.image) > counter_at_drop
        assert cam.status == "live"


def test_stream_url_password_never_shown(server: tuple[MJPEGServer, CountingSource]) -> None:
    srv, _ = server
    url = srv.url.replace("http://", "http://viewer:hunter2@")
    with VideoSource(stream_config(url)) as cam:
        frame = cam.wait_for_frame(timeout=5.0)
        assert frame is not None, cam.last_error
        assert "hunter2" not in frame.source and "viewer@" in frame.source
        assert "hunter2" not in repr(cam)


# -- bad input -------------------------------------------------------------------------


def test_missing_video_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(CameraError, match=r"nope\.mp4"):
        VideoSource(CameraConfig(source=str(path))).start()


def test_corrupt_video_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.avi"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(CameraError, match=r"garbage\.avi"):
        VideoSource(CameraConfig(source=str(path))).start()


def test_corrupt_image_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(np.random.default_rng(2).bytes(2048))
    with pytest.raises(CameraError, match=r"broken\.jpg"):
        VideoSource(CameraConfig(source=str(path))).start()


def test_missing_image_file(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match=r"absent\.png"):
        VideoSource(CameraConfig(source=str(tmp_path / "absent.png"))).start()


def test_device_that_does_not_open() -> None:
    with pytest.raises(CameraError, match="99"):
        VideoSource(CameraConfig(source="99")).start()


def test_no_source_configured() -> None:
    with pytest.raises(CameraError):
        VideoSource(CameraConfig(source=None))


def test_url_where_nothing_listens() -> None:
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    statuses = StatusLog()
    t0 = time.monotonic()
    cam = VideoSource(stream_config(url), on_status=statuses).start()
    assert time.monotonic() - t0 < 0.5  # opening happens on the reader thread
    assert statuses.wait_for("reconnecting") is not None
    assert cam.status == "reconnecting"
    assert cam.last_error is not None and url in cam.last_error
    assert cam.latest() is None
    assert cam.wait_for_frame(timeout=0.3) is None
    t1 = time.monotonic()
    cam.stop()
    assert time.monotonic() - t1 < 1.0
    assert cam.status == "ended"


def test_stream_that_never_answers_times_out() -> None:
    # A socket that listens but never accepts: TCP connects, HTTP never answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/stream.mjpg"
        cfg = stream_config(url, open_timeout_s=0.5)
        cam = VideoSource(cfg).start()
        try:
            assert wait_until(lambda: cam.status == "reconnecting", timeout=3.0)
        finally:
            t1 = time.monotonic()
            cam.stop()
            assert time.monotonic() - t1 < 1.5
