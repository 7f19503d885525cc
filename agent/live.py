"""``heron live``: the camera, the microphone and the speaker, in one session.

Sensors run on their own threads (camera reader, microphone reader with echo
cancellation and VAD, Whisper); their events cross into the asyncio loop
thread-safely, where a :class:`~heron.agent.conversation.Conversation` runs the
turns: replies are spoken while they are generated, the user can interrupt, and
heron never answers its own voice. Ctrl-C (or ``controls.stop()``) stops
everything cleanly and the session can be resumed with its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from heron.tools.screen_replay import ScreenReplayWatch

from .audio_source import AudioSource, MicrophoneSource
from .camera import VideoSource
from .config import Settings
from .conversation import Conversation
from .echo import EchoCanceller
from .errors import CameraError, HeronError
from .events import AudioChunk, Utterance, VideoFrame
from .keyframes import CameraKeyframes
from .listener import Listener, Partial
from .live_events import EventCallback, LiveControls, LiveEvent, Notice, StateChanged
from .playback import Speaker, SpeakerSink
from .session import Session, default_tools, recent_sessions, session_exists
from .stt import Transcriber
from .tts import ESPEAK_SAMPLE_RATE, Synthesizer
from .turn_modes import TurnPolicy
from .vad import SegmenterEvent, SileroVAD, UtteranceSegmenter

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class LiveOptions:
    resume: str | None = None
    duration_s: float | None = None
    """Stop by itself after this long (for demos, tests and benchmarks)."""
    max_turns: int | None = None


class EchoCancelledSource:
    """A microphone whose chunks have heron's own voice removed before the VAD.

    While echo may still be present and cancellation has not converged, the
    VAD's threshold is raised so that heron's voice does not pass as the user's.
    """

    def __init__(
        self, source: AudioSource, echo: EchoCanceller, segmenter: UtteranceSegmenter
    ) -> None:
        self.source = source
        self.echo = echo
        self.segmenter = segmenter
        self._base = segmenter.config.threshold

    def start(self) -> None:
        self.source.start()

    def stop(self) -> None:
        self.source.stop()

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        chunk = self.source.read(timeout)
        if chunk is None:
            return None
        self.segmenter.set_threshold(self.echo.suggested_vad_threshold(self._base))
        return self.echo.process_chunk(chunk)

    def __enter__(self) -> EchoCancelledSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def run_live(
    settings: Settings,
    options: LiveOptions,
    *,
    say: Callable[[str], None] = print,
    on_event: EventCallback | None = None,
    controls: LiveControls | None = None,
    camera: VideoSource | None = None,
) -> int:
    """Run until Ctrl-C, ``controls.stop()``, or the duration / turn limit; returns an exit code.

    ``on_event`` gets :mod:`live events <heron.agent.live_events>` on the loop thread;
    ``controls`` lets a window or terminal press the talk key and stop the session.
    ``camera``: an already started source to share (a window showing the same
    webcam); it is left running. Otherwise ``settings.camera`` is opened here.
    """
    async with contextlib.AsyncExitStack() as stack:
        return await _run(
            settings, options, say, on_event, controls or LiveControls(), camera, stack
        )
    raise AssertionError("unreachable")  # for type checkers: the stack does not swallow


async def _run(
    settings: Settings,
    options: LiveOptions,
    say: Callable[[str], None],
    on_event: EventCallback | None,
    controls: LiveControls,
    shared_camera: VideoSource | None,
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

    def emit(event: LiveEvent) -> None:
        if on_event is not None:
            try:
                on_event(event)
            except Exception:
                log.exception("the on_event callback failed")

    def notice(text: str) -> None:
        say(text)
        emit(Notice(text))

    emit(StateChanged("starting"))

    def on_ctrl_c() -> None:
        say("stopping…")
        stopping.set()
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts at once

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on every platform
        loop.add_signal_handler(signal.SIGINT, on_ctrl_c)

    async def watch_controls() -> None:
        while not controls.stop_requested:
            await asyncio.sleep(0.1)
        stopping.set()

    watcher = asyncio.ensure_future(watch_controls())
    stack.callback(watcher.cancel)

    camera: VideoSource | None = shared_camera
    if camera is None and settings.camera.source is not None:
        camera = VideoSource(
            settings.camera, on_status=lambda status, message: notice(f"camera: {message}")
        )
        try:
            camera.start()
            stack.callback(camera.stop)
        except CameraError as exc:
            notice(f"camera: {exc}; going on without a camera")
            camera = None
    keyframes: CameraKeyframes | None = None
    screen_watch: ScreenReplayWatch | None = None
    if camera is not None:
        # every frame analysed on its own thread: questions get the sharpest frame
        # captured after they began, and an unchanged scene is not sent again
        keyframes = CameraKeyframes(camera, settings.keyframes).start()
        stack.callback(keyframes.stop)
        screen_watch = ScreenReplayWatch()

    transcriber = Transcriber(settings.stt)
    synthesizer = Synthesizer(settings.tts)
    stack.callback(synthesizer.close)
    # the output stream stays open for the whole session: replies never wait for the
    # device to start, and its first blocks are never lost to a start-up glitch
    sink = SpeakerSink(settings.speaker, keep_alive_s=math.inf)
    stack.callback(sink.close)
    speaker = Speaker(synthesizer, sink)
    echo = EchoCanceller(settings.echo)
    say("loading speech models…")
    silence = np.zeros(ESPEAK_SAMPLE_RATE // 5, np.float32)
    tools = default_tools(settings)
    await asyncio.gather(
        asyncio.to_thread(transcriber.warmup),
        asyncio.to_thread(synthesizer.synthesize, "ready"),
        asyncio.to_thread(sink.play, silence, ESPEAK_SAMPLE_RATE),
        asyncio.to_thread(tools.warmup),
    )

    async def get_frame() -> VideoFrame | None:
        if camera is None:
            return None
        frame = camera.latest()
        if frame is None:
            frame = await asyncio.to_thread(camera.wait_for_frame, None, 1.0)
        return frame

    session = Session(
        settings,
        session_id=options.resume,
        get_frame=get_frame,
        tools=tools,
        get_keyframe=keyframes.get if keyframes is not None else None,
    )
    await session.open()

    async def close_session() -> None:
        await session.close()
        say(f"session {session.id} saved; resume it with: heron live --resume {session.id}")

    stack.push_async_callback(close_session)
    policy = TurnPolicy(settings.listen)
    policy.attach(controls)
    if policy.stt_hint:
        # primed with the name as it is said ("Heron, ..."), Whisper writes the name;
        # primed with the bare word, it takes it as already said and leaves it out
        transcriber.hotwords = policy.stt_hint.title() + ","
    conversation = Conversation(
        session,
        speaker,
        settings.conversation,
        policy,
        emit=emit,
        say=say,
        assistant_name=settings.assistant_name,
    )
    stack.push_async_callback(conversation.close)  # unwinds first: silence, then close
    # audio cut off by a barge-in never sounds, so it must not be "cancelled" either
    conversation.on_audio_stopped = lambda: echo.truncate_reference(time.monotonic())

    audio_out = {"turn": -1}

    def on_output(block: np.ndarray, rate: int, t_out: float) -> None:  # audio thread
        echo.add_reference(block, rate, t_out)
        if audio_out["turn"] != conversation.turns:
            audio_out["turn"] = conversation.turns
            loop.call_soon_threadsafe(conversation.audio_started)

    sink.on_output = on_output

    def deliver(item: Utterance | Exception) -> None:
        # called on the listener's threads; the queue belongs to the loop
        loop.call_soon_threadsafe(inbox.put_nowait, item)

    def on_voice(event: SegmenterEvent) -> None:
        loop.call_soon_threadsafe(conversation.on_voice, event)

    def on_partial(partial: Partial) -> None:
        loop.call_soon_threadsafe(conversation.on_partial, partial)

    segmenter = UtteranceSegmenter(settings.vad, SileroVAD())
    listener = Listener(
        EchoCancelledSource(MicrophoneSource(settings.microphone), echo, segmenter),
        segmenter,
        transcriber,
        on_utterance=deliver,
        on_error=deliver,
        on_voice=on_voice,
        on_partial=on_partial,
    )
    policy.on_endpoint(listener.end_utterance_now)
    listener.start()
    stack.callback(listener.stop)
    say(
        f"listening (session {session.id}{', resumed' if session.resumed else ''}; "
        f"{'offline' if session.offline else settings.vlm.model}; "
        f"camera {'on' if camera else 'off'}; {policy.describe()}; "
        f"echo cancellation {echo.backend.name}). Press Ctrl-C to stop."
    )
    session.log.write(
        "status", ready=True, camera=camera is not None, mode=policy.mode, echo=echo.backend.name
    )
    emit(StateChanged("listening"))
    if camera is not None and screen_watch is not None:
        watcher_task = asyncio.ensure_future(
            _watch_for_screens(camera, screen_watch, session, notice)
        )
        stack.callback(watcher_task.cancel)

    deadline = None if options.duration_s is None else loop.time() + options.duration_s
    try:
        while options.max_turns is None or conversation.turns < options.max_turns:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            item = await _next(inbox.get(), stopping, timeout)
            if item is None:
                break
            if isinstance(item, Exception):
                session.log.write("error", where="microphone", error=str(item))
                notice(f"microphone: {item}")
                return 1
            await conversation.handle(item)
        if options.max_turns is not None:
            # let the last turn finish speaking before the session closes
            await _next(conversation.finish_turn(), stopping, None)
    finally:
        emit(StateChanged("stopped"))
        session.log.write("echo", **dataclasses.asdict(echo.stats()))
    return 0


SCREEN_CHECK_EVERY_S = 2.0


async def _watch_for_screens(
    camera: VideoSource,
    watch: ScreenReplayWatch,
    session: Session,
    notice: Callable[[str], None],
) -> None:
    """Warn when the camera seems to be looking at a screen (a replayed picture)."""
    while True:
        await asyncio.sleep(SCREEN_CHECK_EVERY_S)
        frame = camera.latest()
        if frame is None:
            continue
        warning = await asyncio.to_thread(watch.update, frame.image)
        if warning:
            result = watch.last
            session.log.write(
                "guard",
                guard="screen_replay",
                action="warn",
                reason=warning,
                score=round(result.score, 3) if result is not None else None,
            )
            notice(warning)


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
