"""An MJPEG-over-HTTP server on loopback, standing in for an IP camera in tests.

It speaks what cheap IP cameras and ``mjpg-streamer`` speak: one long HTTP
response of type ``multipart/x-mixed-replace`` whose parts are JPEG images.
``stop()`` closes the open connections too, so a client really sees the stream
drop (a plain ``shutdown()`` would leave streaming handlers running), and the
server can be started again on the same port to test reconnecting.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "frame"


class _Server(ThreadingHTTPServer):
    # Restarting on the same port right after stop() must not fail on TIME_WAIT.
    allow_reuse_address = True
    daemon_threads = True

    def __init__(
        self, owner: MJPEGServer, address: tuple[str, int], stopping: threading.Event
    ) -> None:
        self.owner = owner
        self.stopping = stopping
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        # Quiet: a test run should not print a line per request.
        return

    def do_GET(self) -> None:
        owner = self.server.owner
        stopping = self.server.stopping
        owner._track(self.connection)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache, no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            period = 1.0 / owner.fps
            deadline = time.monotonic()
            while not stopping.is_set():
                ok, jpeg = cv2.imencode(".jpg", owner.frame_source())
                if not ok:
                    raise RuntimeError("could not encode a test frame as JPEG")
                data = jpeg.tobytes()
                head = (
                    f"--{BOUNDARY}\r\n"
                    "Content-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode("ascii")
                self.wfile.write(head + data + b"\r\n")
                self.wfile.flush()
                owner._count()
                # Absolute deadlines keep the rate steady however long encoding took.
                deadline += period
                stopping.wait(max(0.0, deadline - time.monotonic()))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client went away, or stop() closed the socket under us
        finally:
            owner._untrack(self.connection)


class MJPEGServer:
    """Serve ``frame_source()`` (BGR images) as an MJPEG stream at ``fps``."""

    def __init__(
        self, frame_source: Callable[[], np.ndarray], *, port: int = 0, fps: float = 15
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.frame_source = frame_source
        self.fps = fps
        self._port = port
        self._lock = threading.Lock()
        self._frames_served = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        if self._port == 0:
            raise RuntimeError("the server has no port until start() is called")
        return f"http://127.0.0.1:{self._port}/stream.mjpg"

    @property
    def frames_served(self) -> int:
        with self._lock:
            return self._frames_served

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def start(self) -> MJPEGServer:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        # A fresh event per run: handlers of the previous run keep the one that stopped them.
        self._stopping = threading.Event()
        server = _Server(self, ("127.0.0.1", self._port), self._stopping)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MJPEGServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def _count(self) -> None:
        with self._lock:
            self._frames_served += 1
