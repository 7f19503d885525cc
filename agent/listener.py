"""The listener: audio source → VAD segmenter → Whisper → :class:`Utterance`.

Two daemon threads. The reader consumes the source and runs the segmenter, so
voice activity keeps being tracked (and nothing the user says is lost) while the
transcriber, on the worker thread, is busy with the previous utterance.
Utterances are delivered in the order they were spoken.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Literal

import numpy as np

from .audio_source import AudioSource
from .errors import ModelError
from .events import SAMPLE_RATE, Utterance
from .stt import Transcriber
from .vad import SpeechEnded, SpeechStarted, UtteranceSegmenter

log = logging.getLogger(__name__)

STALL_WARNING_S = 5.0
"""A source silent (no chunks at all) this long is logged as stalled."""

_DONE = None

TRAILING_PAD = SAMPLE_RATE * 3 // 10
"""0.3 s of silence appended to each segment before transcription."""


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
        on_error: Callable[[Exception], None] | None = None,
        source_kind: Literal["microphone", "file", "text"] = "microphone",
    ) -> None:
        self.source = source
        self.segmenter = segmenter
        self.transcriber = transcriber
        self.on_utterance = on_utterance
        self.on_speech_start = on_speech_start
        self.on_error = on_error
        self.source_kind: Literal["microphone", "file", "text"] = source_kind
        self.done = threading.Event()
        """Set once the source has ended and every pending utterance is transcribed."""
        self.error: Exception | None = None
        """The error that ended the listener, if any."""
        self._stop = threading.Event()
        # each ended segment with the moment the VAD decided it had ended
        self._work: queue.SimpleQueue[tuple[SpeechEnded, float] | None] = queue.SimpleQueue()
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

    def _read_loop(self) -> None:
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
            if not self._stop.is_set():
                for event in self.segmenter.flush():
                    self._dispatch(event)
        except Exception as exc:  # the source died; end cleanly and say why
            self._report(exc)
            self.source.stop()
        finally:
            self._work.put(_DONE)

    def _dispatch(self, event: SpeechStarted | SpeechEnded) -> None:
        if isinstance(event, SpeechStarted):
            if self.on_speech_start is not None:
                try:
                    self.on_speech_start(event.t)
                except Exception:
                    log.exception("the on_speech_start callback failed")
        else:
            self._work.put((event, time.monotonic()))

    def _transcribe_loop(self) -> None:
        try:
            self.transcriber.load()
            while (work := self._work.get()) is not _DONE:
                segment, t_endpoint = work
                if self._stop.is_set():
                    continue  # stopping: drain without transcribing
                self._transcribe(segment, t_endpoint)
        except ModelError as exc:
            self._report(exc)
            self.stop()
        finally:
            self.done.set()

    def _transcribe(self, segment: SpeechEnded, t_endpoint: float) -> None:
        # Whisper hears the last word better with a little silence after it, and the
        # VAD cuts close to the end of speech; the encoder pads to 30 s anyway
        audio = np.concatenate([segment.audio, np.zeros(TRAILING_PAD, np.float32)])
        transcript = self.transcriber.transcribe(audio)
        t_final = time.monotonic()
        log.debug(
            "utterance %.2f s: speech end → transcript %.3f s (whisper %.3f s)",
            segment.t_end - segment.t_start,
            t_final - segment.t_end,
            transcript.elapsed_s,
        )
        if not transcript.text:
            return
        utterance = Utterance(
            text=transcript.text,
            t_start=segment.t_start,
            t_end=segment.t_end,
            t_final=t_final,
            t_endpoint=t_endpoint,
            source=self.source_kind,
            audio=segment.audio,
            no_speech_prob=transcript.no_speech_prob,
        )
        try:
            self.on_utterance(utterance)
        except Exception:
            log.exception("the on_utterance callback failed")
