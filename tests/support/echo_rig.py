"""heron talking while it listens, through the virtual devices, for echo tests.

Replies play through :class:`SpeakerSink` (sounddevice → PulseAudio null sink);
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heron.agent.audio_source import MicrophoneSource
from heron.agent.config import MicrophoneConfig, SpeakerConfig
from heron.agent.echo import EchoCanceller, EchoStats
from heron.agent.echo_backends import FRAME
from heron.agent.events import SAMPLE_RATE
from heron.agent.playback import PlaybackResult, SpeakerSink
from heron.agent.tts import Synthesis
from heron.agent.vad import SpeechStarted, UtteranceSegmenter


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
) -> Take:
    """Play ``replies`` while listening; returns the aligned recording.

    ``user`` is (WAV file, seconds after the first reply starts) to play with paplay
    into the default sink; ``barge_in`` stops playback at the first detected speech;
    ``segment_all`` counts utterances in every canceller's output. As in the live
    loop, each segmenter's threshold follows the canceller's fallback policy.
    """
    mic = MicrophoneSource(MicrophoneConfig(device=device))
    sink = SpeakerSink(SpeakerConfig(device=device))
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
