"""heron talking while it listens, through the virtual devices, for echo tests.

Replies play through sounddevice into a PulseAudio null sink (:class:`SteadyPlayer`,
or heron's :class:`SpeakerSink`), which reports each block it plays as the live loop's does;
the sink's monitor is the microphone (:class:`MicrophoneSource`), so heron's voice
comes back into it, delayed by the audio server's buffering. Every microphone
chunk goes live through each :class:`EchoCanceller` under test and, for the first
one, through a VAD segmenter; a user recording can be played into the sink with
``paplay`` part-way through a reply, and the first detected speech can stop the
playback the way barge-in does.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from heron.agent.audio_source import MicrophoneSource
from heron.agent.config import MicrophoneConfig, SpeakerConfig
from heron.agent.echo import EchoCanceller, EchoStats
from heron.agent.echo_backends import FRAME
from heron.agent.events import SAMPLE_RATE
from heron.agent.playback import PlaybackResult, SpeakerSink
from heron.agent.tts import Synthesis
from heron.agent.vad import SpeechStarted, UtteranceSegmenter


class SteadyPlayer:
    """A sounddevice output stream with a generous buffer, reporting what it plays.

    Like :class:`SpeakerSink` (one ``play`` at a time, ``on_output`` called from the
    audio thread with each block and the time it reaches the output) but asking
    PortAudio for its "high" latency: on a loaded 2-core machine the low-latency
    sink underflows, and the audio server then drops or rushes whole stretches of a
    reply, which tests of the canceller should not depend on.
    """

    def __init__(self, device: str) -> None:
        import sounddevice as sd

        self._sd = sd
        self.device = device
        self.on_output: Callable[[np.ndarray, int, float], None] | None = None
        self._lock = threading.Lock()
        self._stream: Any = None
        self._rate = 0
        self._data = np.zeros(0, np.float32)
        self._pos = 0
        self._t_first: float | None = None
        self._t_drained = 0.0
        self._done = threading.Event()

    def _open(self, rate: int) -> None:
        if self._stream is not None and rate == self._rate:
            return
        self.close()
        self._rate = rate
        self._stream = self._sd.OutputStream(
            samplerate=rate,
            device=self.device,
            channels=1,
            dtype="float32",
            latency="high",
            callback=self._callback,
        )
        self._stream.start()

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        with self._lock:
            block = self._data[self._pos : self._pos + frames]
            outdata[: len(block), 0] = block
            outdata[len(block) :] = 0
            if not len(block):
                return
            now = time.monotonic()
            t_out = now + max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
            self._t_first = self._t_first or now
            self._pos += len(block)
            if self.on_output is not None:
                self.on_output(block.copy(), self._rate, t_out)
            if self._pos >= len(self._data):
                self._t_drained = t_out + len(block) / self._rate
                self._done.set()

    def play(
        self, samples: np.ndarray, sample_rate: int, *, cancel: threading.Event | None = None
    ) -> PlaybackResult:
        t_start = time.monotonic()
        self._open(sample_rate)
        with self._lock:
            self._data, self._pos, self._t_first = np.asarray(samples, np.float32), 0, None
            self._done.clear()
        duration = len(samples) / sample_rate
        while not self._done.wait(0.02):
            if (
                cancel is not None and cancel.is_set()
            ) or time.monotonic() > t_start + duration + 5:
                break
        interrupted = not self._done.is_set()
        with self._lock:
            played = self._pos / sample_rate
            self._data = np.zeros(0, np.float32)
        if not interrupted:
            time.sleep(max(0.0, self._t_drained - time.monotonic()))
        return PlaybackResult(t_start, self._t_first, time.monotonic(), played, interrupted)

    def stop(self) -> None:
        """Silence now: aborting the stream also drops what the device had buffered."""
        with self._lock:
            self._data = np.zeros(0, np.float32)
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.abort(ignore_errors=True)
            self._stream.close(ignore_errors=True)
            self._stream = None


@dataclass
class Take:
    """One recording: the raw microphone and each canceller's output, aligned."""

    raw: np.ndarray
    t0: float
    """Capture time of ``raw[0]``."""
    outputs: dict[str, np.ndarray]
    spans: list[tuple[float, float]]
    """(handed to the sink, end) of each reply actually played, monotonic seconds."""
    events: list[object] = field(default_factory=list)
    """Segmenter events on the first canceller's output, in order."""
    heard: dict[str, int] = field(default_factory=dict)
    """Utterances started in each canceller's output (with ``segment_all``)."""
    stats: dict[str, EchoStats] = field(default_factory=dict)
    played: list[PlaybackResult] = field(default_factory=list)
    t_user: float | None = None
    """When ``paplay`` was started for the user's recording."""
    t_barge_in: float | None = None
    replies: list[Synthesis] = field(default_factory=list)
    """The replies played (``spans`` in the same order)."""

    def index(self, t: float) -> int:
        return round((t - self.t0) * SAMPLE_RATE)

    def echo_mask(self, after_s: float = 0.0, tail_s: float = 0.3) -> np.ndarray:
        """Samples where heron's voice can be in the microphone (``after_s`` into each)."""
        mask = np.zeros(len(self.raw), bool)
        for start, end in self.spans:
            mask[max(0, self.index(start + after_s)) : max(0, self.index(end + tail_s))] = True
        return mask

    def erle_db(self, name: str, mask: np.ndarray) -> float:
        """Echo return loss enhancement over ``mask``: input power over output power."""
        raw, out = self.raw[mask], self.outputs[name][mask]
        return float(10 * np.log10(np.sum(raw**2) / max(float(np.sum(out**2)), 1e-12)))


def speak_and_listen(
    device: str,
    replies: Sequence[Synthesis],
    cancellers: dict[str, EchoCanceller],
    *,
    segmenter: UtteranceSegmenter | None = None,
    gap_s: float = 0.4,
    user: tuple[Path, float] | None = None,
    barge_in: bool = False,
    tail_s: float = 1.0,
    segment_all: bool = False,
    steady: bool = True,
) -> Take:
    """Play ``replies`` while listening; returns the aligned recording.

    ``user`` is (WAV file, seconds after the first reply starts) to play with paplay
    into the default sink; ``barge_in`` stops playback at the first detected speech;
    ``segment_all`` counts utterances in every canceller's output. As in the live
    loop, each segmenter's threshold follows the canceller's fallback policy.
    ``steady`` plays through :class:`SteadyPlayer` instead of heron's own sink.
    """
    mic = MicrophoneSource(MicrophoneConfig(device=device))
    sink: SteadyPlayer | SpeakerSink = (
        SteadyPlayer(device) if steady else SpeakerSink(SpeakerConfig(device=device))
    )
    first = next(iter(cancellers))
    segmenters = {first: segmenter} if segmenter is not None else {}
    if segment_all:
        segmenters.update({n: UtteranceSegmenter() for n in cancellers if n not in segmenters})
    take_heard = dict.fromkeys(segmenters, 0)
    raw: list[np.ndarray] = []
    outs: dict[str, list[np.ndarray]] = {name: [] for name in cancellers}
    take = Take(np.zeros(0, np.float32), 0.0, {}, [])
    done = threading.Event()
    stop_playing = threading.Event()
    errors: list[BaseException] = []

    def listen() -> None:
        try:
            while not done.is_set():
                chunk = mic.read(timeout=2.0)
                if chunk is None:
                    return
                if not raw:
                    take.t0 = chunk.t_capture
                raw.append(chunk.samples)
                for name, canceller in cancellers.items():
                    listening = segmenters.get(name)
                    if listening is not None and hasattr(listening, "set_threshold"):
                        base = listening.config.threshold
                        listening.set_threshold(canceller.suggested_vad_threshold(base))
                    heard = canceller.process_chunk(chunk)
                    outs[name].append(heard.samples)
                    if listening is None:
                        continue
                    for event in listening.push(heard):
                        if isinstance(event, SpeechStarted):
                            take_heard[name] += 1
                        if name != first:
                            continue
                        take.events.append(event)
                        if barge_in and isinstance(event, SpeechStarted):
                            stop_now()
        except BaseException as exc:
            errors.append(exc)

    def stop_now() -> None:
        if stop_playing.is_set():
            return
        take.t_barge_in = time.monotonic()
        stop_playing.set()
        sink.stop()
        for canceller in cancellers.values():
            canceller.truncate_reference(take.t_barge_in)

    player: subprocess.Popen[bytes] | None = None
    timer: threading.Timer | None = None

    def start_user(path: Path) -> None:
        nonlocal player
        take.t_user = time.monotonic()
        player = subprocess.Popen(["paplay", str(path)])

    def feed(block: np.ndarray, rate: int, t_out: float) -> None:  # the audio thread
        for canceller in cancellers.values():
            canceller.add_reference(block, rate, t_out)

    # The sink reports each block it plays with the time it reaches the output, as in
    # the live loop; a sink without that hook gets whole replies at hand-off instead.
    per_block = hasattr(sink, "on_output")
    if per_block:
        sink.on_output = feed
    mic.start()
    listener = threading.Thread(target=listen, name="echo-rig-listen", daemon=True)
    listener.start()
    try:
        # A new PulseAudio stream starts late and drops its first blocks: start the
        # output on silence so the replies play on a running stream.
        rate = replies[0].sample_rate if replies else SAMPLE_RATE
        sink.play(np.zeros(rate // 2, np.float32), rate)
        for number, reply in enumerate(replies):
            if stop_playing.is_set():
                break
            t_handed = time.monotonic()
            if not per_block:
                feed(reply.samples, reply.sample_rate, t_handed)
            if number == 0 and user is not None:
                timer = threading.Timer(user[1], lambda: start_user(user[0]))
                timer.start()
            result = sink.play(reply.samples, reply.sample_rate, cancel=stop_playing)
            take.played.append(result)
            take.replies.append(reply)
            take.spans.append((t_handed, t_handed + result.seconds_played))
            time.sleep(gap_s)

        def user_playing() -> bool:
            waiting = timer is not None and timer.is_alive()
            return waiting or (player is not None and player.poll() is None)

        while user_playing():
            time.sleep(0.05)
        time.sleep(tail_s)
    finally:
        if timer is not None:
            timer.cancel()
        done.set()
        mic.stop()
        listener.join(timeout=5)
        sink.close()
        if player is not None and player.poll() is None:
            player.kill()
    if errors:
        raise errors[0]
    if segmenter is not None:
        take.events += segmenter.flush()  # an utterance still open when recording stopped
    take.heard = take_heard

    take.raw = np.concatenate(raw)
    # Each canceller's output lags by one frame; line it up with the raw input.
    for name, pieces in outs.items():
        out = np.concatenate(pieces)[FRAME:]
        take.outputs[name] = np.concatenate([out, np.zeros(FRAME, np.float32)])
    take.stats = {name: canceller.stats() for name, canceller in cancellers.items()}
    return take
