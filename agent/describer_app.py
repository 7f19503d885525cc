"""Running the scene describer: camera, channels, speech out, keys and voice in.

:func:`run_describer` wires a :class:`~heron.agent.camera.VideoSource` (device, file
or URL), the keyframe analysis, the channels, and speech to the speaker or a WAV
file; commands come as keys on stdin and, when a microphone is there, as spoken
words ("text", "barcode", "people", "colour", "light", "scene", "faster", "more
detail", "stop", "quit"). What the describer says is also printed, for a sighted
helper or a log.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .camera import VideoSource
from .config import Settings
from .describer import Announcer, SceneDescriber, Spoken, build_channels
from .describer_channels import CHANNELS, ChannelName, Say, Verbosity
from .errors import HeronError
from .events import Utterance
from .keyframes import KeyframeTracker
from .playback import AudioSink, SpeakerSink, WavFileSink
from .tts import Synthesizer
from .vlm import VLMClient

log = logging.getLogger(__name__)

HELP = (
    "keys: "
    + ", ".join(f"{i + 1} {name}" for i, name in enumerate(CHANNELS))
    + "; + faster, - slower, v verbosity, s pause, q quit"
)


@dataclass
class DescriberOptions:
    channel: ChannelName = "text"
    verbosity: Verbosity = "normal"
    wav: Path | None = None
    """Write speech to this WAV file instead of the speaker."""
    voice: bool = True
    """Listen for spoken commands on the microphone."""
    keys: bool = True
    """Read commands from stdin."""
    duration_s: float | None = None


class OwnVoice:
    """Utterances heard while the describer was speaking are its own voice, not commands."""

    def __init__(self, tail_s: float = 0.35) -> None:
        self.tail_s = tail_s
        self._spans: list[tuple[float, float]] = []
        self._lock = threading.Lock()

    def record(self, spoken: Spoken) -> None:
        with self._lock:
            start = spoken.t_first_audio or spoken.t_queued
            self._spans = [*self._spans[-31:], (start, spoken.t_end + self.tail_s)]

    def heard_self(self, utterance: Utterance) -> bool:
        with self._lock:
            return any(s <= utterance.t_end and utterance.t_start <= e for s, e in self._spans)


def _read_keys(handle: Callable[[str], None], stop: threading.Event) -> None:
    """Single key presses on a terminal (no Enter needed), lines otherwise."""
    stream = sys.stdin
    if stream.isatty():
        import termios
        import tty

        fd = stream.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while not stop.is_set():
                key = stream.read(1)
                if not key:
                    return
                handle(key)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    else:
        for line in stream:
            if stop.is_set():
                return
            if line.strip():
                handle(line.strip())


@contextlib.contextmanager
def _listening(
    settings: Settings, on_text: Callable[[Utterance], None], say: Callable[[str], None]
) -> Iterator[None]:
    """Voice commands from the microphone while inside; silently without one."""
    try:
        from .audio_source import MicrophoneSource
        from .listener import Listener
        from .stt import Transcriber
        from .vad import SileroVAD, UtteranceSegmenter

        listener = Listener(
            MicrophoneSource(settings.microphone),
            UtteranceSegmenter(settings.vad, SileroVAD()),
            Transcriber(settings.stt),
            on_utterance=on_text,
        )
        listener.start()
    except HeronError as exc:
        say(f"voice commands off: {exc}")
        yield
        return
    say("listening for spoken commands")
    try:
        yield
    finally:
        listener.stop()


def run_describer(
    settings: Settings, options: DescriberOptions, *, say: Callable[[str], None] = print
) -> int:
    """Describe until quit, Ctrl-C, the duration, or the end of a video file."""
    if settings.camera.source is None:
        raise HeronError("no camera source: pass --camera (a device index, file or URL)")
    camera = VideoSource(settings.camera, on_status=lambda _s, message: say(f"camera: {message}"))
    camera.start()
    done = threading.Event()
    own_voice = OwnVoice()

    def spoken(item: Spoken) -> None:
        own_voice.record(item)
        if isinstance(item.output, Say):
            say(f"said: {item.output.text}")

    sink: AudioSink = (
        WavFileSink(options.wav, gap_s=0.3)
        if options.wav
        else SpeakerSink(settings.speaker, keep_alive_s=math.inf)
    )
    synthesizer = Synthesizer(settings.tts)
    announcer = Announcer(synthesizer, sink, on_spoken=spoken)
    tracker = KeyframeTracker(camera, settings.keyframes).start()
    # the scene channel asks the model when one is configured, grounded in local findings
    vlm = VLMClient(settings.vlm) if settings.vlm.enabled else None
    channels = build_channels(settings.keyframes, verbosity=options.verbosity, vlm=vlm)
    describer = SceneDescriber(
        tracker,
        channels,
        announcer,
        tts=settings.tts,
        channel=options.channel,
        verbosity=options.verbosity,
        on_quit=done.set,
    )

    def command(text: str) -> None:
        result = describer.command(text)
        if result is not None:
            say(f"[{result}]")

    def heard(utterance: Utterance) -> None:
        if own_voice.heard_self(utterance):
            return
        say(f"heard: {utterance.text}")
        command(utterance.text)

    say(HELP)
    try:
        with contextlib.ExitStack() as stack:
            if options.voice:
                stack.enter_context(_listening(settings, heard, say))
            if options.keys:
                threading.Thread(target=_read_keys, args=(command, done), daemon=True).start()
            describer.start()
            stack.callback(describer.stop)
            announcer.say(Say(f"{options.channel.capitalize()}.", guidance=True))
            deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
            while not done.wait(0.1):
                if deadline is not None and time.monotonic() > deadline:
                    break
                if tracker.ended and not describer.running and announcer.idle():
                    say("camera: no more frames")
                    break
    except KeyboardInterrupt:
        say("stopping…")
    finally:
        tracker.stop()
        camera.stop()
        announcer.wait_idle(5.0)
        announcer.close()
        sink.close()
        synthesizer.close()
    return 0
