"""Where speech goes: a sound device, a WAV file, and the Speaker that feeds them.

Every sink has the same small interface (:class:`AudioSink`): ``play`` blocks until
the audio was played or stopped, ``stop`` interrupts it promptly from another
thread (barge-in), ``close`` releases the device or finalises the file.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf
import soxr

from .config import SpeakerConfig
from .errors import SinkError
from .events import SpeechOut
from .tts import Synthesis, Synthesizer, split_sentences

__all__ = [
    "AudioSink",
    "PlaybackResult",
    "Speaker",
    "SpeakerSink",
    "SpeechStream",
    "WavFileSink",
]

log = logging.getLogger(__name__)

BLOCK_S = 0.02
"""Callback block length: ``stop()`` takes effect within one block."""


@dataclass(frozen=True, slots=True)
class PlaybackResult:
    """How one ``play`` went; times are ``time.monotonic()`` seconds."""

    t_start: float
    t_first_audio: float | None
    """When the first block was handed to the device (None if nothing was)."""
    t_end: float
    seconds_played: float
    interrupted: bool = False


class AudioSink(Protocol):
    """Something speech can be played into."""

    def play(
        self, samples: np.ndarray, sample_rate: int, *, cancel: threading.Event | None = None
    ) -> PlaybackResult:
        """Play mono float32 ``samples``; block until played, stopped or ``cancel`` is set.

        ``cancel`` closes the gap between a caller deciding to play and ``stop()``:
        a play that starts with ``cancel`` already set returns at once, interrupted.
        """
        ...

    def stop(self) -> None:
        """Interrupt the current ``play`` (from any thread); a no-op when idle."""
        ...

    def close(self) -> None: ...


def _mono(samples: np.ndarray) -> np.ndarray:
    data = np.asarray(samples, dtype=np.float32)
    return data.mean(axis=1, dtype=np.float32) if data.ndim == 2 else data.reshape(-1)


def _output_devices(sd: Any) -> list[str]:
    return [
        f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d["max_output_channels"]
    ]


class SpeakerSink:
    """Plays through a sounddevice output device (name, index, or None for the default).

    The stream opens on the first ``play`` at the audio's rate (or, when the device
    refuses that rate, at the device's rate with soxr resampling) and is fed from a
    callback in 20 ms blocks. It keeps running, silent, for ``keep_alive_s`` after a
    play, so consecutive sentences do not pay the device's start-up latency again.
    ``stop()`` aborts the stream, which also drops what the device had buffered.
    """

    def __init__(self, config: SpeakerConfig, *, keep_alive_s: float = 3.0) -> None:
        import sounddevice as sd

        self._sd = sd
        self.config = config
        self.keep_alive_s = keep_alive_s
        self._device = self._find_device(config.device)
        self._play_lock = threading.Lock()  # one play at a time
        self._stream_lock = threading.Lock()  # start/stop/abort/close of the stream
        self._lock = threading.Lock()  # the state below; the audio callback takes it too
        self._stream: Any = None
        self._stream_rate = 0
        self._source_rate = 0
        self._running = False
        self._playing = False
        self._data: np.ndarray | None = None
        self._pos = 0
        self._idle_frames = 0
        self._underflows = 0
        self._failed = False
        self._t_first: float | None = None
        self._t_drained = 0.0
        self._consumed = threading.Event()
        self._halted = threading.Event()
        self._paused = False
        self._latency = 0.0
        self.on_output: Callable[[np.ndarray, int, float], None] | None = None
        """Called from the audio thread with each block played and the monotonic time it
        reaches the device's output (the echo canceller's reference)."""

    @property
    def output_latency_s(self) -> float:
        """The open stream's output latency (buffering up to the device), 0 if closed."""
        return self._latency

    def pause(self) -> None:
        """Output silence and hold the position until :meth:`resume` (or ``stop``)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def _find_device(self, device: str | int | None) -> int:
        sd = self._sd
        try:
            found = sd.query_devices(device, kind="output") if device is None else None
            if found is None:
                found = sd.query_devices(device)
                if not found["max_output_channels"]:
                    raise ValueError("it has no output channels")
            return int(found["index"])
        except (ValueError, sd.PortAudioError) as exc:
            listed = "; ".join(_output_devices(sd)) or "none"
            raise SinkError(
                f"audio output device {device!r} not usable ({exc}); output devices: {listed}"
            ) from None

    def _open(self, sample_rate: int) -> int:
        """Make sure a stream for ``sample_rate`` audio is open; returns the device rate."""
        sd = self._sd
        if self._stream is not None and sample_rate == self._source_rate:
            return self._stream_rate
        with self._stream_lock:
            self._close_stream()
            rate = sample_rate
            try:
                sd.check_output_settings(self._device, channels=1, samplerate=rate)
            except sd.PortAudioError:
                rate = int(sd.query_devices(self._device)["default_samplerate"])
                log.info("output device refuses %d Hz; resampling to %d Hz", sample_rate, rate)
            try:
                self._stream = sd.OutputStream(
                    samplerate=rate,
                    device=self._device,
                    channels=1,
                    dtype="float32",
                    blocksize=round(rate * BLOCK_S),
                    latency="low",
                    callback=self._callback,
                    finished_callback=self._on_finished,
                )
            except sd.PortAudioError as exc:
                raise SinkError(f"cannot open audio output device {self._device}: {exc}") from exc
            self._stream_rate, self._source_rate, self._running = rate, sample_rate, False
            self._latency = float(self._stream.latency)
            return rate

    def _close_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        with self._lock:
            if status.output_underflow and self._data is not None:
                self._underflows += 1
            data = self._data
            if data is None:
                outdata.fill(0)
                self._idle_frames += frames
                if self._idle_frames >= self.keep_alive_s * self._stream_rate:
                    self._running = False
                    raise self._sd.CallbackStop
                return
            if self._paused:
                outdata.fill(0)
                return
            chunk = data[self._pos : self._pos + frames]
            outdata[: len(chunk), 0] = chunk
            outdata[len(chunk) :] = 0
            now = time.monotonic()
            if self._t_first is None:
                self._t_first = now
            self._pos += len(chunk)
            if self.on_output is not None:
                t_out = now + max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
                self.on_output(chunk.copy(), self._stream_rate, t_out)
            if self._pos >= len(data):
                # The last sample leaves the device after its buffered latency.
                latency = max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
                self._t_drained = now + latency + len(chunk) / self._stream_rate
                self._data, self._idle_frames = None, 0
                self._consumed.set()

    def play(
        self, samples: np.ndarray, sample_rate: int, *, cancel: threading.Event | None = None
    ) -> PlaybackResult:
        t_start = time.monotonic()
        data = _mono(samples)
        if not len(data) or (cancel is not None and cancel.is_set()):
            return PlaybackResult(t_start, None, t_start, 0.0, bool(len(data)))
        with self._play_lock:
            rate = self._open(sample_rate)
            if rate != sample_rate:
                data = soxr.resample(data, sample_rate, rate).astype(np.float32)
            self._consumed.clear()
            self._halted.clear()
            with self._lock:
                self._data, self._pos, self._t_first, self._playing = data, 0, None, True
                self._underflows, self._failed = 0, False
                start, self._running = not self._running, True
            try:
                # A stop() from here on finds _playing set and halts this play.
                if cancel is not None and cancel.is_set():
                    self.stop()
                elif start:
                    self._start()
                return self._wait(t_start, len(data) / rate)
            finally:
                with self._lock:
                    self._playing, self._data = False, None

    def _start(self) -> None:
        with self._stream_lock:
            try:
                if not self._stream.stopped:  # finished after keep-alive, not yet stopped
                    self._stream.stop()
                self._stream.start()
            except self._sd.PortAudioError as exc:
                self._close_stream()
                raise SinkError(f"cannot start audio output {self._device}: {exc}") from exc

    def _on_finished(self) -> None:
        with self._lock:
            if self._data is None:  # stopped, played out, or idle after keep-alive
                return
            # The stream died mid-play (PortAudio gave up on the device).
            self._failed, self._running = True, False
        self._consumed.set()

    def _wait(self, t_start: float, duration: float) -> PlaybackResult:
        for restarted in (False, True):
            # Generous: some devices (PulseAudio's null sink) take up to 2 s to start.
            # A device that stops calling back (server gone) must not hang us.
            if not self._consumed.wait(duration + 5.0):
                self.stop()
                raise SinkError(f"audio output device {self._device} stopped playing")
            if not self._failed:
                break
            self._failed = False
            if restarted:
                self.stop()
                raise SinkError(f"audio output device {self._device} failed mid-play")
            # One restart gets over a transient error; playback resumes where it was.
            log.warning("audio output device %s failed mid-play; restarting it", self._device)
            self._consumed.clear()
            self._running = True
            self._start()
        if not self._halted.is_set():
            self._halted.wait(max(0.0, self._t_drained - time.monotonic()))
        t_end = time.monotonic()
        interrupted = self._halted.is_set()
        if self._underflows:
            log.warning("audio output underflowed %d times (gaps in the sound)", self._underflows)
        played = duration
        if interrupted:
            played = min(self._pos / self._stream_rate, t_end - (self._t_first or t_end))
        return PlaybackResult(t_start, self._t_first, t_end, played, interrupted)

    def stop(self) -> None:
        """Silence the device now; the interrupted ``play`` returns promptly."""
        with self._lock:
            if not self._playing or self._halted.is_set():
                return
            self._data, self._running = None, False
        with self._stream_lock:
            if self._stream is not None:
                self._stream.abort(ignore_errors=True)
        self._halted.set()
        self._consumed.set()

    def close(self) -> None:
        self.stop()
        with self._play_lock, self._stream_lock:
            self._close_stream()


class WavFileSink:
    """Appends everything played to one mono 16-bit WAV file (resampled as needed).

    ``gap_s`` of silence goes between plays; ``close()`` finalises the file. Writing
    is immediate, so ``play`` does not take real time.
    """

    def __init__(self, path: str | Path, *, sample_rate: int = 22_050, gap_s: float = 0.0) -> None:
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.gap_s = gap_s
        self._lock = threading.Lock()
        self._plays = 0
        try:
            self._file: sf.SoundFile | None = sf.SoundFile(
                str(self.path), "w", samplerate=sample_rate, channels=1, subtype="PCM_16"
            )
        except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError (RuntimeError)
            raise SinkError(f"cannot write audio to {self.path}: {exc}") from exc

    def play(
        self, samples: np.ndarray, sample_rate: int, *, cancel: threading.Event | None = None
    ) -> PlaybackResult:
        t_start = time.monotonic()
        data = _mono(samples)
        if cancel is not None and cancel.is_set():
            return PlaybackResult(t_start, None, t_start, 0.0, True)
        if sample_rate != self.sample_rate and len(data):
            data = soxr.resample(data, sample_rate, self.sample_rate).astype(np.float32)
        with self._lock:
            if self._file is None:
                raise SinkError(f"{self.path} is closed")
            if self._plays and self.gap_s > 0:
                self._file.write(np.zeros(round(self.gap_s * self.sample_rate), np.float32))
            self._file.write(np.clip(data, -1.0, 1.0))
            self._plays += 1
        return PlaybackResult(t_start, t_start, time.monotonic(), len(data) / self.sample_rate)

    def stop(self) -> None:
        """Nothing to interrupt: a write is never left half done."""

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class Speaker:
    """Speaks replies: synthesizes sentence by sentence and plays each into a sink.

    A reply can be spoken as its text arrives (:meth:`stream`): each sentence is
    synthesized as soon as it is complete, while the previous one plays, so the
    only wait before the first audio is the first sentence's synthesis. ``pause``,
    ``resume`` and ``stop`` work from any thread (barge-in), and every reply
    reports what was actually heard of it.
    """

    def __init__(self, synthesizer: Synthesizer, sink: AudioSink) -> None:
        self.synthesizer = synthesizer
        self.sink = sink
        self._say_lock = threading.Lock()
        self._active: SpeechStream | None = None

    def stream(self, on_spoken: Callable[[str], None] | None = None) -> SpeechStream:
        """A reply to feed text into as it is generated; ``finish()`` waits for its end."""
        stream = SpeechStream(self, on_spoken)
        self._active = stream
        return stream

    def say(self, text: str) -> SpeechOut:
        """Speak ``text``; returns when it was spoken or stopped."""
        with self._say_lock:
            stream = self.stream()
            stream.feed(text)
            return stream.finish()

    @property
    def speaking(self) -> bool:
        stream = self._active
        return stream is not None and not stream.finished

    def pause(self) -> None:
        """Hold playback where it is (the user may be starting to speak)."""
        pause = getattr(self.sink, "pause", None)
        if pause is not None:
            pause()

    def resume(self) -> None:
        resume = getattr(self.sink, "resume", None)
        if resume is not None:
            resume()

    def stop(self) -> None:
        """Stop the current speech now; a no-op when nothing is being said."""
        stream = self._active
        if stream is not None:
            stream.stop()
        self.sink.stop()
        self.resume()

    async def asay(self, text: str) -> SpeechOut:
        """Speak ``text`` on a worker thread; cancelling the task stops the speech."""
        try:
            return await asyncio.to_thread(self.say, text)
        except asyncio.CancelledError:
            self.stop()
            raise


@dataclass
class _Sentence:
    text: str
    synthesis: Future[Synthesis] = field(repr=False)
    played_s: float = 0.0
    duration_s: float = 0.0
    interrupted: bool = False

    def heard(self) -> str:
        """The words of the sentence that were played (all of it unless interrupted)."""
        if not self.interrupted:
            return self.text if self.played_s > 0 else ""
        words = self.text.split()
        share = self.played_s / self.duration_s if self.duration_s else 0.0
        return " ".join(words[: int(len(words) * share)])


class SpeechStream:
    """One reply, spoken while its text is still arriving (see :meth:`Speaker.stream`)."""

    def __init__(self, speaker: Speaker, on_spoken: Callable[[str], None] | None) -> None:
        self._speaker = speaker
        self._on_spoken = on_spoken
        self._buffer = ""
        self._fed: list[str] = []
        self._sentences: queue.SimpleQueue[_Sentence | None] = queue.SimpleQueue()
        self._said: list[_Sentence] = []
        self._interrupt = threading.Event()
        self._closed = False
        self.finished = False
        self.t_start = time.monotonic()
        self.t_first_audio: float | None = None
        self._player = threading.Thread(target=self._play_all, name="heron-speak", daemon=True)
        self._player.start()

    @property
    def fed_text(self) -> str:
        """Everything fed so far."""
        return "".join(self._fed)

    def feed(self, delta: str) -> None:
        """More reply text; every sentence it completes starts synthesizing now."""
        if self._closed or not delta:
            return
        self._fed.append(delta)
        self._buffer += delta
        sentences = split_sentences(self._buffer)
        # the last piece may still grow ("Dr." + " Smith"): it waits for more text
        for sentence in sentences[:-1]:
            self._queue(sentence)
        if len(sentences) > 1:
            trailing = " " if self._buffer[-1:].isspace() else ""
            self._buffer = sentences[-1] + trailing

    def feed_sentence(self, sentence: str) -> None:
        """One complete sentence (already split, e.g. after moderation): queued at once."""
        if self._closed or not sentence.strip():
            return
        self._fed.append(sentence + " ")
        self._queue(sentence)

    def _queue(self, sentence: str) -> None:
        if self._interrupt.is_set():
            return
        self._sentences.put(_Sentence(sentence, self._speaker.synthesizer.submit(sentence)))

    def finish(self, timeout: float | None = None) -> SpeechOut:
        """No more text: speak what is left and wait until it was heard or stopped."""
        if not self._closed:
            self._closed = True
            for sentence in split_sentences(self._buffer):
                self._queue(sentence)
            self._buffer = ""
            self._sentences.put(None)
        self._player.join(timeout)
        return self.result()

    async def afinish(self) -> SpeechOut:
        """:meth:`finish` on a worker thread; cancelling it stops the speech."""
        try:
            return await asyncio.to_thread(self.finish)
        except asyncio.CancelledError:
            self.stop()
            raise

    def stop(self) -> None:
        self._interrupt.set()
        self._speaker.sink.stop()
        if not self._closed:
            self._closed = True
            self._sentences.put(None)

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def spoken_text(self) -> str:
        """What the listener heard so far."""
        return " ".join(part for s in self._said if (part := s.heard()))

    def result(self) -> SpeechOut:
        planned = " ".join(s.text for s in self._said) or self.fed_text.strip()
        return SpeechOut(
            text=planned,
            t_start=self.t_start,
            t_first_audio=self.t_first_audio,
            t_end=time.monotonic(),
            audio_seconds=sum(s.played_s for s in self._said),
            interrupted=self.interrupted,
            spoken_text=self.spoken_text(),
        )

    def _play_all(self) -> None:
        try:
            while (sentence := self._sentences.get()) is not None:
                if self._interrupt.is_set():
                    sentence.synthesis.cancel()
                    continue
                self._said.append(sentence)
                try:
                    speech = sentence.synthesis.result()
                except Exception:
                    log.exception("could not synthesize %r", sentence.text)
                    continue
                sentence.duration_s = speech.duration
                result = self._speaker.sink.play(
                    speech.samples, speech.sample_rate, cancel=self._interrupt
                )
                if self.t_first_audio is None:
                    self.t_first_audio = result.t_first_audio
                sentence.played_s = result.seconds_played
                if result.interrupted or self._interrupt.is_set():
                    sentence.interrupted = True
                    self._interrupt.set()
                    continue
                if self._on_spoken is not None:
                    try:
                        self._on_spoken(self.spoken_text())
                    except Exception:
                        log.exception("the on_spoken callback failed")
        finally:
            self.finished = True
            log.debug(
                "said %d sentences, %.2f s of audio%s",
                len(self._said),
                sum(s.played_s for s in self._said),
                " (interrupted)" if self._interrupt.is_set() else "",
            )
