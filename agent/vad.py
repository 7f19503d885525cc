"""Voice activity detection and utterance segmentation.

:class:`SileroVAD` runs the Silero VAD model that faster-whisper ships on
onnxruntime, streaming, one probability per 32 ms window. :class:`UtteranceSegmenter`
turns those probabilities into utterances: a start once speech has lasted
``min_speech_ms``, an end after ``min_silence_ms`` of silence, with hysteresis.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .config import VADConfig
from .errors import ModelError
from .events import SAMPLE_RATE, AudioChunk

log = logging.getLogger(__name__)

WINDOW = 512
"""Samples per VAD window (32 ms at 16 kHz)."""
CONTEXT = 64
"""Samples of the previous window the model sees in front of each new one."""
HYSTERESIS = 0.15
"""Speech ends below ``threshold - HYSTERESIS``, as Silero's own ``neg_threshold``."""
POST_ROLL_S = 0.1
"""Audio kept after the end of speech, so a word's tail is not clipped."""


def default_model_path() -> str:
    """The Silero VAD model bundled with faster-whisper."""
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


class SileroVAD:
    """Streaming Silero VAD: feed any number of samples, get one probability per window."""

    def __init__(self, model_path: str | None = None) -> None:
        import onnxruntime

        path = model_path or default_model_path()
        opts = onnxruntime.SessionOptions()
        # One thread: the model is tiny and must not compete with Whisper for cores.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            self._session = onnxruntime.InferenceSession(
                path, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelError(f"cannot load the Silero VAD model from {path}: {exc}") from exc
        self.model_path = path
        self.reset()

    def reset(self) -> None:
        """Forget the recurrent state, the context and any buffered samples."""
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities of every window completed by ``samples``.

        Samples that do not fill a window stay buffered for the next call.
        """
        data = np.concatenate([self._pending, np.asarray(samples, np.float32).ravel()])
        n = len(data) // WINDOW
        self._pending = data[n * WINDOW :]
        if n == 0:
            return np.zeros(0, np.float32)
        windows = data[: n * WINDOW].reshape(n, WINDOW)
        contexts = np.concatenate([self._context[None, :], windows[:-1, -CONTEXT:]])
        batch = np.ascontiguousarray(np.concatenate([contexts, windows], axis=1))
        # The model runs its LSTM across the batch in order, so n windows in one call
        # equal n calls of one window (and cost much less).
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -CONTEXT:].copy()
        return np.asarray(probs, np.float32).ravel()


@dataclass(frozen=True)
class VoiceOnset:
    """A window crossed the speech threshold outside speech: maybe speech, maybe noise.

    The earliest sign of the user's voice (one 32 ms window): barge-in silences
    heron here, then decides with :class:`SpeechStarted` or :class:`VoiceGone`.
    """

    t: float


@dataclass(frozen=True)
class VoiceGone:
    """A :class:`VoiceOnset` that never lasted ``min_speech_ms``: a click, a cough."""

    t: float


@dataclass(frozen=True)
class SpeechStarted:
    """Speech has lasted ``min_speech_ms``; ``t`` is its monotonic onset time."""

    t: float
    utterance: int = 0
    """Counts the utterances of this segmenter: later events of the same one carry it."""


@dataclass(frozen=True)
class SpeechPaused:
    """Silence began inside an utterance: it may end here, or speech may resume.

    ``audio`` runs from the utterance's first sample to the pause, so a transcript
    can be computed while the endpoint's silence timer runs.
    """

    audio: np.ndarray = field(repr=False)
    t: float
    utterance: int
    index: int
    """Sample index (in the utterance's ``audio``) where the pause began."""


@dataclass(frozen=True)
class SpeechResumed:
    t: float
    utterance: int


@dataclass(frozen=True)
class SpeechEnded:
    """One utterance: audio from ``pre_roll_ms`` before onset to just after the end."""

    audio: np.ndarray = field(repr=False)
    t_start: float
    t_end: float
    """Monotonic time at which speech stopped (not when the silence timer fired)."""
    utterance: int = 0
    speech_samples: int = 0
    """Samples of ``audio`` up to the end of speech (the rest is the post-roll)."""

    @property
    def duration(self) -> float:
        return self.t_end - self.t_start


SegmenterEvent = VoiceOnset | VoiceGone | SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded


class UtteranceSegmenter:
    """Cuts a chunk stream into utterances with a streaming VAD."""

    def __init__(self, config: VADConfig | None = None, vad: SileroVAD | None = None) -> None:
        self.config = config or VADConfig.model_validate({})
        self.vad = vad or SileroVAD()
        c = self.config
        ms = SAMPLE_RATE // 1000
        self._threshold = c.threshold
        self._neg_threshold = max(0.01, c.threshold - HYSTERESIS)
        self._min_speech = c.min_speech_ms * ms
        self._min_silence = c.min_silence_ms * ms
        self._pre_roll = c.pre_roll_ms * ms
        self._post_roll = min(int(POST_ROLL_S * SAMPLE_RATE), self._min_silence)
        self._max_samples = int(c.max_utterance_s * SAMPLE_RATE)
        self._utterances = 0
        self.await_endpoint_decision = False
        """When set (by a listener that picks the silence from the words), a pause waits
        for :meth:`set_endpoint_silence` up to ``continue_silence_ms`` before ending."""
        self.reset()

    @property
    def in_speech(self) -> bool:
        return self._speech_start is not None

    def set_threshold(self, threshold: float | None) -> None:
        """Raise or restore the speech threshold (None: the configured one); any thread.

        While heron's own voice may still be in the microphone (echo not yet
        cancelled), a higher threshold keeps it from passing as the user.
        """
        value = self.config.threshold if threshold is None else threshold
        self._threshold = value
        self._neg_threshold = max(0.01, value - HYSTERESIS)

    @property
    def utterances(self) -> int:
        """How many utterances have started (the id of the current or last one)."""
        return self._utterances

    def set_endpoint_silence(self, ms: float | None) -> None:
        """Change the silence that ends the current utterance (None: the configured one).

        Safe from another thread: the listener shortens it when the words heard so
        far make a complete sentence, and lengthens it when they clearly go on.
        """
        ms_value = self.config.min_silence_ms if ms is None else ms
        self._min_silence = max(WINDOW, int(ms_value * SAMPLE_RATE / 1000))

    def current_audio(self, since: int = 0) -> np.ndarray:
        """The audio of the utterance in progress (empty outside speech)."""
        if self._speech_start is None:
            return np.zeros(0, np.float32)
        begin = self._audio_start()
        return np.concatenate(self._chunks)[begin - self._buf_start + since :]

    def _audio_start(self) -> int:
        assert self._speech_start is not None
        return max(self._speech_start - self._pre_roll, self._last_cut, self._buf_start)

    def reset(self) -> None:
        """Drop all audio and state, including the VAD's."""
        self.vad.reset()
        self._chunks: deque[np.ndarray] = deque()
        self._buf_start = 0  # stream index of the first stored sample
        self._n = 0  # samples pushed since reset
        self._windows = 0  # VAD windows evaluated since reset
        self._anchor_t = 0.0
        self._anchor_i = 0
        self._pending: int | None = None  # candidate onset, not yet min_speech long
        self._speech_start: int | None = None
        self._silence_start: int | None = None
        self._last_cut = 0

    def _time(self, index: int) -> float:
        return self._anchor_t + (index - self._anchor_i) / SAMPLE_RATE

    def push(self, chunk: AudioChunk) -> list[SegmenterEvent]:
        """Feed one chunk; returns the events it completes, in order."""
        samples = np.asarray(chunk.samples, np.float32).ravel()
        if len(samples) == 0:
            return []
        self._anchor_t, self._anchor_i = chunk.t_capture, self._n
        self._chunks.append(samples)
        self._n += len(samples)
        events: list[SegmenterEvent] = []
        for p in self.vad.process(samples):
            start = self._windows * WINDOW
            self._windows += 1
            self._step(float(p), start, start + WINDOW, events)
        self._trim()
        return events

    def end_now(self) -> list[SegmenterEvent]:
        """Close the utterance in progress here (push-to-talk released); no reset."""
        if self._speech_start is None:
            return []
        end = self._silence_start if self._silence_start is not None else self._n
        return [self._cut(end, self._n)]

    def flush(self) -> list[SegmenterEvent]:
        """End of stream: close an utterance in progress, then reset."""
        events: list[SegmenterEvent] = []
        if self._speech_start is not None:
            end = self._silence_start if self._silence_start is not None else self._n
            if end - self._speech_start >= self._min_speech:
                events.append(self._cut(end, min(end + self._post_roll, self._n)))
        self.reset()
        return events

    def _step(self, p: float, start: int, end: int, events: list[SegmenterEvent]) -> None:
        c = self.config
        if self._speech_start is None:
            if self._pending is None and p >= self._threshold:
                self._pending = start
                events.append(VoiceOnset(self._time(start)))
            if self._pending is None:
                return
            if p < self._neg_threshold:
                self._pending = None  # a burst shorter than min_speech_ms
                events.append(VoiceGone(self._time(end)))
            elif end - self._pending >= self._min_speech:
                self._speech_start, self._pending, self._silence_start = self._pending, None, None
                self._utterances += 1
                self.set_endpoint_silence(None)
                events.append(SpeechStarted(self._time(self._speech_start), self._utterances))
                log.debug("speech started at %.3f", self._time(self._speech_start))
            return
        if p >= self._threshold:
            if self._silence_start is not None:
                events.append(SpeechResumed(self._time(start), self._utterances))
            self._silence_start = None
        elif p < self._neg_threshold and self._silence_start is None:
            self._silence_start = start
            if self.await_endpoint_decision:
                self.set_endpoint_silence(max(c.continue_silence_ms, c.min_silence_ms))
            begin = self._audio_start()
            audio = np.concatenate(self._chunks)[begin - self._buf_start : start - self._buf_start]
            events.append(SpeechPaused(audio, self._time(start), self._utterances, start - begin))
        silence = self._silence_start
        if silence is not None and end - silence >= self._min_silence:
            events.append(self._cut(silence, min(silence + self._post_roll, end)))
        elif end - self._speech_start >= self._max_samples:
            if silence is not None:
                events.append(self._cut(silence, end))
            else:
                # Still talking: cut here and carry on with a new utterance.
                events.append(self._cut(end, end))
                self._speech_start = end
                self._utterances += 1
                events.append(SpeechStarted(self._time(end), self._utterances))

    def _cut(self, speech_end: int, audio_end: int) -> SpeechEnded:
        assert self._speech_start is not None
        onset = self._speech_start
        audio_start = self._audio_start()
        audio = np.concatenate(self._chunks)[
            audio_start - self._buf_start : audio_end - self._buf_start
        ]
        event = SpeechEnded(
            audio=audio,
            t_start=self._time(onset),
            t_end=self._time(speech_end),
            utterance=self._utterances,
            speech_samples=speech_end - audio_start,
        )
        log.debug(
            "speech ended: %.3f-%.3f (%.2f s of audio)",
            event.t_start,
            event.t_end,
            len(audio) / SAMPLE_RATE,
        )
        self._speech_start = self._silence_start = self._pending = None
        self._last_cut = audio_end
        return event

    def _trim(self) -> None:
        """Keep only the audio an utterance could still need."""
        anchor = self._speech_start
        if anchor is None:
            anchor = self._pending if self._pending is not None else self._windows * WINDOW
        keep_from = anchor - self._pre_roll
        while self._chunks and self._buf_start + len(self._chunks[0]) <= keep_from:
            self._buf_start += len(self._chunks.popleft())
