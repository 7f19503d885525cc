"""The desktop assistant example on real parts: an X display (Xvfb), the virtual
microphone and speaker (PulseAudio), a camera image file, offline answers (OCR).

A spoken question is played into the virtual microphone; the test photographs the
real X display, finds the camera picture in it, reads the badge and captions back
with OCR, then quits with the q key pressed through the X server (XTest).
"""

from __future__ import annotations

import importlib.util
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from heron.agent.live_events import (
    Notice,
    PartialTranscript,
    ReplyText,
    StateChanged,
    TurnLatency,
    UserTurn,
)
from heron.agent.live_thread import Ended, Said
from heron.agent.overlay import STATE_COLORS
from heron.memory.session_log import read_session_log
from heron.tools.ocr import TextReader
from tests.conftest import REPO, need
from tests.support.pulse import VirtualAudio
from tests.support.render import render_text_image
from tests.test_live import QUESTION, Running

EXAMPLE = REPO / "examples" / "desktop_assistant.py"
SIGN_TEXT = "NO PARKING AT ANY TIME"
STATES = ("STARTING", "LISTENING", "HEARING", "THINKING", "SPEAKING", "STOPPED")


def camera_picture() -> np.ndarray:
    """A photograph with a sign across it: the sign for OCR, the photo to find on screen."""
    import skimage.data

    photo = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    picture = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
    sign = render_text_image([SIGN_TEXT], size=(600, 110), scale=1.2, thickness=3)
    picture[200:310, 20:620] = sign
    return picture


# the part of the picture no overlay covers: below the badges, above the sign
PATCH = (slice(120, 195), slice(180, 460))


@pytest.fixture()
def camera_file(tmp_path: Path) -> Path:
    path = tmp_path / "camera.png"
    cv2.imwrite(str(path), camera_picture())
    return path


@pytest.fixture()
def xvfb() -> Iterator[str]:
    """A virtual X display of its own; yields its name (":N")."""
    if shutil.which("Xvfb") is None:
        need("Xvfb is not installed (Debian: apt-get install xvfb)")
    # a random high number: low ones (:0, :99) are the ones other X servers take
    for number in random.sample(range(1000, 30000), 5):
        read_end, write_end = os.pipe()
        server = subprocess.Popen(
            ["Xvfb", f":{number}", "-displayfd", str(write_end), "-screen", "0", "1024x768x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=[write_end],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(write_end)
        # the number once it listens, b"" if it failed; the pipe stays open while the server
        # runs, since a server that resets writes the number again (and dies if it cannot)
        started = os.read(read_end, 64).strip()
        if started:
            break
        os.close(read_end)
        server.wait(timeout=10)
    else:
        pytest.fail("Xvfb did not start on any of five display numbers")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        os.close(read_end)


def assistant(audio: VirtualAudio, camera: Path, *options: str) -> list[str]:
    return [
        sys.executable, str(EXAMPLE), "--camera", str(camera), "--offline",
        "--mic", audio.device, "--speaker", audio.device, *options,
    ]  # fmt: skip


def grab_screen(display: str) -> np.ndarray:
    """The whole X display as BGR, as a person would see it."""
    from PIL import ImageGrab, features

    if not features.check("xcb"):
        need("this Pillow was built without XCB, so it cannot capture an X display")
    for _ in range(10):
        try:
            grabbed = ImageGrab.grab(xdisplay=display)
            break
        except OSError:  # Xvfb now and then refuses a connection just after another closed
            time.sleep(0.2)
    else:
        grabbed = ImageGrab.grab(xdisplay=display)
    return cv2.cvtColor(np.asarray(grabbed), cv2.COLOR_RGB2BGR)


def press_key(display: str, key: str, at: tuple[int, int]) -> None:
    """Move the pointer to ``at`` and press ``key`` through XTest, as a keyboard does."""
    try:
        from Xlib import XK, X
        from Xlib import display as xdisplay
        from Xlib.ext import xtest
    except ImportError:
        need("python-xlib is not installed (the test extra has it)")
    screen = xdisplay.Display(display)
    try:
        xtest.fake_input(screen, X.MotionNotify, x=at[0], y=at[1])
        keycode = screen.keysym_to_keycode(XK.string_to_keysym(key))
        xtest.fake_input(screen, X.KeyPress, keycode)
        xtest.fake_input(screen, X.KeyRelease, keycode)
        screen.sync()
    finally:
        screen.close()


def read_text(image: np.ndarray) -> list[str]:
    return [line.text for line in TextReader().read(image).lines]


def find_window(display: str, timeout: float = 10.0) -> tuple[int, int, float]:
    """Where the window's top-left corner is on the screen: where the camera picture is."""
    patch = camera_picture()[PATCH]
    deadline = time.monotonic() + timeout
    while True:
        scores = cv2.matchTemplate(grab_screen(display), patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if best > 0.95 or time.monotonic() > deadline:
            return x - PATCH[1].start, y - PATCH[0].start, best
        time.sleep(0.3)


def wait_for_log(home: Path, kind: str, timeout: float) -> dict[str, Any]:
    """The first record of ``kind`` in the session log, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in (home / "heron-data" / "sessions").glob("*/log.jsonl"):
            for record in read_session_log(log):
                if record["kind"] == kind:
                    return record
        time.sleep(0.2)
    raise AssertionError(f"no {kind!r} record in the session log after {timeout} s")


def test_the_window_shows_the_camera_state_and_captions_and_takes_keys(
    virtual_audio: VirtualAudio, xvfb: str, camera_file: Path, heron_env: Path
) -> None:
    saved = heron_env / "window.png"
    options = ["--mode", "push_to_talk", "--duration", "120", "--screenshot", str(saved)]
    app = Running(
        assistant(virtual_audio, camera_file, *options),
        {"DISPLAY": xvfb, "QT_QPA_FONTDIR": "/usr/share/fonts/truetype/dejavu"},
    )
    try:
        app.wait_for(r"^listening \(session", timeout=120)
        left, top, best = find_window(xvfb, timeout=30)
        assert best > 0.95, f"the camera picture is not on the screen (best match {best:.2f})"
        middle = (left + 320, top + 240)
        # push-to-talk: a question with the talk key up is not a turn…
        virtual_audio.play(QUESTION).wait(timeout=30)
        assert wait_for_log(heron_env, "ignored", timeout=60)["reason"] == "outside push-to-talk"
        # …with the key toggled down, it is
        press_key(xvfb, "space", middle)
        virtual_audio.play(QUESTION).wait(timeout=30)
        time.sleep(0.5)
        press_key(xvfb, "space", middle)
        app.wait_for(r"^you: .*(read|sign)", timeout=60)
        app.wait_for(r"^heron: ", timeout=60)
        app.wait_for(r"end of speech", timeout=30)
        time.sleep(0.5)  # a frame or two for the window to draw the last caption
        screen = grab_screen(xvfb)
        press_key(xvfb, "q", middle)
        code = app.finish(timeout=30)
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
    output = app.rest()

    window = screen[top : top + 480, left : left + 640]
    lines = read_text(window)
    text = " | ".join(lines)
    badge = [line.strip().lower() for line in lines if line.strip().upper() in STATES]
    assert badge, f"no state badge in {text}"
    # the badge is drawn in its state's colour, at the top left of the window
    assert tuple(int(v) for v in window[16, 16]) == STATE_COLORS[badge[0]], badge
    assert any("pressspacetotalk" in line.replace(" ", "") for line in lines), text
    assert any("you:" in line.lower() and "sign" in line.lower() for line in lines), text
    assert any(line.lower().startswith("heron:") and SIGN_TEXT in line.upper() for line in lines)
    assert any(re.search(r"firstaudio\d+ms", line.replace(" ", "")) for line in lines), text
    # one turn only, the one asked with the key down
    assert len([line for line in output if line.startswith("you: ")]) == 1, output
    # q quit the session cleanly, and the picture was saved on the way out
    assert code == 0, "\n".join(output)
    assert "stopping…" in output, "\n".join(output)
    assert any("saved; resume it with" in line for line in output), "\n".join(output)
    picture = cv2.imread(str(saved))
    assert picture is not None and picture.shape == (480, 640, 3)
    # the session's states, as the window was told them, in the order they came
    states = [line for line in output if line.startswith("[")]
    turn = ["[listening]", "[hearing]", "[thinking]", "[speaking]", "[listening]"]
    assert _in_order(turn, states), states


def _in_order(wanted: list[str], seen: list[str]) -> bool:
    rest = iter(seen)
    return all(any(item == s for s in rest) for item in wanted)


def test_without_a_display_it_runs_headless_and_answers(
    virtual_audio: VirtualAudio,
    camera_file: Path,
    heron_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    saved = heron_env / "headless.png"
    options = ["--max-turns", "1", "--duration", "90", "--screenshot", str(saved)]
    app = Running(assistant(virtual_audio, camera_file, *options))
    try:
        app.wait_for(r"^running headless: no display", timeout=30)
        app.ask(virtual_audio)
        reply = app.wait_for(r"^heron: ", timeout=60)
        code = app.finish(timeout=60)
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
    assert code == 0, "\n".join(app.rest())
    assert SIGN_TEXT in reply.upper()
    # headless, the window's picture is still drawn and saved
    lines = read_text(cv2.imread(str(saved)))
    assert any(SIGN_TEXT in line.upper() for line in lines), lines


def test_a_bad_talk_key_is_a_clear_error(camera_file: Path, heron_env: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--camera", str(camera_file), "--mode", "push_to_talk",
         "--talk-key", "F13", "--headless"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown talk key 'F13'" in result.stderr and "Traceback" not in result.stderr


# -- the window's logic, driven by reports made up here ------------------------------------


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("desktop_assistant", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reports_fold_into_the_window_and_the_terminal(
    heron_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load_example()
    app = example.App(*_settings_and_args(example, "--no-camera", "--mode", "push_to_talk"))
    for report in [
        Said("loading speech models…"),
        StateChanged("hearing"),
        PartialTranscript("what does"),
        UserTurn(1, "What does it say?"),
        Said("you: What does it say?"),  # the session says the turn too: printed once
        StateChanged("speaking"),
        ReplyText(1, "It says: exit.", final=True),
        TurnLatency(1, {"first_audio": 381.6}),
        Said("camera: lost"),
        Notice("camera: lost"),  # said and noticed: printed once
        Ended(0),
    ]:
        app.live.reports.put(report)
    app.pump()
    view = app.view
    assert (view.state, view.heard) == ("stopped", "What does it say?")
    assert view.reply == "It says: exit."
    assert view.mode == "push-to-talk (space)" and view.talk_key == "space"
    assert app.code == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "loading speech models…",
        "[hearing]",
        "you: What does it say?",
        "[speaking]",
        "heron: It says: exit.",
        "  (end of speech -> first audio 382 ms)",
        "camera: lost",
    ]


def test_keys_toggle_talking_and_quit(heron_env: Path) -> None:
    example = load_example()
    app = example.App(*_settings_and_args(example, "--no-camera", "--mode", "push_to_talk"))
    pressed: list[bool] = []
    app.live.controls.on_push_to_talk(pressed.append)
    for key in (ord(" "), ord("x"), ord(" ")):
        app.key(key)
    assert pressed == [True, False]
    app.key(ord("q"))
    assert app.live.controls.stop_requested
    # the picture follows the key
    app.key(ord(" "))
    assert app.picture().shape == (480, 640, 3)


def test_the_window_and_the_session_share_one_camera(heron_env: Path) -> None:
    """A webcam opens only once: the window opens it and hands it to the session."""

    picture = heron_env / "view.png"
    cv2.imwrite(str(picture), np.full((120, 160, 3), 90, np.uint8))
    example = load_example()
    app = example.App(*_settings_and_args(example, "--camera", str(picture)))
    try:
        assert app.camera is not None
        assert app.live.camera is app.camera
    finally:
        app.camera.stop()


def _settings_and_args(example: Any, *argv: str) -> tuple[Any, Any]:
    args = example.parse_args(list(argv))
    return example.build_settings(args), args
