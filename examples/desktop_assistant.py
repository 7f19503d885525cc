"""The desktop assistant: talk to heron in a window that shows what it sees and hears.

    python examples/desktop_assistant.py                    # webcam 0, default mic and speaker
    python examples/desktop_assistant.py --camera http://phone:8080/video \\
        --base-url http://localhost:11434/v1 --model llava
    python examples/desktop_assistant.py --mode push_to_talk         # space talks
    python examples/desktop_assistant.py --mode wake_phrase --wake-phrase heron

The window shows the camera image, heron's state as a coloured badge (listening,
hearing, thinking, speaking), what you are saying as you say it, the reply as it is
spoken, and the last turn's latency from the end of your speech to heron's first audio.

Keys, with the window focused: q or Esc quits. The talk key (space unless
--talk-key or HERON_LISTEN_PUSH_TO_TALK_KEY says otherwise) TOGGLES talking: press it
once, speak, press it again, and the utterance ends at that moment. It toggles
rather than being held because OpenCV's windows report key presses but never key
releases, and the key repeat of a held key starts too late to tell a hold from a tap.

Without a display (no DISPLAY / WAYLAND_DISPLAY, or no window can be opened) it
runs headless and says so: states and captions are printed, Enter toggles talking
and q then Enter quits. --screenshot saves the window's picture (after
--screenshot-after seconds and on exit), with or without a display.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from heron.agent.camera import VideoSource
from heron.agent.config import Settings, load_settings
from heron.agent.errors import CameraError, HeronError
from heron.agent.live_events import (
    Notice,
    ReplyText,
    StateChanged,
    TurnLatency,
    UserTurn,
)
from heron.agent.live_thread import Ended, LiveThread, Report, Said
from heron.agent.overlay import (
    NOTICE_S,
    ViewState,
    apply_event,
    latency_caption,
    render_overlay,
)
from heron.agent.turn_modes import TurnPolicy

TITLE = "heron"
FRAME_MS = 30
"""The window redraws (and polls the keyboard) this often."""
KEY_CODES = {"space": 32, "enter": 13, "tab": 9, "backspace": 8}
QUIT_KEYS = {ord("q"), ord("Q"), 27}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", help="device index, video or image file, or URL")
    parser.add_argument("--no-camera", action="store_true", help="listen and answer only")
    parser.add_argument("--mic", help="input device name or index")
    parser.add_argument("--speaker", help="output device name or index")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint; offline without")
    parser.add_argument("--model", help="model name at that endpoint")
    parser.add_argument("--offline", action="store_true", help="local tools only")
    parser.add_argument("--mode", choices=["always", "push_to_talk", "wake_phrase"])
    parser.add_argument("--wake-phrase", help='the name to say first (default "heron")')
    parser.add_argument("--talk-key", help='push-to-talk key: "space", "enter" or a letter')
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--max-turns", type=int, metavar="N", help="stop after N turns")
    parser.add_argument("--headless", action="store_true", help="no window even with a display")
    parser.add_argument("--screenshot", type=Path, metavar="PNG", help="save the window's picture")
    parser.add_argument("--screenshot-after", type=float, default=None, metavar="S")
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> Settings:
    """The usual settings (HERON_*, heron.toml) with this command line on top."""

    def device(value: str) -> str | int:
        return int(value) if value.isdigit() else value

    overrides: dict[str, dict[str, Any]] = {}
    for section, key, value in [
        ("vlm", "base_url", args.base_url),
        ("vlm", "model", args.model),
        ("camera", "source", args.camera),
        ("microphone", "device", device(args.mic) if args.mic else None),
        ("speaker", "device", device(args.speaker) if args.speaker else None),
        ("listen", "mode", args.mode),
        ("listen", "wake_phrase", args.wake_phrase),
        ("listen", "push_to_talk_key", args.talk_key),
    ]:
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    if args.no_camera:
        overrides.setdefault("camera", {})["source"] = None
    settings = load_settings(**overrides)
    return settings.without_model() if args.offline else settings


def key_code(name: str) -> int:
    """What ``cv2.waitKey`` returns for the key called ``name``."""
    if name.lower() in KEY_CODES:
        return KEY_CODES[name.lower()]
    if len(name) == 1:
        return ord(name.lower())
    raise HeronError(f'unknown talk key {name!r}: use "space", "enter", "tab" or one character')


def no_display_reason() -> str | None:
    """Why no window can be shown here, or None when one can.

    The window is tried in a child process: OpenCV's Qt backend aborts the whole
    process when it cannot reach the display, instead of raising.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "the display did not answer"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["?"])[-1]
        return f"no window can be opened ({last})"
    return None


class Terminal:
    """Prints what the session reports: its messages, its states and the captions."""

    def __init__(self, name: str) -> None:
        # the session also says each turn; its events carry the same, so these are skipped
        self.captions = ("you: ", f"{name}: ", f"{name} (", "  (")
        self.name = name
        self.said: deque[str] = deque(maxlen=8)  # a notice may also have been said

    def show(self, report: Report) -> None:
        if isinstance(report, Said):
            self.said.append(report.text)
            if not report.text.startswith(self.captions):
                print(report.text, flush=True)
        elif isinstance(report, StateChanged):
            print(f"[{report.state}]", flush=True)
        elif isinstance(report, UserTurn):
            print(f"you: {report.text}", flush=True)
        elif isinstance(report, ReplyText) and report.final:
            cut = " [interrupted]" if report.interrupted else ""
            print(f"{self.name}: {report.text}{cut}", flush=True)
        elif isinstance(report, TurnLatency):
            print(f"  ({latency_caption(report.stages_ms)})", flush=True)
        elif isinstance(report, Notice) and report.text not in self.said:
            print(f"notice: {report.text}", flush=True)
        elif isinstance(report, Ended) and report.error:
            print(f"heron: {report.error}", file=sys.stderr, flush=True)


class App:
    """The view of one session: folds its reports into a :class:`ViewState`."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.settings = settings
        self.args = args
        self.policy = TurnPolicy(settings.listen)  # checks the mode's settings early
        push = settings.listen.mode == "push_to_talk"
        self.talk_key = key_code(settings.listen.push_to_talk_key) if push else None
        self.view = ViewState(
            mode=self.policy.describe(),
            talk_key=settings.listen.push_to_talk_key if push else None,
            assistant_name=settings.assistant_name,
        )
        # one camera for the window and for heron: a webcam can be opened only once
        self.camera = self._open_camera()
        self.live = LiveThread(
            settings, duration_s=args.duration, max_turns=args.max_turns, camera=self.camera
        )
        self.terminal = Terminal(settings.assistant_name)
        self.code: int | None = None
        self.started = time.monotonic()
        self.shot_taken = False
        self._picture: np.ndarray | None = None
        self._picture_key: tuple[Any, ...] = ()

    def _open_camera(self) -> VideoSource | None:
        source = self.settings.camera.source
        if source is None:
            return None
        try:
            return VideoSource(self.settings.camera).start()
        except CameraError as exc:
            print(f"window: {exc}; the window shows no picture", flush=True)
            return None

    def pump(self, timeout: float = 0.0) -> None:
        """Take every waiting report (waiting up to ``timeout`` for the first)."""
        while self.code is None:
            try:
                report = self.live.reports.get(timeout=timeout)
            except queue.Empty:
                return
            timeout = 0.0
            self.terminal.show(report)
            if isinstance(report, Ended):
                self.code = report.code
                self.view = apply_event(self.view, StateChanged("stopped"))
            elif not isinstance(report, Said):
                self.view = apply_event(self.view, report, time.monotonic())

    def wait_for_end(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.code is None and time.monotonic() < deadline:
            self.pump(timeout=min(0.2, max(0.0, deadline - time.monotonic())))

    def picture(self) -> np.ndarray:
        """The window's picture; drawn again only when the frame or the view changed."""
        frame = self.camera.latest() if self.camera is not None else None
        view = dataclasses.replace(self.view, talk_pressed=self.live.controls.talk_pressed)
        now = time.monotonic()
        key = (None if frame is None else frame.index, view, now - view.notice_at <= NOTICE_S)
        if self._picture is None or key != self._picture_key:
            self._picture = render_overlay(None if frame is None else frame.image, view, now)
            self._picture_key = key
        return self._picture

    def key(self, code: int) -> None:
        """A key pressed in the window (or typed in the terminal)."""
        if code in QUIT_KEYS:
            print("stopping…", flush=True)
            self.live.controls.stop()
        elif self.talk_key is not None and code == self.talk_key:
            self.live.controls.push_to_talk(not self.live.controls.talk_pressed)

    def maybe_screenshot(self, final: bool = False) -> None:
        path, after = self.args.screenshot, self.args.screenshot_after
        if path is None:
            return
        due = after is not None and time.monotonic() - self.started >= after
        if final or (due and not self.shot_taken):
            self.shot_taken = True
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), self.picture())

    def close(self) -> int:
        self.maybe_screenshot(final=True)
        if self.camera is not None:
            self.camera.stop()
        return 0 if self.code is None else self.code


def run_window(app: App) -> int:
    # GUI_NORMAL: no toolbar or status bar (Qt builds), just the picture
    cv2.namedWindow(TITLE, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    try:
        # the window first: the session's start (loading models) takes a few seconds
        cv2.imshow(TITLE, app.picture())
        cv2.waitKey(1)
        app.live.start()
        while app.code is None:
            app.pump()
            cv2.imshow(TITLE, app.picture())
            code = cv2.waitKey(FRAME_MS)
            if code != -1:
                app.key(code & 0xFF)
            if app.live.controls.stop_requested or not _window_open():
                app.live.stop()
                app.wait_for_end(timeout=10.0)
                break
            app.maybe_screenshot()
        cv2.imshow(TITLE, app.picture())
        cv2.waitKey(1)
    finally:
        cv2.destroyAllWindows()
    return app.close()


def _window_open() -> bool:
    try:
        return cv2.getWindowProperty(TITLE, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:
        return False


def run_headless(app: App) -> int:
    def read_keys() -> None:  # Enter toggles talking; q then Enter quits
        for line in sys.stdin:
            if line.strip().lower() in ("q", "quit"):
                app.key(ord("q"))
            elif app.talk_key is not None:
                app.key(app.talk_key)

    if sys.stdin is not None and sys.stdin.isatty():
        threading.Thread(target=read_keys, name="heron-keys", daemon=True).start()
    app.live.start()
    while app.code is None:
        app.pump(timeout=0.2)
        if app.live.controls.stop_requested:
            app.live.stop()
            app.wait_for_end(timeout=10.0)
            break
        app.maybe_screenshot()
    return app.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = build_settings(args)
        app = App(settings, args)
    except HeronError as exc:
        print(f"heron: {exc}", file=sys.stderr)
        return 2
    reason = "--headless was given" if args.headless else no_display_reason()
    if reason:
        print(f"running headless: {reason}; states and captions are printed here", flush=True)
    try:
        return run_headless(app) if reason else run_window(app)
    except KeyboardInterrupt:
        app.live.stop()
        app.wait_for_end(timeout=10.0)
        return app.close()


if __name__ == "__main__":
    sys.exit(main())
