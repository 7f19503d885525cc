"""``heron live`` end to end on real parts.

A recorded question is played into PulseAudio's virtual microphone; the camera is
an MJPEG stream on loopback; the model is a scripted OpenAI-compatible server on
loopback that checks it got an image and answers first with a tool call, then with
text. heron's spoken reply is recorded from the virtual speaker and transcribed
back with the same Whisper model.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heron.agent.stt import Transcriber
from heron.memory.session_log import read_session_log
from tests.conftest import REPO
from tests.support.mjpeg import MJPEGServer
from tests.support.pulse import VirtualAudio
from tests.support.render import render_text_image
from tests.support.vlm_server import ScriptedVLM, Step
from tests.support.words import word_errors

QUESTION = REPO / "examples" / "scripted_session" / "read_the_sign.wav"
# words Whisper tiny.en hears reliably in espeak-ng's voice, whatever the device path
ANSWER = "The sign says no parking at any time."
SIGN = render_text_image(["NO PARKING AT ANY TIME"], scale=1.3, thickness=3)


def unused_url(path: str) -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}{path}"


def live_command(audio: VirtualAudio, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "heron.agent.cli", "live",
        "--mic", audio.device, "--speaker", audio.device, *options,
    ]  # fmt: skip


def run_live(audio: VirtualAudio, *options: str) -> subprocess.CompletedProcess[str]:
    """``heron live`` to its end (its own time limit or an error)."""
    command = live_command(audio, *options)
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


KITCHEN = (
    "The kitchen has a white table with three green bottles on it. "
    "Behind the table there is a window with blue curtains. "
    "On the left there is a tall shelf full of cookbooks and jars. "
    "The floor is made of light wooden boards and there is a red rug."
)
"""A long reply: heron is still saying it when the user talks over it."""


class Running:
    """A ``heron live`` process whose output lines are collected as they come."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no line matching {pattern!r}; output:\n" + "\n".join(self.seen)
                )
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def rest(self) -> list[str]:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def ask(self, audio: VirtualAudio) -> None:
        """Wait until heron listens, then speak the question into the virtual mic."""
        self.wait_for(r"^listening \(session", timeout=120)
        audio.play(QUESTION).wait(timeout=30)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process to end by itself; kill it if it does not."""
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def live_with_model(
    audio: VirtualAudio, camera: MJPEGServer, vlm: ScriptedVLM, *options: str
) -> Running:
    """``heron live`` on the MJPEG camera, answering through the scripted model."""
    command = live_command(
        audio, "--camera", camera.url, "--base-url", vlm.base_url, "--model", "scripted",
        "--duration", "150", *options,
    )  # fmt: skip
    return Running(command, {"HERON_VLM_MAX_RETRIES": "0"})


@pytest.fixture()
def camera() -> Iterator[MJPEGServer]:
    with MJPEGServer(lambda: SIGN, fps=10) as server:
        yield server


def test_live_question_to_spoken_answer(
    virtual_audio: VirtualAudio, camera: MJPEGServer, heron_env: Path
) -> None:
    steps = [
        Step(tool_calls=[{"name": "read_text", "arguments": "{}"}], require_image=True),
        Step(text=ANSWER),
    ]
    with ScriptedVLM(steps, default=Step(text="You said something else.")) as vlm:
        live = live_with_model(virtual_audio, camera, vlm)
        try:
            live.ask(virtual_audio)
            recording = heron_env / "reply.wav"
            recorder = virtual_audio.record(recording)
            live.wait_for(r"^you: .*read", timeout=60)
            live.wait_for(r"^heron: ", timeout=60)
            live.wait_for(r"end of speech → first audio \d+ ms", timeout=60)
            # the null sink delivers to its monitor with up to 2 s of latency; this also
            # gives heron time to (wrongly) hear itself
            time.sleep(3.5)
            recorder.terminate()
            recorder.wait(timeout=10)
            live.proc.send_signal(signal.SIGINT)
        finally:
            code = live.finish()
        output = live.rest()
        requests = list(vlm.requests)

    assert code == 0, "\n".join(output)
    assert any("resume it with: heron live --resume" in line for line in output)
    # the model received the camera frame and the real OCR result
    assert len(requests) == 2
    assert "NO PARKING AT ANY TIME" in requests[1]["messages"][-1]["content"].upper()
    # what came out of the virtual speaker is the answer
    heard = Transcriber().transcribe_file(recording).text
    assert word_errors(ANSWER, heard) <= 1, heard
    # the session log has the whole turn, and heron's own voice made no turn
    (session_dir,) = (heron_env / "heron-data" / "sessions").iterdir()
    log = list(read_session_log(session_dir / "log.jsonl"))
    kinds = [r["kind"] for r in log]
    assert kinds.count("utterance") == 1
    for kind in ("frame", "tool.call", "tool.result", "reply", "speech", "turn.timing"):
        assert kind in kinds, kind
    assert kinds[-1] == "session.end"
    timing = next(r for r in log if r["kind"] == "turn.timing")
    assert 0 < timing["first_audio"] < 10_000


def test_live_goes_on_when_the_model_refuses_connections(
    virtual_audio: VirtualAudio, camera: MJPEGServer, heron_env: Path
) -> None:
    options = ["--camera", camera.url, "--base-url", unused_url("/v1"), "--max-turns", "1"]
    options += ["--duration", "150"]
    live = Running(
        live_command(virtual_audio, *options),
        {"HERON_VLM_MAX_RETRIES": "0"},
    )
    try:
        live.ask(virtual_audio)
        reply = live.wait_for(r"^heron: ", timeout=60)
    finally:
        code = live.finish()
    assert code == 0
    assert "can't reach the vision model" in reply and "NO PARKING AT ANY TIME" in reply.upper()


def test_live_with_an_unreadable_camera_url_says_so_and_still_answers(
    virtual_audio: VirtualAudio, heron_env: Path
) -> None:
    url = unused_url("/stream.mjpg")
    live = Running(
        live_command(
            virtual_audio, "--camera", url, "--offline", "--max-turns", "1", "--duration", "150"
        )
    )
    try:
        live.ask(virtual_audio)
        assert any(re.match(r"camera: .*stream\.mjpg cannot be opened", s) for s in live.seen)
        reply = live.wait_for(r"^heron: ", timeout=60)
    finally:
        code = live.finish()
    assert code == 0
    assert "no camera frame" in reply


def test_a_missing_microphone_is_a_clear_error(
    virtual_audio: VirtualAudio, heron_env: Path
) -> None:
    command = live_command(virtual_audio, "--no-camera", "--offline", "--duration", "5")
    command[command.index(virtual_audio.device)] = "no-such-microphone"
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no-such-microphone" in result.stderr and "Traceback" not in result.stderr


def test_live_resume_continues_the_session(virtual_audio: VirtualAudio, heron_env: Path) -> None:
    first = run_live(virtual_audio, "--no-camera", "--offline", "--duration", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    session_id = re.search(r"listening \(session (\S+?);", first.stdout).group(1)  # type: ignore[union-attr]
    second = run_live(
        virtual_audio, "--no-camera", "--offline", "--duration", "1", "--resume", session_id
    )
    assert f"listening (session {session_id}, resumed;" in second.stdout
    log = list(read_session_log(heron_env / "heron-data" / "sessions" / session_id / "log.jsonl"))
    assert [r["kind"] for r in log].count("session.start") == 2


def test_resuming_an_unknown_session_is_a_clear_error(
    virtual_audio: VirtualAudio, heron_env: Path
) -> None:
    result = run_live(virtual_audio, "--no-camera", "--offline", "--resume", "20990101-000000-dead")
    assert result.returncode == 2
    assert "there is no session '20990101-000000-dead'" in result.stderr


def test_live_barge_in_stops_the_reply_and_answers_the_new_question(
    virtual_audio: VirtualAudio, camera: MJPEGServer, heron_env: Path
) -> None:
    """The user talks over a long reply: heron stops, records what it said, and answers.

    heron's own voice is in the microphone all along (the null sink's monitor): it
    must neither answer it nor take it for a barge-in.
    """
    long_reply = KITCHEN
    steps = [Step(text=long_reply), Step(text=ANSWER)]
    with ScriptedVLM(steps, default=Step(text="You said something else.")) as vlm:
        live = live_with_model(virtual_audio, camera, vlm, "--max-turns", "2")
        try:
            live.ask(virtual_audio)
            live.wait_for(r"^you: ", timeout=60)
            # let heron speak a while (its voice echoes into the mic meanwhile)
            time.sleep(4.0)
            virtual_audio.play(QUESTION).wait(timeout=30)
            live.wait_for(r"^heron \(interrupted\): ", timeout=60)
            live.wait_for(r"^heron: The sign says", timeout=60)
        finally:
            code = live.finish()
        output = live.rest()
    assert code == 0, "\n".join(output)
    (session_dir,) = (heron_env / "heron-data" / "sessions").iterdir()
    log = list(read_session_log(session_dir / "log.jsonl"))
    kinds = [r["kind"] for r in log]
    assert kinds.count("utterance") == 2, [r for r in log if r["kind"] == "ignored"]
    (cut,) = [r for r in log if r["kind"] == "interrupted"]
    # some of the reply was heard, not all of it
    assert 0 < len(cut["said"].split()) < len(long_reply.split()), cut
    assert long_reply.startswith(cut["said"].split()[0])
    assert "barge_in" in kinds


def test_live_wake_phrase_mode_answers_only_when_addressed(
    virtual_audio: VirtualAudio, camera: MJPEGServer, heron_env: Path, tmp_path: Path
) -> None:
    addressed = tmp_path / "addressed.wav"
    subprocess.run(["espeak-ng", "-w", str(addressed), "Heron, please read the sign."], check=True)
    options = ["--camera", camera.url, "--offline", "--duration", "150", "--max-turns", "1"]
    live = Running(live_command(virtual_audio, *options), {"HERON_LISTEN_MODE": "wake_phrase"})
    try:
        live.ask(virtual_audio)  # "Please read the sign." without the name: ignored
        time.sleep(3.0)
        virtual_audio.play(addressed).wait(timeout=30)
        you = live.wait_for(r"^you: ", timeout=60)
        reply = live.wait_for(r"^heron: ", timeout=60)
    finally:
        code = live.finish()
    assert code == 0
    assert "read the sign" in you.lower() and "heron" not in you.lower()
    assert "NO PARKING AT ANY TIME" in reply.upper()
    (session_dir,) = (heron_env / "heron-data" / "sessions").iterdir()
    log = list(read_session_log(session_dir / "log.jsonl"))
    ignored = [r for r in log if r["kind"] == "ignored"]
    assert [r["reason"] for r in ignored] == ["no wake phrase"], ignored
    assert [r["kind"] for r in log].count("utterance") == 1


def test_live_push_to_talk_takes_only_what_is_said_with_the_key_down(
    virtual_audio: VirtualAudio, camera: MJPEGServer, heron_env: Path
) -> None:
    """In-process, through the controls a window uses: the talk key gates the turns."""
    from heron.agent.config import load_settings
    from heron.agent.live import LiveOptions
    from heron.agent.live import run_live as run_live_session
    from heron.agent.live_events import LiveControls, LiveEvent, UserTurn

    settings = load_settings(
        camera={"source": camera.url},
        microphone={"device": virtual_audio.device},
        speaker={"device": virtual_audio.device},
        listen={"mode": "push_to_talk"},
    ).without_model()
    controls = LiveControls()
    events: list[LiveEvent] = []
    lines: list[str] = []
    outcome: list[int] = []

    def session() -> None:
        options = LiveOptions(duration_s=120, max_turns=1)
        running = run_live_session(
            settings, options, say=lines.append, on_event=events.append, controls=controls
        )
        outcome.append(asyncio.run(running))

    thread = threading.Thread(target=session, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not any(line.startswith("listening") for line in lines):
        assert time.monotonic() < deadline and thread.is_alive(), lines
        time.sleep(0.1)
    virtual_audio.play(QUESTION).wait(timeout=30)  # key up: not a turn
    time.sleep(3.0)
    assert not [e for e in events if isinstance(e, UserTurn)], lines
    controls.push_to_talk(True)
    virtual_audio.play(QUESTION).wait(timeout=30)
    time.sleep(1.5)  # the null sink's monitor lags behind what was played
    controls.push_to_talk(False)  # release: the utterance ends now
    thread.join(90)
    assert outcome == [0], lines
    (turn,) = [e for e in events if isinstance(e, UserTurn)]
    assert "read" in turn.text.lower()
    assert any(
        "NO PARKING AT ANY TIME" in line.upper() for line in lines if line.startswith("heron:")
    )
    (session_dir,) = (heron_env / "heron-data" / "sessions").iterdir()
    log = list(read_session_log(session_dir / "log.jsonl"))
    assert [r["reason"] for r in log if r["kind"] == "ignored"] == ["outside push-to-talk"]


def test_live_a_short_backchannel_does_not_interrupt(
    virtual_audio: VirtualAudio, camera: MJPEGServer, heron_env: Path, tmp_path: Path
) -> None:
    backchannel = tmp_path / "yes.wav"
    subprocess.run(["espeak-ng", "-w", str(backchannel), "Yes."], check=True)
    reply = ". ".join(KITCHEN.split(". ")[:2]) + "."  # its first two sentences
    with ScriptedVLM([Step(text=reply)], default=Step(text="Something else.")) as vlm:
        live = live_with_model(virtual_audio, camera, vlm, "--max-turns", "1")
        try:
            live.ask(virtual_audio)
            live.wait_for(r"^you: ", timeout=60)
            time.sleep(2.5)
            virtual_audio.play(backchannel).wait(timeout=30)
            said = live.wait_for(r"^heron", timeout=60)
        finally:
            code = live.finish()
    assert code == 0
    assert said.startswith("heron: The kitchen"), said  # not "heron (interrupted)"
    (session_dir,) = (heron_env / "heron-data" / "sessions").iterdir()
    log = list(read_session_log(session_dir / "log.jsonl"))
    kinds = [r["kind"] for r in log]
    assert "barge_in" not in kinds and "interrupted" not in kinds
    (speech,) = [r for r in log if r["kind"] == "speech"]
    assert speech["interrupted"] is False
    assert kinds.count("utterance") == 1
