"""The listener: audio source → VAD segmenter → streaming Whisper → :class:`Utterance`.

Two daemon threads. The reader consumes the source and runs the segmenter, so
voice activity keeps being tracked (and nothing the user says is lost) while the
transcriber works. The transcriber never waits for the end of an utterance to
start:

- while the user speaks, the words so far are transcribed every
  ``partial_interval_ms`` (:class:`Partial`, for captions and wake phrases);
- when silence begins, what was said up to it is transcribed at once. If the
  silence becomes the endpoint, that transcript is the final one and is ready
  almost when the endpoint is decided; if speech resumes, it is kept as the
  committed beginning of a long utterance (a pause is a safe cut between words),
  so no transcription ever covers more than the words since the last pause;
- the words heard at a pause choose how long the endpoint waits
  (:mod:`heron.agent.endpointing`).

Utterances are delivered in the order they were spoken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .audio_source import AudioSource
from .endpointing import endpoint_silence_ms
from .errors import ModelError
from .events import SAMPLE_RATE, Utterance
from .stt import Transcriber
from .vad import (
    SegmenterEvent,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    UtteranceSegmenter,
)

log = logging.getLogger(__name__)

STALL_WARNING_S = 5.0
"""A source silent (no chunks at all) this long is logged as stalled."""

COMMIT_AFTER_S = 4.0
"""A pause this far into the uncommitted audio commits the words before it."""


@dataclass(frozen=True)
class Partial:
    """The words heard so far in the utterance in progress."""

    text: str
    utterance: int
    audio_s: float
    t: float


@dataclass
class _Job:
    kind: Literal["partial", "pause", "resume", "end"]
    utterance: int
    audio: np.ndarray = field(repr=False)
    index: int = 0
    """``pause``: where the pause began; ``end``: where speech ended."""
    ended: SpeechEnded | None = None
    t_posted: float = 0.0
    pause_seq: int = 0


@dataclass
class _UtteranceText:
    """What the transcriber knows of the utterance in progress."""

    utterance: int
    committed_text: str = ""
    committed_index: int = 0
    at_pause: tuple[int, str] | None = None
    """(pause index, words from the committed index to the pause)."""

    def joined(self, tail: str) -> str:
        return " ".join(part for part in (self.committed_text, tail) if part)


class Listener:
    """Turns an audio source into a stream of transcribed utterances."""

    def __init__(
        self,
        source: AudioSource,
        segmenter: UtteranceSegmenter,
        transcriber: Transcriber,
        *,
        on_utterance: Callable[[Utterance], None],
        on_speech_start: Callable[[float], None] | None = None,
        on_voice: Callable[[SegmenterEvent], None] | None = None,
        on_partial: Callable[[Partial], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        source_kind: Literal["microphone", "file", "text"] = "microphone",
        partials: bool = True,
    ) -> None:
        self.source = source
        self.segmenter = segmenter
        self.transcriber = transcriber
        self.on_utterance = on_utterance
        self.on_speech_start = on_speech_start
        self.on_voice = on_voice
        self.on_partial = on_partial
        self.on_error = on_error
        self.source_kind: Literal["microphone", "file", "text"] = source_kind
        self.partials = partials
        self.vad_config = segmenter.config
        segmenter.await_endpoint_decision = segmenter.config.smart_endpoint
        self.done = threading.Event()
        """Set once the source has ended and every pending utterance is transcribed."""
        self.error: Exception | None = None
        """The error that ended the listener, if any."""
        self._stop = threading.Event()
        self._end_now = threading.Event()
        self._jobs: deque[_Job | None] = deque()
        self._jobs_ready = threading.Condition()
        self._pause_seq = 0
        self._since_partial = 0
        self.stats = {"partials": 0, "finals": 0, "finals_from_pause": 0}
        """Counts: partial transcripts sent, final ones, finals reused from a pause."""
        self._reader: threading.Thread | None = None
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        """Start the source (errors opening it are raised here) and both threads."""
        if self._reader is not None:
            raise RuntimeError("a Listener can be started once")
        self.source.start()
        self._reader = threading.Thread(target=self._read_loop, name="heron-listen", daemon=True)
        self._worker = threading.Thread(
            target=self._transcribe_loop, name="heron-transcribe", daemon=True
        )
        self._worker.start()
        self._reader.start()

    def stop(self) -> None:
        """Stop listening; utterances not yet transcribed are dropped."""
        self._stop.set()
        self.source.stop()
        self._post(None)

    def end_utterance_now(self) -> None:
        """End the utterance in progress without waiting for silence (push-to-talk)."""
        self._end_now.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for both threads to finish; True when they did within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in (self._reader, self._worker):
            if thread is not None:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(remaining)
        return self.done.is_set()

    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        self.join(5.0)

    def _report(self, exc: Exception) -> None:
        if self.error is None:
            self.error = exc
        log.error("listener: %s", exc)
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:
                log.exception("the on_error callback failed")

    # -- reader thread ------------------------------------------------------------

    def _read_loop(self) -> None:
        partial_every = self.vad_config.partial_interval_ms * SAMPLE_RATE // 1000
        try:
            while not self._stop.is_set():
                try:
                    chunk = self.source.read(timeout=STALL_WARNING_S)
                except TimeoutError:
                    log.warning("no audio from the source for %.0f s", STALL_WARNING_S)
                    continue
                if chunk is None:
                    break
                for event in self.segmenter.push(chunk):
                    self._dispatch(event)
                if self._end_now.is_set():
                    self._end_now.clear()
                    for event in self.segmenter.end_now():
                        self._dispatch(event)
                if self.partials and self.segmenter.in_speech:
                    self._since_partial += len(chunk.samples)
                    if self._since_partial >= partial_every:
                        self._since_partial = 0
                        self._post(
                            _Job(
                                "partial",
                                self.segmenter.utterances,
                                self.segmenter.current_audio(),
                                t_posted=time.monotonic(),
                            )
                        )
            if not self._stop.is_set():
                for event in self.segmenter.flush():
                    self._dispatch(event)
        except Exception as exc:  # the source died; end cleanly and say why
            self._report(exc)
            self.source.stop()
        finally:
            self._post(None)

    def _dispatch(self, event: SegmenterEvent) -> None:
        now = time.monotonic()
        if isinstance(event, SpeechStarted):
            self._since_partial = 0
            if self.on_speech_start is not None:
                self._callback(self.on_speech_start, event.t)
        elif isinstance(event, SpeechPaused):
            self._pause_seq += 1
            self._post(
                _Job(
                    "pause",
                    event.utterance,
                    event.audio,
                    index=event.index,
                    t_posted=now,
                    pause_seq=self._pause_seq,
                )
            )
        elif isinstance(event, SpeechResumed):
            self._pause_seq += 1
            self.segmenter.set_endpoint_silence(None)
            self._post(_Job("resume", event.utterance, np.zeros(0, np.float32), t_posted=now))
        elif isinstance(event, SpeechEnded):
            self._post(
                _Job(
                    "end",
                    event.utterance,
                    event.audio,
                    index=event.speech_samples,
                    ended=event,
                    t_posted=now,
                )
            )
        if self.on_voice is not None:
            self._callback(self.on_voice, event)

    def _callback(self, function: Callable[..., None], *args: object) -> None:
        try:
            function(*args)
        except Exception:
            log.exception("a listener callback failed")

    def _post(self, job: _Job | None) -> None:
        with self._jobs_ready:
            self._jobs.append(job)
            self._jobs_ready.notify()

    # -- transcriber thread -------------------------------------------------------

    def _next_job(self) -> _Job | None:
        with self._jobs_ready:
            while not self._jobs:
                self._jobs_ready.wait()
            job = self._jobs.popleft()
            # a partial is stale once anything newer about its utterance is queued
            while (
                job is not None
                and job.kind == "partial"
                and any(j is None or j.utterance >= job.utterance for j in self._jobs)
            ):
                job = self._jobs.popleft()
            return job

    def _transcribe_loop(self) -> None:
        current = _UtteranceText(utterance=0)
        try:
            self.transcriber.load()
            while (job := self._next_job()) is not None:
                if self._stop.is_set():
                    break  # stopping: drop what is left
                if job.utterance != current.utterance:
                    current = _UtteranceText(utterance=job.utterance)
                self._work(job, current)
        except ModelError as exc:
            self._report(exc)
            self.stop()
        finally:
            self.done.set()

    def _transcribe_tail(self, audio: np.ndarray, current: _UtteranceText) -> str:
        tail = audio[current.committed_index :]
        if len(tail) < SAMPLE_RATE // 10:
            return ""
        # the committed words are not given as context: tiny models copy from it
        return self.transcriber.transcribe(tail).text

    def _work(self, job: _Job, current: _UtteranceText) -> None:
        if job.kind == "partial":
            text = current.joined(self._transcribe_tail(job.audio, current))
            self._partial(text, job)
        elif job.kind == "pause":
            tail = self._transcribe_tail(job.audio, current)
            current.at_pause = (job.index, tail)
            text = current.joined(tail)
            if job.pause_seq == self._pause_seq:  # speech has not resumed meanwhile
                silence = endpoint_silence_ms(text, self.vad_config)
                self.segmenter.set_endpoint_silence(silence)
                log.debug("pause after %r: endpoint after %.0f ms of silence", text, silence)
            self._partial(text, job)
        elif job.kind == "resume":
            if current.at_pause is not None:
                index, tail = current.at_pause
                if tail and index - current.committed_index >= COMMIT_AFTER_S * SAMPLE_RATE:
                    current.committed_text = current.joined(tail)
                    current.committed_index = index
                current.at_pause = None
        else:
            assert job.ended is not None
            self._finish(job, job.ended, current)

    def _partial(self, text: str, job: _Job) -> None:
        if text:
            self.stats["partials"] += 1
        if text and self.on_partial is not None:
            partial = Partial(text, job.utterance, len(job.audio) / SAMPLE_RATE, time.monotonic())
            self._callback(self.on_partial, partial)

    def _finish(self, job: _Job, segment: SpeechEnded, current: _UtteranceText) -> None:
        reused = current.at_pause is not None and current.at_pause[0] == job.index
        if reused and current.at_pause is not None:
            text = current.joined(current.at_pause[1])
        else:
            text = current.joined(self._transcribe_tail(segment.audio, current))
        t_final = time.monotonic()
        self.stats["finals"] += 1
        self.stats["finals_from_pause"] += int(reused)
        log.debug(
            "utterance %.2f s: speech end → transcript %.3f s (%s)",
            segment.t_end - segment.t_start,
            t_final - segment.t_end,
            "transcribed at the pause" if reused else "transcribed at the endpoint",
        )
        if not text:
            return
        utterance = Utterance(
            text=text,
            t_start=segment.t_start,
            t_end=segment.t_end,
            t_final=t_final,
            t_endpoint=job.t_posted,
            source=self.source_kind,
            audio=segment.audio,
            utterance_id=segment.utterance,
        )
        self._callback(self.on_utterance, utterance)
