"""Plays a scenario through a session and writes what happened.

Output folder: ``transcript.txt`` (who said what, when), ``replies.wav`` (every
reply as heron spoke it, one after another), ``reply_NN.wav`` per turn, and the
session's own folder with its log and frames. Scenario time is virtual by default
(turns run back to back, as fast as the models allow), or paced with ``realtime``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import HeronError
from .events import SpeechOut, Utterance, VideoFrame
from .keyframes import AnalysedFrame, FrameRing, Keyframe, KeyframeSelector, analyse
from .playback import PlaybackResult, Speaker, WavFileSink
from .scenario import Scenario, ScriptedFrames
from .session import Session, TurnResult, new_session_id
from .stt import Transcriber
from .tts import Synthesizer

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    session_id: str
    session_dir: Path
    out_dir: Path
    transcript: Path
    replies_wav: Path
    turns: list[TurnResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unmet: list[str] = field(default_factory=list)
    """Turns whose reply lacked words the scenario expected, with the missing words."""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unmet


def missing_words(reply: str, expected: list[str]) -> list[str]:
    """Expected words absent from the reply (case and punctuation ignored)."""
    words = set(re.findall(r"[a-z0-9]+", reply.lower()))
    return [word for word in expected if not set(re.findall(r"[a-z0-9]+", word.lower())) <= words]


class _Tee:
    """Writes each reply into several WAV files (all replies, and this turn's own)."""

    def __init__(self, sinks: list[WavFileSink]) -> None:
        self.sinks = sinks

    def play(
        self, samples: np.ndarray, sample_rate: int, *, cancel: threading.Event | None = None
    ) -> PlaybackResult:
        results = [sink.play(samples, sample_rate, cancel=cancel) for sink in self.sinks]
        return results[0]

    def stop(self) -> None:
        for sink in self.sinks:
            sink.stop()

    def close(self) -> None:
        """The sinks belong to the run; it closes them."""


def _stamp(t: float) -> str:
    minutes, seconds = divmod(t, 60)
    return f"[{int(minutes):02d}:{seconds:04.1f}]"


async def run_scenario(
    scenario: Scenario,
    settings: Settings,
    out_dir: Path | None = None,
    *,
    session_id: str | None = None,
    realtime: bool = False,
    transcriber: Transcriber | None = None,
    synthesizer: Synthesizer | None = None,
    on_line: Callable[[str], None] | None = None,
) -> RunReport:
    """Run every turn of the scenario; a failing turn is reported and the run goes on.

    ``out_dir`` defaults to ``<data_dir>/runs/<session id>``.
    """
    session_id = session_id or new_session_id()
    out_dir = out_dir or Path(settings.data_dir) / "runs" / session_id
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = ScriptedFrames(scenario)
    transcriber = transcriber or Transcriber(settings.stt)
    synthesizer = synthesizer or Synthesizer(settings.tts)
    replies = WavFileSink(out_dir / "replies.wav", gap_s=0.5)
    clock = {"t": 0.0}
    frame_index = {"n": 0}

    async def get_frame() -> VideoFrame | None:
        image = frames.at(clock["t"])
        if image is None:
            return None
        frame_index["n"] += 1
        now = time.monotonic()
        return VideoFrame(image, now, time.time(), frame_index["n"], f"scenario:{scenario.name}")

    ring = FrameRing(settings.keyframes)
    selector = KeyframeSelector(ring, settings.keyframes)

    async def get_keyframe(t_question: float | None) -> Keyframe:
        # the scripted view of this moment goes through the same selection as a
        # camera's: an unchanged view is not sent to the model again
        frame = await get_frame()
        if frame is None:
            return Keyframe(None, None, False, 0.0)
        ring.add(AnalysedFrame(frame, analyse(frame.image)))
        return selector.select(t_question)

    turn_sinks: list[WavFileSink] = []  # the current turn's own file, while it runs

    async def speak(text: str) -> SpeechOut | None:
        sinks = [replies, *turn_sinks]
        return await Speaker(synthesizer, _Tee(sinks)).asay(text)

    transcript_path = out_dir / "transcript.txt"
    report: RunReport
    t_start = time.monotonic()
    with transcript_path.open("w", encoding="utf-8") as transcript:

        def line(text: str) -> None:
            transcript.write(text + "\n")
            transcript.flush()
            if on_line is not None:
                on_line(text)

        async with Session(
            settings, session_id=session_id, get_keyframe=get_keyframe, speak=speak
        ) as session:
            report = RunReport(
                session.id, session.dir, out_dir, transcript_path, out_dir / "replies.wav"
            )
            mode = "offline" if session.offline else "online"
            line(f"# {scenario.name} (session {session.id}, {mode})")
            for number, turn in enumerate(scenario.ordered_turns, start=1):
                clock["t"] = turn.at
                if realtime:
                    await asyncio.sleep(max(0.0, t_start + turn.at - time.monotonic()))
                try:
                    utterance = await _utterance(scenario, turn.audio, turn.text, transcriber)
                except HeronError as exc:
                    report.errors.append(str(exc))
                    session.log.write("error", where="scenario", turn=number, error=str(exc))
                    line(f"{_stamp(turn.at)} error: {exc}")
                    continue
                line(f"{_stamp(turn.at)} user: {utterance.text or '(nothing heard)'}")
                if not utterance.text:
                    continue
                turn_sinks.append(WavFileSink(out_dir / f"reply_{number:02d}.wav"))
                try:
                    result = await session.turn(utterance.text, utterance=utterance)
                finally:
                    turn_sinks.pop().close()
                report.turns.append(result)
                line(f"{_stamp(turn.at)} {settings.assistant_name}: {result.reply}")
                missing = missing_words(result.reply, turn.expect)
                if missing:
                    report.unmet.append(f"turn {number}: missing {', '.join(missing)}")
                    line(f"  expected but not said: {', '.join(missing)}")
    replies.close()
    frames.close()
    return report


async def _utterance(
    scenario: Scenario, audio: Path | None, text: str | None, transcriber: Transcriber
) -> Utterance:
    now = time.monotonic()
    if audio is None:
        return Utterance(text=text or "", t_start=now, t_end=now, t_final=now, source="text")
    transcript = await asyncio.to_thread(transcriber.transcribe_file, scenario.resolve(audio))
    done = time.monotonic()
    return Utterance(
        text=transcript.text,
        t_start=now,
        t_end=now,
        t_final=done,
        source="file",
        no_speech_prob=transcript.no_speech_prob,
    )
