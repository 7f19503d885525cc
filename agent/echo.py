"""Acoustic echo cancellation: heron must not hear its own voice as the user.

The live loop hands :class:`EchoCanceller` what it plays (``add_reference``, from
the playback thread) and every microphone chunk (``process``, from the capture
thread); ``process`` returns the chunk with heron's voice removed, 10 ms later.

How it lines the two streams up: both are placed on one 16 kHz timeline from
their monotonic timestamps (``t_play`` of the first played sample, ``t_capture``
of the first captured one). The true speaker-to-microphone delay still differs
from what the timestamps say by output and input buffering, tens to hundreds of
ms, and jumps whenever the output underflows, so a GCC-PHAT estimator measures it
from the signals every 100 ms while heron speaks and the reference is fed to the
canceller at the measured delay. The canceller (WebRTC's AEC3 from the ``livekit``
wheel, or the built-in NLMS filter) removes what remains. AEC3's suppressor also
hides the first 100-700 ms of a user's voice that overlaps heron's, and garbles
it (often the VAD never finds it), so ``keep_user_voice`` (on by default) passes
the NLMS output instead while such double talk is detected: barge-in is then
found within about 150 ms, at the price of an occasional leak of heron's voice
when the output device glitches (see bench/echo.py).

The reference may come as whole replies or as the blocks a device callback plays
(each with the time it reaches the output): blocks that continue one another
within 20 ms are joined into one stream, so jittery block timestamps do not tear
it. ``add_reference`` only queues, so it is safe on the audio thread.

Fallback policy: until the echo is measurably reduced (``converged``), heron's
own voice can still reach the VAD, so :meth:`EchoCanceller.suggested_vad_threshold`
raises the speech threshold while the reference plays and for ``tail_s`` after;
a user talking over heron is still louder than that. With ``backend = "off"``
this threshold is the only protection.

When playback is stopped early (barge-in), call :meth:`truncate_reference` with
the stop time: a reference that never sounded would otherwise be "cancelled" out
of the microphone, adding heron's voice, inverted, to the user's.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr

from .config import EchoConfig
from .echo_backends import (
    FRAME,
    DoubleTalkBackend,
    EchoBackend,
    NLMSBackend,
    PassThrough,
    WebRTCBackend,
)
from .echo_backends import estimate_delay as _estimate_delay
from .errors import ConfigError, SinkError
from .events import SAMPLE_RATE, AudioChunk

__all__ = ["LATENCY_S", "EchoCanceller", "EchoStats", "create_backend"]

log = logging.getLogger(__name__)

LATENCY_S = FRAME / SAMPLE_RATE
"""What :meth:`EchoCanceller.process` delays the audio by (it works on 10 ms frames)."""

_ESTIMATE_EVERY = 10  # frames: a delay estimate every 100 ms while heron speaks
_WINDOW = SAMPLE_RATE // 2  # 0.5 s of microphone per estimate
_MIN_CONFIDENCE = 8.0  # GCC-PHAT peak over the mean; echo-free windows stay near 3-5
_SURE_CONFIDENCE = 20.0  # a first lock, or a big jump, needs a peak this clear
_SILENT = 1e-6  # mean square below which a frame carries no reference or echo
_ANCHOR_TOLERANCE_S = 0.02  # timestamp jumps beyond this re-anchor the microphone clock
_KEEP_S = 3.0  # reference audio kept behind the microphone for the estimator
_BIG_JUMP = SAMPLE_RATE * 3 // 100  # 30 ms: more than an underflow or a new sentence moves it
_SETTLE = SAMPLE_RATE // 2  # after an echo path change the threshold stays raised this long
_EARLY = SAMPLE_RATE // 5  # the echo may also come up to 200 ms before its timestamp


def create_backend(name: str, *, keep_user_voice: bool = True) -> EchoBackend:
    """The canceller named in :class:`EchoConfig`; ``auto`` prefers WebRTC's AEC3."""
    if name == "off":
        return PassThrough()
    if name == "nlms":
        return NLMSBackend()
    try:
        return DoubleTalkBackend() if keep_user_voice else WebRTCBackend()
    except ImportError as exc:
        if name == "webrtc":
            raise ConfigError(
                f"echo backend 'webrtc' needs the livekit package ({exc}); "
                "install it, or set HERON_ECHO_BACKEND=nlms"
            ) from exc
        log.info("livekit is not installed (%s); using the NLMS echo canceller", exc)
        return NLMSBackend()


@dataclass(frozen=True)
class EchoStats:
    """How cancellation is going, for the live display and the fallback policy."""

    backend: str
    echo_active: bool
    erle_db: float | None
    """Recent echo return loss enhancement (input over output power while heron
    speaks); ``None`` before any echo was heard. Double talk lowers it too."""
    delay_ms: float | None
    """Measured echo delay behind the timestamps; ``None`` until measured."""
    frames: int
    seconds_processing: float
    """CPU seconds spent in :meth:`EchoCanceller.process` (10 ms per frame of audio)."""


class _Timeline:
    """Reference audio by 16 kHz sample position: a ring buffer plus the spans written.

    Blocks that continue the previous one (within the anchor tolerance) are placed
    right after it and resampled as one stream, so per-block timestamps that jitter
    do not tear the reference apart; a block that does not continue starts a span.
    """

    def __init__(self, seconds: float = 60.0) -> None:
        self._size = int(seconds * SAMPLE_RATE)
        self._ring = np.zeros(self._size, np.float32)
        self.spans: list[list[int]] = []  # [start, end), in order
        self._rate = 0
        self._resampler: soxr.ResampleStream | None = None
        self._input_end: float | None = None
        self.last_break: int | None = None
        """Where the reference last started anew (a reply, or a jump in the output)."""

    def add(self, position: int, samples: np.ndarray, sample_rate: int) -> None:
        # Where the previous block's input ended (its output may be held back in the
        # resampler, so the span's end is not the place to compare with). Further off
        # than the tolerance, the device really skipped or paused: a new span.
        end = self._input_end
        joins = end is not None and abs(position - end) <= _ANCHOR_TOLERANCE_S * SAMPLE_RATE
        if joins and end is not None:
            position = round(end)
        self._input_end = position + len(samples) * SAMPLE_RATE / sample_rate
        if not (joins and sample_rate == self._rate):
            self._rate = sample_rate
            self._resampler = None
            if sample_rate != SAMPLE_RATE:
                self._resampler = soxr.ResampleStream(
                    sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="QQ"
                )
            self.spans.append([position, position])
            self.last_break = position
        data = samples if self._resampler is None else self._resampler.resample_chunk(samples)
        # A minute of buffer: longer single pieces keep their first part.
        data = data[: self._size - 10 * SAMPLE_RATE]
        span = self.spans[-1]
        start = span[1]
        index = np.arange(start, start + len(data)) % self._size
        self._ring[index] = data
        span[1] = start + len(data)

    def truncate(self, stop: int) -> None:
        for span in self.spans:
            span[1] = min(span[1], max(span[0], stop))
        self.spans = [s for s in self.spans if s[1] > s[0]]
        self._resampler, self._rate, self._input_end = None, 0, None  # a new stream follows

    def prune(self, before: int) -> None:
        self.spans = [s for s in self.spans[:-1] if s[1] > before] + self.spans[-1:]

    def read(self, start: int, count: int) -> np.ndarray:
        out = np.zeros(count, np.float32)
        for first, end in self.spans:
            lo, hi = max(start, first), min(start + count, end)
            if lo < hi:
                out[lo - start : hi - start] = self._ring[np.arange(lo, hi) % self._size]
        return out

    def overlaps(self, lo: int, hi: int) -> bool:
        return any(first < hi and end > lo for first, end in self.spans)


class EchoCanceller:
    """Removes heron's own voice from the microphone; safe to feed from two threads."""

    def __init__(
        self, config: EchoConfig | None = None, *, backend: EchoBackend | None = None
    ) -> None:
        self.config = config or EchoConfig()
        self.backend = backend or create_backend(
            self.config.backend, keep_user_voice=self.config.keep_user_voice
        )
        self._lock = threading.Lock()
        self._origin = time.monotonic()
        self._max_delay = int(self.config.max_delay_s * SAMPLE_RATE)
        self._tail = int(self.config.tail_s * SAMPLE_RATE)
        self._reset_state()
        log.info("echo cancellation: %s", self.backend.name)

    def _reset_state(self) -> None:
        self._timeline = _Timeline()
        self._incoming: deque[tuple[np.ndarray, int, float]] = deque()
        self._pending = np.zeros(0, np.float32)  # input not yet a whole frame
        self._ready = np.zeros(FRAME, np.float32)  # output owed: LATENCY_S of it
        self._next: int | None = None  # timeline position of _pending[0]
        self._anchor: tuple[int, float] | None = None
        self._history = np.zeros(0, np.float32)  # recent microphone input, for estimates
        self._delay: int | None = None  # measured echo delay, samples
        self._feed_delay = -self.backend.margin  # reference read this far behind the mic
        self._candidate: int | None = None
        self._moved_at: int | None = None  # where the feed last moved to a new delay
        self._frames = 0
        self._busy_s = 0.0
        self._power_in = self._power_out = 0.0

    def reset(self) -> None:
        """Forget all audio and measurements (a new session, another device)."""
        with self._lock:
            self.backend.reset()
            self._reset_state()

    def _position(self, t: float) -> int:
        return round((t - self._origin) * SAMPLE_RATE)

    # -- the playback side -------------------------------------------------------

    def add_reference(self, samples: np.ndarray, sample_rate: int, t_play: float) -> None:
        """Audio handed to the speaker; ``t_play`` is when its first sample sounds.

        An estimate is fine (the echo delay is measured), as long as it is made
        before the echo arrives: call this when the audio is handed to the device.
        """
        if sample_rate <= 0:
            raise SinkError(f"reference audio needs a positive sample rate, not {sample_rate}")
        data = np.array(samples, np.float32)  # a copy: the caller may reuse its buffer
        mono = data.mean(axis=1) if data.ndim == 2 else data.reshape(-1)
        if len(mono):
            # Only queued here: this may run on the audio device's real-time thread.
            self._incoming.append((np.nan_to_num(mono), int(sample_rate), t_play))

    def truncate_reference(self, t_stop: float) -> None:
        """Playback stopped at ``t_stop``: nothing after it will echo."""
        with self._lock:
            self._drain()
            self._timeline.truncate(self._position(t_stop))

    def _drain(self) -> None:
        """Move queued reference audio onto the timeline (under the lock)."""
        while self._incoming:
            samples, rate, t_play = self._incoming.popleft()
            self._timeline.add(self._position(t_play), samples, rate)

    # -- the microphone side -----------------------------------------------------

    def process_chunk(self, chunk: AudioChunk) -> AudioChunk:
        """:meth:`process` for an :class:`AudioChunk`, with its capture time kept true."""
        out = self.process(chunk.samples, chunk.t_capture)
        return AudioChunk(samples=out, t_capture=chunk.t_capture - LATENCY_S)

    def process(self, chunk: np.ndarray, t_capture: float) -> np.ndarray:
        """The chunk with the echo removed, delayed by :data:`LATENCY_S`.

        The output has the chunk's length; its first sample was captured at
        ``t_capture - LATENCY_S``.
        """
        samples = np.nan_to_num(np.asarray(chunk, np.float32).reshape(-1))
        started = time.thread_time()  # CPU time: what it costs, whatever else runs
        with self._lock:
            self._drain()
            self._place(len(samples), t_capture)
            self._pending = np.concatenate([self._pending, samples])
            done = [self._ready]
            while len(self._pending) >= FRAME:
                frame, self._pending = self._pending[:FRAME], self._pending[FRAME:]
                assert self._next is not None
                done.append(self._frame(frame, self._next))
                self._next += FRAME
            ready = np.concatenate(done)
            out, self._ready = ready[: len(samples)], ready[len(samples) :]
            self._busy_s += time.thread_time() - started
        return out

    def _place(self, count: int, t_capture: float) -> None:
        """Keep the microphone's timeline position continuous unless its clock jumped."""
        position = self._position(t_capture)
        if self._anchor is not None and self._next is not None:
            expected = self._next + len(self._pending)
            if abs(position - expected) <= _ANCHOR_TOLERANCE_S * SAMPLE_RATE:
                return
            log.debug("microphone clock moved %d samples; re-anchoring", position - expected)
            self._history = np.zeros(0, np.float32)
        self._anchor = (position, t_capture)
        self._next = position - len(self._pending)

    def _frame(self, mic: np.ndarray, position: int) -> np.ndarray:
        self._frames += 1
        self._history = np.concatenate([self._history, mic])[-_WINDOW:]
        if self._frames % _ESTIMATE_EVERY == 0 and self.backend.name != "off":
            self._track_delay(position + FRAME)
        ref = self._timeline.read(position - self._feed_delay, FRAME)
        out = self.backend.process(mic, ref)
        self._measure(mic, out, position)
        if self._frames % 100 == 0:
            self._timeline.prune(position - self._max_delay - int(_KEEP_S * SAMPLE_RATE))
        return out

    def _track_delay(self, end: int) -> None:
        """Measure the echo delay over the last half second and move the feed to it."""
        mic = self._history
        if len(mic) < _WINDOW // 2 or np.mean(mic**2) < _SILENT:
            return
        early = self.backend.margin + _EARLY
        ref = self._timeline.read(
            end - len(mic) - self._max_delay, len(mic) + self._max_delay + early
        )
        if np.mean(ref**2) < _SILENT:
            return
        found = _estimate_delay(mic, ref, self._max_delay)
        if found.confidence < _MIN_CONFIDENCE:
            return
        agrees = self._candidate is not None and abs(found.delay - self._candidate) <= FRAME // 10
        self._candidate = found.delay
        # The first lock may be taken on one clear peak; a change of a held delay must be
        # seen twice in a row (speech repeats itself, and a lone peak can be a rhythm).
        if not agrees and (self._delay is not None or found.confidence < _SURE_CONFIDENCE):
            return
        big_jump = self._delay is not None and abs(found.delay - self._delay) > _BIG_JUMP
        if big_jump and found.confidence < _SURE_CONFIDENCE:
            return  # moving the feed far on a weak peak would lose the echo altogether
        if self._delay is None:
            log.debug("echo delay %.1f ms (confidence %.0f)", found.delay / 16, found.confidence)
        self._delay = found.delay
        # Keep the echo exactly ``margin`` behind the feed: a jump in the delay (a new
        # sentence, an underflow) is then undone here instead of re-learnt by the filter.
        behind_feed = found.delay - self._feed_delay
        if abs(behind_feed - self.backend.margin) > FRAME // 10:
            self._moved_at = end
            wanted = found.delay - self.backend.margin
            self.backend.realign(wanted - self._feed_delay)
            self._feed_delay = wanted

    def _measure(self, mic: np.ndarray, out: np.ndarray, position: int) -> None:
        """Smoothed input and output power while heron's voice can be in the mic."""
        if not self._active_at(position) or getattr(self.backend, "double_talk", False):
            return  # (the user's voice on top is not echo left over)
        alpha = 0.02  # about half a second
        self._power_in += alpha * (float(np.mean(mic**2)) - self._power_in)
        self._power_out += alpha * (float(np.mean(out**2)) - self._power_out)

    def _active_at(self, position: int) -> bool:
        delay = max(self._delay or 0, 0) + self.backend.margin
        lo = position - delay - self._tail
        hi = position + FRAME + self.backend.margin
        return self._timeline.overlaps(lo, hi)

    # -- the policy ----------------------------------------------------------------

    def echo_active(self) -> bool:
        """True while heron's voice can be in the microphone (plus ``tail_s``)."""
        with self._lock:
            self._drain()
            now = self._position(time.monotonic())
            position = now if self._next is None else self._next
            return self._active_at(position)

    @property
    def erle_db(self) -> float | None:
        """Recent echo reduction in dB while heron speaks (see :class:`EchoStats`)."""
        with self._lock:
            if self._power_in < _SILENT:
                return None
            return 10.0 * math.log10(self._power_in / max(self._power_out, 1e-12))

    def converged(self) -> bool:
        """True when the echo is reduced by at least ``converged_erle_db``."""
        erle = self.erle_db
        return erle is not None and erle >= self.config.converged_erle_db

    def suggested_vad_threshold(self, base: float) -> float:
        """The VAD speech threshold to use now, given the configured ``base``.

        ``base`` when nothing is playing or the echo is being cancelled. While heron's
        voice is in the microphone and cancellation has not (yet) got hold of it
        (ERLE below ``converged_erle_db``, or the first 500 ms after a reply starts
        or the echo path jumps), ``raised_vad_threshold``: a user talking over heron
        still passes it.
        """
        if not self.echo_active() or (self.converged() and not self._unsettled()):
            return base
        return max(base, self.config.raised_vad_threshold)

    def _unsettled(self) -> bool:
        """The echo path just changed: a new reply or an output jump, a moved feed.

        The filters take a few hundred ms to catch up; ERLE, smoothed over half a
        second, would only show it afterwards.
        """
        with self._lock:
            self._drain()
            now = self._next if self._next is not None else self._position(time.monotonic())
            changes = (self._timeline.last_break, self._moved_at)
            delay = max(self._delay or 0, 0)
            return any(c is not None and 0 <= now - c - delay < _SETTLE for c in changes)

    def stats(self) -> EchoStats:
        with self._lock:
            delay = None if self._delay is None else self._delay * 1000 / SAMPLE_RATE
            frames, busy = self._frames, self._busy_s
        return EchoStats(
            backend=self.backend.name,
            echo_active=self.echo_active(),
            erle_db=self.erle_db,
            delay_ms=delay,
            frames=frames,
            seconds_processing=busy,
        )
