"""The signal processing behind :class:`heron.agent.echo.EchoCanceller`.

Two cancellers with one small interface (``process(mic, ref) -> out`` on 10 ms
frames of 16 kHz audio, the reference already aligned to the microphone), and the
delay estimator that does the aligning:

- :class:`WebRTCBackend`: WebRTC's AEC3 (adaptive filter, its own fine delay
  estimator, residual echo suppressor) through the ``livekit`` wheel's audio
  processing module. It runs locally; no LiveKit server is involved.
- :class:`NLMSBackend`: a partitioned frequency-domain NLMS filter (20 ms of taps)
  with double-talk protection, for platforms without that wheel.
- :func:`estimate_delay`: GCC-PHAT cross-correlation of microphone and reference,
  so the speaker-to-microphone delay (tens to hundreds of ms, jumping whenever the
  output underflows) is measured instead of assumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

FRAME = 160
"""Samples per processing frame: 10 ms at 16 kHz (what WebRTC's module requires)."""

_INT16 = 32767.0


class EchoBackend(Protocol):
    """Removes the echo of ``ref`` from ``mic``, one 10 ms frame at a time."""

    name: str
    margin: int
    """Samples by which the reference is fed ahead of the estimated echo delay."""

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray: ...

    def realign(self, shift: int) -> None:
        """The reference feed moved ``shift`` samples later in the timeline."""
        ...

    def reset(self) -> None: ...


class PassThrough:
    """No cancellation (``backend = "off"``): the fallback policy alone protects."""

    name = "off"
    margin = 0

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return mic

    def realign(self, shift: int) -> None:
        pass

    def reset(self) -> None:
        pass


class WebRTCBackend:
    """WebRTC AEC3 via ``livekit.rtc.AudioProcessingModule``.

    AEC3 finds echoes 0 to about 440 ms behind the reference it is fed (measured
    through PulseAudio), so the reference goes in ``margin`` (30 ms) ahead of the
    tracked delay: the delay may then shrink by 20 ms or grow by 250 ms before the
    feed has to move. (Not more ahead: reference blocks that arrive just before they
    sound must already be there when the microphone frame is processed.)
    """

    name = "webrtc"
    margin = FRAME * 3

    def __init__(self) -> None:
        from livekit import rtc  # ImportError when the wheel is missing: the caller decides

        self._rtc = rtc
        self._apm: Any = None
        self.reset()

    def reset(self) -> None:
        self._apm = self._rtc.AudioProcessingModule(
            echo_cancellation=True,
            high_pass_filter=True,  # mains hum and DC would cost the filter taps
            noise_suppression=False,  # the user's voice must reach the VAD unaltered
            auto_gain_control=False,
        )

    def _frame(self, samples: np.ndarray) -> Any:
        pcm = (np.clip(samples, -1.0, 1.0) * _INT16).astype(np.int16)
        return self._rtc.AudioFrame(
            data=pcm.tobytes(), sample_rate=16_000, num_channels=1, samples_per_channel=FRAME
        )

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        self._apm.process_reverse_stream(self._frame(ref))
        near = self._frame(mic)
        # The delay is AEC3's to find within its window; 0 says "no extra hint".
        self._apm.set_stream_delay_ms(0)
        self._apm.process_stream(near)
        return np.frombuffer(near.data, dtype=np.int16).astype(np.float32) / _INT16

    def realign(self, shift: int) -> None:
        pass  # AEC3 re-finds the delay within its window by itself


class NLMSBackend:
    """Partitioned-block frequency-domain NLMS (overlap-save), 20 ms of taps.

    The reference is fed 4 ms ahead of the tracked delay, so small errors in the
    delay estimate land inside the filter. Adaptation slows to a crawl when the
    error is much louder than the echo estimate after convergence: that is the
    user talking over heron (double talk), which must not be learnt as echo.
    """

    name = "nlms"
    margin = 64

    def __init__(self, partitions: int = 2, step: float = 0.5) -> None:
        self.partitions = partitions
        self.step = step
        self.reset()

    @property
    def double_talk(self) -> bool:
        """The error jumped far above the converged residual: another voice is there."""
        return self._frozen_frames > 0

    @property
    def converged(self) -> bool:
        """The usual residual is at least 10 dB below the echo estimate."""
        return self._usual_ratio < -1.0

    def reset(self) -> None:
        bins = FRAME + 1
        self._w = np.zeros((self.partitions, bins), np.complex128)
        self._x = np.zeros((self.partitions, bins), np.complex128)
        self._prev = np.zeros(FRAME, np.float64)
        self._power = np.zeros(bins, np.float64)
        self._usual_ratio = 3.0
        self._frozen_frames = 0
        self._worse_frames = 0

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        ref64 = ref.astype(np.float64)
        spectrum = np.fft.rfft(np.concatenate([self._prev, ref64]))
        self._prev = ref64
        self._x = np.roll(self._x, 1, axis=0)
        self._x[0] = spectrum
        estimate = np.fft.irfft((self._w * self._x).sum(axis=0))[FRAME:]
        error = mic.astype(np.float64) - estimate
        mic_energy = float(np.dot(mic, mic))
        self._adapt(error, estimate, mic_energy)
        if float(np.dot(error, error)) > mic_energy:
            # A filter that adds energy is wrong (the echo path moved, or the
            # reference never sounded): pass the microphone through instead.
            self._worse_frames += 1
            if self._worse_frames > 50:
                self.reset()
            return mic
        self._worse_frames = 0
        return error.astype(np.float32)

    def _adapt(self, error: np.ndarray, estimate: np.ndarray, mic_energy: float) -> None:
        if not np.any(self._x[0]):
            return  # nothing playing: nothing to learn
        e_energy, y_energy = float(np.dot(error, error)), float(np.dot(estimate, estimate))
        # What is left over what was taken as echo, in log10 units: 6 dB below is
        # "converged"; far more than usual after that is double talk.
        ratio = float(np.clip(np.log10((e_energy + 1e-12) / (y_energy + 1e-12)), -6.0, 3.0))
        step = self.step
        if self._usual_ratio < -0.6 and ratio > min(self._usual_ratio + 0.9, 0.3):
            # Learning now would fit the user's voice; a delay jump is undone by the
            # delay tracker instead. Four seconds of it is rather a changed echo path.
            self._frozen_frames += 1
            step *= 0.01
            if self._frozen_frames > 400:
                self._usual_ratio, self._frozen_frames = 0.0, 0
        else:
            self._frozen_frames = 0
            self._usual_ratio += 0.05 * (ratio - self._usual_ratio)
        frame_power = (np.abs(self._x) ** 2).sum(axis=0)
        self._power = 0.7 * self._power + 0.3 * frame_power
        norm = self._power + 1e-3 * (self._power.mean() + 1e-6)
        error_spectrum = np.fft.rfft(np.concatenate([np.zeros(FRAME), error]))
        gradient = np.conj(self._x) * error_spectrum / norm
        # Keep the filter causal: only the first half of each partition's taps.
        taps = np.fft.irfft(gradient, axis=1)
        taps[:, FRAME:] = 0.0
        self._w += step * np.fft.rfft(taps, axis=1)

    def realign(self, shift: int) -> None:
        """Move the taps with the reference, or start over when they would fall off."""
        if shift == 0:
            return
        taps = np.fft.irfft(self._w, axis=1)[:, :FRAME].reshape(-1)
        if abs(shift) >= len(taps) // 2:
            self.reset()
            return
        moved = np.zeros_like(taps)
        # The reference now comes ``shift`` samples later, so each tap sits earlier.
        if shift > 0:
            moved[:-shift] = taps[shift:]
        else:
            moved[-shift:] = taps[:shift]
        parts = np.zeros((self.partitions, 2 * FRAME))
        parts[:, :FRAME] = moved.reshape(self.partitions, FRAME)
        self._w = np.fft.rfft(parts, axis=1)
        self._usual_ratio = max(self._usual_ratio, 0.0)  # converge again before judging


@dataclass(frozen=True)
class DelayEstimate:
    delay: int
    """Samples by which the echo follows the reference (negative: it comes early)."""
    confidence: float
    """Height of the correlation peak over the mean of the searched lags."""


def estimate_delay(mic: np.ndarray, ref: np.ndarray, max_delay: int) -> DelayEstimate:
    """GCC-PHAT delay of ``mic`` behind ``ref``.

    ``ref`` covers the same span as ``mic`` plus ``max_delay`` samples before it and
    any number after it; the answer lies in ``[-(len(ref) - len(mic) - max_delay),
    max_delay]``. Phase weighting keeps the peak sharp on speech, whose spectrum is
    dominated by a few strong harmonics.
    """
    size = 1 << int(np.ceil(np.log2(len(mic) + len(ref))))
    cross = np.fft.rfft(ref, size) * np.conj(np.fft.rfft(mic, size))
    cross /= np.abs(cross) ** 0.8 + 1e-12  # PHAT-beta: a little of the magnitude kept
    corr = np.fft.irfft(cross, size)[: len(ref) - len(mic) + 1]
    peak = int(np.argmax(corr))
    spread = float(np.mean(np.abs(corr))) + 1e-12
    return DelayEstimate(delay=max_delay - peak, confidence=float(corr[peak]) / spread)


class DoubleTalkBackend:
    """WebRTC's AEC3, with the linear NLMS output while the user talks over heron.

    AEC3's residual echo suppressor also suppresses the user's voice wherever it
    overlaps heron's in frequency: over a playing reply, Silero then finds the user
    hundreds of ms late and Whisper hears broken words. This keeps AEC3's output
    while only echo is present (its floor is near silence), and while far more
    is left than that floor (the user is talking: double talk) it hands over the
    NLMS filter's output, which removes the echo linearly and leaves the user whole.
    """

    name = "webrtc"
    margin = WebRTCBackend.margin

    _HANGOVER = 30  # frames (300 ms) a detected double talk is held
    _SETTLE = 50  # frames (500 ms) AEC3 gets to converge after heron starts or the delay moves
    _MIN_LEVEL = FRAME * 0.01**2  # energy of a frame at -40 dBFS: quieter is never a user
    _MIC_SHARE = 0.03  # and a voice is at least this share of the microphone's energy

    def __init__(self) -> None:
        self.aec3 = WebRTCBackend()
        self.linear = NLMSBackend()
        self.double_talk = False
        self.reset()

    def reset(self) -> None:
        self.aec3.reset()
        self.linear.reset()
        # The linear filter wants the echo ``linear.margin`` behind its feed, AEC3
        # ``margin``: the linear filter's reference goes through a short queue.
        self._lag = np.zeros(self.margin - self.linear.margin, np.float32)
        self._floor = self._MIN_LEVEL
        self._hold = 0
        self._mic_level = 0.0
        self._quiet = 0
        self._settle = self._SETTLE
        self._use_linear = False
        self.double_talk = False
        """A voice besides heron's is in the microphone (held 300 ms)."""

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        queued = np.concatenate([self._lag, ref])
        linear_ref, self._lag = queued[:FRAME], queued[FRAME:]
        suppressed = self.aec3.process(mic, ref)
        linear = self.linear.process(mic, linear_ref)
        energy = float(np.dot(suppressed, suppressed))
        if np.any(ref):
            self._settle = max(0, self._settle - 1) if self._quiet < 20 else self._SETTLE
            self._quiet = 0
        else:
            self._quiet += 1
        # A voice besides heron's: AEC3 lets far more through than its usual floor
        # (it still hides the first 100 ms or so of a voice that overlaps heron's),
        # and the linear filter's error jumps above its usual residual too (either
        # alone is also what a hiccup of that one filter looks like).
        mic_energy = float(np.dot(mic, mic))
        louder = energy > max(10.0 * self._floor, self._MIN_LEVEL, self._MIC_SHARE * mic_energy)
        talking = louder and self.linear.double_talk
        # Only once AEC3 holds the echo 20 dB down is "more than its floor" a voice.
        steady = not self._settle and self._floor < 0.01 * self._mic_level
        if talking and steady:
            self._hold = self._HANGOVER
        elif self._hold:
            self._hold -= 1
        if not talking:
            # AEC3's usual leftovers: the floor falls fast and rises slowly.
            rate = 0.2 if energy < self._floor else 0.01
            self._floor += rate * (max(energy, 1e-9) - self._floor)
            if np.any(ref):
                self._mic_level += 0.05 * (mic_energy - self._mic_level)
        self.double_talk = self._hold > 0
        # AEC3's leftovers also rise when the echo path jumps (an output underflow);
        # the linear output is taken only where it has proved itself on echo alone.
        was, self._use_linear = self._use_linear, self.double_talk and self.linear.converged
        chosen = linear if self._use_linear else suppressed
        if was != self._use_linear:  # no click at the switch: fade across one frame
            fade = np.linspace(0.0, 1.0, FRAME, dtype=np.float32)
            before = suppressed if self._use_linear else linear
            chosen = before * (1 - fade) + chosen * fade
        return chosen

    def realign(self, shift: int) -> None:
        self.aec3.realign(shift)
        self.linear.realign(shift)
        self._settle = self._SETTLE
