"""``heron live``: the camera, the microphone and the speaker, in one session.

Sensors run on their own threads (camera reader, microphone reader, VAD and
Whisper); utterances cross into the asyncio loop thread-safely and run one turn
each. While heron speaks, and for a short tail after, what the microphone hears is
taken to be heron's own voice and dropped, so heron never answers itself.
Ctrl-C stops everything cleanly and the session can be resumed with its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from .audio_source import MicrophoneSource
from .camera import VideoSource
from .config import Settings
from .errors import CameraError, HeronError
from .events import SpeechOut, Utterance, VideoFrame
from .listener import Listener
from .playback import Speaker, SpeakerSink
from .session import Session, default_tools, recent_sessions, session_exists
from .stt import Transcriber
from .tts import ESPEAK_SAMPLE_RATE, Synthesizer
from .vad import SileroVAD, UtteranceSegmenter

log = logging.getLogger(__name__)

T = TypeVar("T")

ECHO_TAIL_S = 0.35
"""After heron stops speaking, room echo and device latency still reach the mic."""


@dataclass
class LiveOptions:
    resume: str | None = None
    duration_s: float | None = None
    """Stop by itself after this long (for demos, tests and benchmarks)."""
    max_turns: int | None = None


class SelfVoiceGate:
    """Half duplex: speech that begins while heron speaks, or just after, is its own."""

    def __init__(self, tail_s: float = ECHO_TAIL_S) -> None:
        self.tail_s = tail_s
        self._speaking_since: float | None = None
        self._spoken: deque[tuple[float, float]] = deque(maxlen=16)

    def speaking(self) -> None:
        self._speaking_since = time.monotonic()

    def quiet(self) -> None:
        if self._speaking_since is not None:
            self._spoken.append((self._speaking_since, time.monotonic() + self.tail_s))
        self._speaking_since = None

    def is_own_voice(self, utterance: Utterance) -> bool:
        if self._speaking_since is not None and utterance.t_end >= self._speaking_since:
            return True
        return any(start <= utterance.t_start <= end for start, end in self._spoken)


async def run_live(
    settings: Settings,
    options: LiveOptions,
    *,
    say: Callable[[str], None] = print,
) -> int:
    """Run until Ctrl-C (or the duration / turn limit); returns an exit code."""
    async with contextlib.AsyncExitStack() as stack:
        return await _run(settings, options, say, stack)
    raise AssertionError("unreachable")  # for type checkers: the stack does not swallow


async def _run(
    settings: Settings,
    options: LiveOptions,
    say: Callable[[str], None],
    stack: contextlib.AsyncExitStack,
) -> int:
    if options.resume and not session_exists(settings, options.resume):
        raise HeronError(
            f"there is no session {options.resume!r} in {settings.data_dir}; "
            f"recent sessions: {', '.join(recent_sessions(settings)) or 'none'}"
        )
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Utterance | Exception] = asyncio.Queue()
    stopping = asyncio.Event()

    def on_ctrl_c() -> None:
        say("stopping…")
        stopping.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts at once

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
        loop.add_signal_handler(signal.SIGINT, on_ctrl_c)

    camera: VideoSource | None = None
    if settings.camera.source is not None:
        camera = VideoSource(
            settings.camera, on_status=lambda status, message: say(f"camera: {message}")
        )
        try:
            camera.start()
            stack.callback(camera.stop)
        except CameraError as exc:
            say(f"camera: {exc}; going on without a camera")
            camera = None

    transcriber = Transcriber(settings.stt)
    synthesizer = Synthesizer(settings.tts)
    stack.callback(synthesizer.close)
    # the output stream stays open for the whole session: replies never wait for the
    # device to start, and its first blocks are never lost to a start-up glitch
    sink = SpeakerSink(settings.speaker, keep_alive_s=math.inf)
    stack.callback(sink.close)
    speaker = Speaker(synthesizer, sink)
    gate = SelfVoiceGate()
    say("loading speech models…")
    silence = np.zeros(ESPEAK_SAMPLE_RATE // 5, np.float32)
    tools = default_tools()
    await asyncio.gather(
        asyncio.to_thread(transcriber.warmup),
        asyncio.to_thread(synthesizer.synthesize, "ready"),
        asyncio.to_thread(sink.play, silence, ESPEAK_SAMPLE_RATE),
        asyncio.to_thread(tools.warmup),
    )

    def deliver(item: Utterance | Exception) -> None:
        # called on the listener's threads; the queue belongs to the loop
        loop.call_soon_threadsafe(inbox.put_nowait, item)

    listener = Listener(
        MicrophoneSource(settings.microphone),
        UtteranceSegmenter(settings.vad, SileroVAD()),
        transcriber,
        on_utterance=deliver,
        on_error=deliver,
    )

    async def get_frame() -> VideoFrame | None:
        if camera is None:
            return None
        frame = camera.latest()
        if frame is None:
            frame = await asyncio.to_thread(camera.wait_for_frame, None, 1.0)
        return frame

    async def speak(text: str) -> SpeechOut | None:
        gate.speaking()
        try:
            return await speaker.asay(text)
        finally:
            gate.quiet()

    session = Session(
        settings, session_id=options.resume, get_frame=get_frame, speak=speak, tools=tools
    )
    await session.open()

    async def close_session() -> None:
        await session.close()
        say(f"session {session.id} saved; resume it with: heron live --resume {session.id}")

    stack.push_async_callback(close_session)
    stack.callback(speaker.stop)  # unwinds first: silence before the session closes
    listener.start()
    stack.callback(listener.stop)
    say(
        f"listening (session {session.id}{', resumed' if session.resumed else ''}; "
        f"{'offline' if session.offline else settings.vlm.model}; "
        f"camera {'on' if camera else 'off'}). Press Ctrl-C to stop."
    )
    session.log.write("status", ready=True, camera=camera is not None)

    deadline = None if options.duration_s is None else loop.time() + options.duration_s
    turns = 0
    while options.max_turns is None or turns < options.max_turns:
        timeout = None if deadline is None else max(0.0, deadline - loop.time())
        item = await _next(inbox.get(), stopping, timeout)
        if item is None:
            break
        if isinstance(item, Exception):
            session.log.write("error", where="microphone", error=str(item))
            say(f"microphone: {item}")
            return 1
        if gate.is_own_voice(item):
            session.log.write("ignored", reason="own voice", text=item.text)
            continue
        say(f"you: {item.text}")
        try:
            result = await _next(session.turn(item.text, utterance=item), stopping, None)
        except Exception as exc:  # one failed turn must not end the conversation
            log.exception("the turn failed")
            say(f"error: {exc}")
            continue
        if result is None:
            break
        turns += 1
        say(f"{settings.assistant_name}: {result.reply}")
        if "first_audio" in result.timing:
            say(f"  ({result.timing['first_audio']:.0f} ms from end of speech to first audio)")
    return 0


async def _next(
    work: Coroutine[Any, Any, T], stopping: asyncio.Event, timeout: float | None
) -> T | None:
    """``work``'s result, or None when Ctrl-C or the timeout comes first (work is cancelled)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    done, _ = await asyncio.wait({task, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
