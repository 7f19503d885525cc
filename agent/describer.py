"""The accessibility scene describer: channels over a live camera, spoken, no screen needed.

:class:`SceneDescriber` takes the newest analysed frame from a
:class:`~heron.agent.keyframes.KeyframeTracker` on its own worker thread (so OCR
never holds up frame analysis, and analysis never holds up capture), hands it to
the current channel, and passes what the channel wants said to an
:class:`Announcer`, which speaks on a thread of its own through any
:class:`~heron.agent.playback.AudioSink` (a speaker or a WAV file). Channels,
verbosity and speech rate change at any time, by key or by voice, through
:meth:`SceneDescriber.command`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heron.tools.codes import CodeScanner
from heron.tools.colours import dominant_colours
from heron.tools.observation import Perceiver
from heron.tools.ocr import TextReader
from heron.tools.people import FaceFinder
from heron.tools.scene import DescribeSceneTool

from .config import KeyframeConfig, TTSConfig
from .describe import say_codes, say_colours, say_people, say_text
from .describer_channels import (
    CHANNELS,
    Channel,
    ChannelName,
    LightChannel,
    Output,
    Say,
    ShortTextChannel,
    Tone,
    ToolChannel,
    Verbosity,
    parse_command,
    tone_samples,
)
from .keyframes import KeyframeTracker
from .playback import AudioSink, Speaker
from .tts import Synthesizer
from .vlm import VLMClient

log = logging.getLogger(__name__)

RATE_STEP = 30
VERBOSITIES: tuple[Verbosity, ...] = ("brief", "normal", "detailed")
TONE_RATE = 22_050


@dataclass(frozen=True, slots=True)
class Spoken:
    """One output as it was played; times are monotonic seconds."""

    output: Output
    t_queued: float
    t_first_audio: float | None
    t_end: float


class Announcer:
    """Speaks and plays tones in order on its own thread.

    Speech waits behind speech; a tone that would wait behind more than one other
    output is dropped (a stale pitch is worse than none). :meth:`interrupt` stops
    what is playing and drops what waits.
    """

    def __init__(
        self,
        synthesizer: Synthesizer,
        sink: AudioSink,
        *,
        on_spoken: Callable[[Spoken], None] | None = None,
    ) -> None:
        self.speaker = Speaker(synthesizer, sink)
        self.sink = sink
        self.on_spoken = on_spoken
        self.history: list[Spoken] = []
        self._queue: queue.Queue[tuple[Output, float] | None] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="heron-announce", daemon=True)
        self._thread.start()

    def say(self, output: Output) -> None:
        with self._pending_lock:
            if isinstance(output, Tone) and self._pending > 1:
                return
            self._pending += 1
        self._queue.put((output, time.monotonic()))

    def set_synthesizer(self, synthesizer: Synthesizer) -> None:
        self.speaker.synthesizer = synthesizer

    def interrupt(self) -> None:
        try:
            while True:
                if self._queue.get_nowait() is not None:
                    self._done()
        except queue.Empty:
            pass
        self.speaker.stop()

    def _done(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    def idle(self) -> bool:
        """True when nothing is playing or waiting to."""
        with self._pending_lock:
            return self._pending == 0

    def wait_idle(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self.interrupt()
        self._queue.put(None)
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            output, t_queued = work
            try:
                if isinstance(output, Tone):
                    result = self.sink.play(
                        tone_samples(output.frequency, output.duration_s), TONE_RATE
                    )
                    t_first, t_end = result.t_first_audio, result.t_end
                else:
                    out = self.speaker.say(output.text)
                    t_first, t_end = out.t_first_audio, out.t_end
                spoken = Spoken(output, t_queued, t_first, t_end)
                self.history.append(spoken)
                if self.on_spoken is not None:
                    self.on_spoken(spoken)
            except Exception:  # one failed output must not silence the describer
                log.exception("could not play %r", output)
            finally:
                self._done()


def build_channels(
    config: KeyframeConfig,
    *,
    verbosity: Verbosity = "normal",
    clock: Callable[[], float] = time.monotonic,
    reader: TextReader | None = None,
    vlm: VLMClient | None = None,
) -> dict[ChannelName, Channel]:
    """The seven channels, with the local perception tools behind them.

    ``vlm`` (optional) lets the scene channel ask the model, grounded in what the
    local tools found; without it the scene is described from the tools alone.
    """
    reader = reader if reader is not None else TextReader()
    perceiver = Perceiver(reader=reader, scanner=CodeScanner(), faces=FaceFinder())
    scene = DescribeSceneTool(perceiver)

    def tool(
        name: ChannelName, run: Callable[[Any], Any], phrase: Callable[[Any], str], empty: str = ""
    ) -> ToolChannel:
        return ToolChannel(name, run, phrase, config, clock, empty)

    return {
        "text": ShortTextChannel(reader, config, verbosity=verbosity, clock=clock),
        "document": tool(
            "document",
            lambda image: reader.read(image, min_confidence=0.5, mode="document"),
            lambda reading: say_text(reading, max_words=None),
            "No text in view.",
        ),
        "codes": tool("codes", perceiver.scanner.scan, say_codes, "No code in view."),
        "people": tool(
            "people",
            perceiver.faces.count,
            lambda count: say_people(count, none="No one facing the camera."),
        ),
        "colour": tool("colour", dominant_colours, say_colours),
        "light": LightChannel(clock=clock),
        "scene": tool(
            "scene", lambda image: scene.describe(image, vlm=vlm), lambda d: d.description
        ),
    }


class SceneDescriber:
    """Runs the current channel on the newest frames and speaks what it finds."""

    def __init__(
        self,
        tracker: KeyframeTracker,
        channels: dict[ChannelName, Channel],
        announcer: Announcer,
        *,
        tts: TTSConfig | None = None,
        channel: ChannelName = "text",
        verbosity: Verbosity = "normal",
        on_quit: Callable[[], None] | None = None,
    ) -> None:
        self.tracker = tracker
        self.channels = channels
        self.announcer = announcer
        self.tts = tts or TTSConfig()
        self.verbosity: Verbosity = verbosity
        self.on_quit = on_quit
        self.channel: ChannelName = channel
        self._switch: ChannelName | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None
        self.frames_handled = 0

    def start(self) -> SceneDescriber:
        self._thread = threading.Thread(target=self._run, name="heron-describe", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """True while the worker handles frames (it ends with the camera)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def command(self, text: str) -> str | None:
        """Apply a key or spoken command; returns what was done, None if not understood."""
        parsed = parse_command(text)
        if parsed is None:
            return None
        kind, value = parsed
        if kind == "channel":
            self.switch(value)  # type: ignore[arg-type]
            return f"channel {value}"
        if value in ("faster", "slower"):
            step = RATE_STEP if value == "faster" else -RATE_STEP
            rate = min(450, max(80, self.tts.rate + step))
            self.tts = self.tts.model_copy(update={"rate": rate})
            self.announcer.set_synthesizer(Synthesizer(self.tts))
            self.announcer.say(Say(f"Speech rate {rate}.", guidance=True))
            return f"rate {rate}"
        if value in ("more", "less", "verbosity"):
            index = VERBOSITIES.index(self.verbosity)
            step = {"more": 1, "less": -1}.get(value, 1)
            wrapped = (index + step) % 3 if value == "verbosity" else min(2, max(0, index + step))
            self.set_verbosity(VERBOSITIES[wrapped])
            self.announcer.say(Say(f"{self.verbosity.capitalize()}.", guidance=True))
            return f"verbosity {self.verbosity}"
        if value == "stop":
            with self._lock:
                self._paused = not self._paused
            self.announcer.interrupt()
            return "paused" if self._paused else "resumed"
        if value == "quit":
            self._stop.set()
            if self.on_quit is not None:
                self.on_quit()
            return "quit"
        return None

    def switch(self, name: ChannelName) -> None:
        if name not in CHANNELS:
            raise ValueError(f"no channel {name!r}; channels: {', '.join(CHANNELS)}")
        with self._lock:
            self._switch = name
            self._paused = False
        self.announcer.interrupt()
        self.announcer.say(Say(f"{name.capitalize()}.", guidance=True))

    def set_verbosity(self, verbosity: Verbosity) -> None:
        self.verbosity = verbosity
        for channel in self.channels.values():
            if hasattr(channel, "verbosity"):
                channel.verbosity = verbosity

    def _run(self) -> None:
        ring = self.tracker.ring
        t_last = float("-inf")
        while not self._stop.is_set():
            if not ring.wait_newer(t_last + 1e-6, 0.5):
                if self.tracker.ended:
                    return
                continue
            item = ring.latest()
            if item is None:
                continue
            t_last = item.t_capture
            with self._lock:
                if self._switch is not None:
                    self.channel, self._switch = self._switch, None
                    self.channels[self.channel].reset()
                paused, channel = self._paused, self.channels[self.channel]
            if paused:
                continue
            try:
                outputs = channel.on_frame(item)
            except Exception:
                log.exception("the %s channel failed on a frame", self.channel)
                continue
            self.frames_handled += 1
            for output in outputs:
                self.announcer.say(output)
