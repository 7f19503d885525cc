"""The camera on an RTSP stream, as IP cameras serve it.

An RTSP server on loopback (aio-rtsp-toolkit's ``rtsp-server``, which streams the
H.264 files of a folder over RTSP/RTP) plays a clip the test encodes with PyAV;
heron's VideoSource opens the ``rtsp://`` URL through OpenCV and FFmpeg, loses the
stream when the server is killed, and is back when it restarts on the same port.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from heron.agent.camera import VideoSource
from heron.agent.config import CameraConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_clip(path: Path, frames: int = 45) -> None:
    """An H.264 clip whose frames get brighter: grey level 40 + 4 per frame."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(frames):
            image = np.full((240, 320, 3), 40 + 4 * index, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


class RTSPServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.control_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RTSPServer:
        argv = ["rtsp-server", "-d", str(self.folder), "-H", "127.0.0.1",
                "-p", str(self.port), "-cp", str(self.control_port)]  # fmt: skip
        code = f"import sys; sys.argv = {argv!r}; from server_demo import main; main()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("the RTSP server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"


@pytest.fixture()
def rtsp(tmp_path: Path) -> Iterator[RTSPServer]:
    write_clip(tmp_path / "clip.mp4")
    server = RTSPServer(tmp_path).start()
    yield server
    server.stop()


def wait_until(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_rtsp_stream_frames_arrive_fresh(rtsp: RTSPServer) -> None:
    config = CameraConfig(source=rtsp.url("clip.mp4"), open_timeout_s=5, read_timeout_s=3)
    with VideoSource(config) as camera:
        first = camera.wait_for_frame(timeout=15)
        assert first is not None, camera.last_error
        assert first.image.shape == (240, 320, 3)
        assert camera.status == "live"
        later = camera.wait_for_frame(after=first.t_capture + 0.5, timeout=10)
        assert later is not None and later.index > first.index
        assert "rtsp://127.0.0.1" in later.source


def test_rtsp_stream_reconnects_after_the_server_restarts(rtsp: RTSPServer) -> None:
    statuses: list[tuple[str, str]] = []
    config = CameraConfig(
        source=rtsp.url("clip.mp4"), open_timeout_s=3, read_timeout_s=2, reconnect_max_s=1
    )
    camera = VideoSource(config, on_status=lambda s, m: statuses.append((s, m))).start()
    try:
        assert camera.wait_for_frame(timeout=15) is not None
        rtsp.stop()
        assert wait_until(lambda: camera.status == "reconnecting", 15), statuses
        rtsp.start()
        assert wait_until(lambda: camera.status == "live", 30), statuses
        back = camera.wait_for_frame(after=time.monotonic(), timeout=10)
        assert back is not None
    finally:
        camera.stop()
    assert any(status == "reconnecting" and "rtsp://" in message for status, message in statuses)
