"""Audio input: files and microphones, delivered as 16 kHz mono :class:`AudioChunk`s.

Every source follows the :class:`AudioSource` protocol, so the listener does not
care whether it hears a live microphone or a recording played back in real time.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import sounddevice as sd
import soxr
from faster_whisper.audio import decode_audio

from .config import MicrophoneConfig
from .errors import AudioSourceError
from .events import SAMPLE_RATE, AudioChunk

log = logging.getLogger(__name__)

FIRST_AUDIO_TIMEOUT_S = 5.0
"""How long :meth:`MicrophoneSource.start` waits for the first block of audio."""

NO_AUDIO_TIMEOUT_S = 5.0
"""A running microphone that delivers nothing this long has failed."""

_END = "end"
_FAILED = "failed"


def load_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode any audio file (wav, flac, mp3, ogg, ...) to 16 kHz mono float32.

    Raises :class:`AudioSourceError` naming the file when it is missing, empty or
    cannot be decoded.
    """
    file = Path(path)
    if not file.is_file():
        raise AudioSourceError(f"audio file not found: {file}")
    if file.stat().st_size == 0:
        raise AudioSourceError(f"audio file is empty (0 bytes): {file}")
    try:
        audio = decode_audio(str(file), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV raises its own hierarchy for every codec problem
        raise AudioSourceError(f"cannot decode audio file {file}: {exc}") from exc
    if audio.size == 0:
        raise AudioSourceError(f"audio file contains no samples: {file}")
    return np.ascontiguousarray(audio, dtype=np.float32)


@runtime_checkable
class AudioSource(Protocol):
    """A stream of 16 kHz mono chunks.

    ``read()`` blocks for the next chunk; it returns ``None`` once the stream has
    ended (end of file, or after ``stop()``) and raises :class:`TimeoutError` when
    nothing arrived within ``timeout`` seconds.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self, timeout: float | None = None) -> AudioChunk | None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class _SourceBase:
    """Context-manager plumbing shared by the concrete sources."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def list_audio_devices() -> list[dict[str, Any]]:
    """Describe every PortAudio device (for ``heron devices``)."""
    try:
        devices = sd.query_devices()
    except sd.PortAudioError as exc:
        raise AudioSourceError(f"cannot list audio devices: {exc}") from exc
    default_in, default_out = _default_indices()
    return [
        {
            "index": int(dev["index"]),
            "name": str(dev["name"]),
            "max_input_channels": int(dev["max_input_channels"]),
            "max_output_channels": int(dev["max_output_channels"]),
            "default_samplerate": float(dev["default_samplerate"]),
            "default_input": int(dev["index"]) == default_in,
            "default_output": int(dev["index"]) == default_out,
        }
        for dev in devices
    ]


def _default_indices() -> tuple[int, int]:
    default = sd.default.device
    try:
        return int(default[0]), int(default[1])
    except (TypeError, ValueError, IndexError):
        return -1, -1


def _input_device_names() -> str:
    try:
        names = [
            f"{dev['index']}: {dev['name']}"
            for dev in sd.query_devices()
            if dev["max_input_channels"] > 0
        ]
    except sd.PortAudioError:
        return "(the device list is unavailable)"
    return ", ".join(names) if names else "(none)"


class MicrophoneSource(_SourceBase):
    """A live sounddevice input stream, downmixed and resampled to 16 kHz mono.

    The PortAudio callback only copies each block into a queue; all conversion
    happens in :meth:`read` on the consumer's thread. ``on_error`` (optional) is
    called from PortAudio's thread when the stream dies under us, in addition to
    :meth:`read` raising :class:`AudioSourceError`.
    """

    def __init__(
        self,
        config: MicrophoneConfig | None = None,
        *,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self.config = config or MicrophoneConfig.model_validate({})
        self._on_error = on_error
        self._stream: sd.InputStream | None = None
        self.device_name = str(self.config.device) if self.config.device is not None else ""
        self.sample_rate = 0
        self.channels = 0
        self.status_count = 0
        """Callback blocks that PortAudio flagged (input overflow and the like)."""
        self._reset(SAMPLE_RATE)

    def _reset(self, rate: int) -> None:
        """Fresh per-stream state: queue, counters, clock and resampler."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopping = False
        self._in_total = self._out_total = 0
        self._clock = _StreamClock()
        self._flowing = threading.Event()
        self._last_block = 0.0
        self._resampler: soxr.ResampleStream | None = None
        if rate != SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(
                rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ"
            )

    def start(self) -> None:
        """Open and start the input stream; idempotent."""
        if self._stream is not None:
            return
        cfg = self.config
        try:
            info: Any = sd.query_devices(cfg.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise AudioSourceError(
                f"microphone {cfg.device!r} not found ({exc}); "
                f"available input devices: {_input_device_names()}"
            ) from exc
        self.device_name = str(info["name"])
        self.sample_rate = int(cfg.sample_rate or info["default_samplerate"])
        self.channels = max(1, min(cfg.channels, int(info["max_input_channels"])))
        blocksize = max(1, self.sample_rate * cfg.block_ms // 1000)
        self._reset(self.sample_rate)
        try:
            stream = sd.InputStream(
                device=int(info["index"]),
                samplerate=self.sample_rate,
                channels=self.channels,
                dtype="float32",
                blocksize=blocksize,
                callback=self._callback,
                finished_callback=self._finished,
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioSourceError(
                f"cannot open microphone {self.device_name!r} at {self.sample_rate} Hz, "
                f"{self.channels} channel(s): {exc}"
            ) from exc
        self._stream = stream
        # "Started" means hearing: some servers (an idle PulseAudio sink's monitor)
        # take seconds to deliver the first block, and a dead device never does.
        if not self._flowing.wait(FIRST_AUDIO_TIMEOUT_S):
            self.stop()
            raise AudioSourceError(
                f"microphone {self.device_name!r} opened but delivered no audio "
                f"within {FIRST_AUDIO_TIMEOUT_S:.0f} s"
            )
        self._last_block = time.monotonic()
        log.info(
            "microphone %r started: %d Hz, %d channel(s), %d ms blocks",
            self.device_name,
            self.sample_rate,
            self.channels,
            cfg.block_ms,
        )

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        # Only copy and timestamp here: this runs on PortAudio's real-time thread.
        # (Its ADC timestamps are unreliable through ALSA's pulse plugin, so the
        # arrival time on the monotonic clock is what read() dates blocks from.)
        self._queue.put((indata.copy(), time.monotonic(), bool(status), str(status)))
        if not self._flowing.is_set():
            self._flowing.set()

    def _finished(self) -> None:
        if self._stopping:
            self._queue.put(_END)
            return
        self._queue.put(_FAILED)
        if self._on_error is not None:
            self._on_error(self._failure())

    def _failure(self) -> AudioSourceError:
        return AudioSourceError(
            f"microphone {self.device_name!r} stopped delivering audio: the stream ended "
            "unexpectedly (device unplugged or audio server gone?)"
        )

    def stop(self) -> None:
        """Stop and close the stream; a blocked :meth:`read` returns ``None``."""
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except sd.PortAudioError as exc:
                log.debug("closing microphone %r: %s", self.device_name, exc)
        self._queue.put(_END)
        if self.status_count:
            log.info("microphone %r: %d flagged blocks", self.device_name, self.status_count)

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        """The next chunk, ``None`` after :meth:`stop`; raises if the device failed.

        A stream that stays silent (no blocks at all) for ``NO_AUDIO_TIMEOUT_S`` counts
        as failed too: a vanished device does not always make PortAudio end the stream.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            now = time.monotonic()
            stall_at = self._last_block + NO_AUDIO_TIMEOUT_S
            wait = stall_at - now if deadline is None else min(deadline, stall_at) - now
            try:
                item = self._queue.get(timeout=max(0.0, wait))
            except queue.Empty:
                if time.monotonic() >= stall_at and not self._stopping:
                    raise AudioSourceError(
                        f"microphone {self.device_name!r} delivered no audio for "
                        f"{NO_AUDIO_TIMEOUT_S:.0f} s (device unplugged or audio server gone?)"
                    ) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"no audio from {self.device_name!r} in {timeout} s"
                    ) from None
                continue
            if item == _END or (self._stopping and item == _FAILED):
                self._queue.put(_END)  # later reads see the end too
                return None
            if item == _FAILED:
                self._queue.put(_FAILED)
                raise self._failure()
            self._last_block = time.monotonic()
            chunk = self._convert(*item)
            if chunk is not None:
                return chunk

    def _convert(
        self, block: np.ndarray, arrival: float, flagged: bool, status: str
    ) -> AudioChunk | None:
        if flagged:
            self.status_count += 1
            log.warning("microphone %r: %s (block %d)", self.device_name, status, self._in_total)
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        self._in_total += len(mono)
        base = self._clock.update(arrival, self._in_total / self.sample_rate)
        if self._resampler is None:
            samples = np.ascontiguousarray(mono, dtype=np.float32)
        else:
            samples = self._resampler.resample_chunk(mono)
        out_before = self._out_total
        self._out_total += len(samples)
        if len(samples) == 0:
            return None
        # Output sample j of the resampler is input time j / 16 kHz.
        return AudioChunk(samples=samples, t_capture=base + out_before / SAMPLE_RATE)


class _StreamClock:
    """Maps a stream position (seconds of audio) to the monotonic time of its capture.

    Blocks arrive late, or in bursts when an audio server buffers, but never early:
    the smallest ``arrival - position`` seen lately is the best estimate of when
    position 0 was captured. The window lets it follow clock drift and lost blocks.
    """

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._minima: deque[tuple[float, float]] = deque()  # (arrival, offset), rising

    def update(self, arrival: float, position_end: float) -> float:
        """Record a block ending at ``position_end``; returns the capture time of 0."""
        offset = arrival - position_end
        while self._minima and self._minima[-1][1] >= offset:
            self._minima.pop()
        self._minima.append((arrival, offset))
        while self._minima[0][0] < arrival - self._window_s:
            self._minima.popleft()
        return self._minima[0][1]


class FileAudioSource(_SourceBase):
    """Plays an audio file as if it came from a microphone.

    With ``realtime`` chunk *k* is delivered at ``T0 + (k+1)·chunk`` (absolute
    deadlines, so pacing never drifts); otherwise as fast as it is read. Either
    way ``t_capture`` is ``T0 + k·chunk`` on the same virtual clock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        realtime: bool = True,
        chunk_ms: int = 20,
        lead_silence_s: float = 0.0,
        trail_silence_s: float = 0.0,
    ) -> None:
        if chunk_ms <= 0:
            raise ValueError(f"chunk_ms must be positive, not {chunk_ms}")
        self.path = Path(path)
        self.realtime = realtime
        self.chunk_samples = SAMPLE_RATE * chunk_ms // 1000
        self.lead_silence_s = lead_silence_s
        self.trail_silence_s = trail_silence_s
        self._audio: np.ndarray | None = None
        self._index = 0
        self._t0 = 0.0
        self._stopped = threading.Event()

    @property
    def duration(self) -> float:
        """Seconds of audio, silences included (0 before :meth:`start`)."""
        return 0.0 if self._audio is None else len(self._audio) / SAMPLE_RATE

    def start(self) -> None:
        """Decode the file and start the virtual clock; idempotent."""
        if self._audio is not None:
            return
        audio = load_audio(self.path)
        lead = np.zeros(int(self.lead_silence_s * SAMPLE_RATE), np.float32)
        trail = np.zeros(int(self.trail_silence_s * SAMPLE_RATE), np.float32)
        self._audio = np.concatenate([lead, audio, trail])
        self._index = 0
        self._stopped.clear()
        self._t0 = time.monotonic()
        log.debug("playing %s (%.2f s) as a microphone", self.path, self.duration)

    def stop(self) -> None:
        """End the stream; a waiting :meth:`read` returns ``None``."""
        self._stopped.set()

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        """The next chunk, on schedule in realtime mode; ``None`` at the end."""
        if self._audio is None:
            raise AudioSourceError(f"{self.path}: read() before start()")
        if self._stopped.is_set() or self._index >= len(self._audio):
            return None
        k = self._index // self.chunk_samples
        step = self.chunk_samples / SAMPLE_RATE
        if self.realtime:
            wait = self._t0 + (k + 1) * step - time.monotonic()
            if timeout is not None and wait > timeout:
                self._stopped.wait(timeout)
                if self._stopped.is_set():
                    return None
                raise TimeoutError(f"next chunk of {self.path} is due in {wait:.3f} s")
            # Waiting on the event (not sleeping) lets stop() interrupt the wait.
            if wait > 0 and self._stopped.wait(wait):
                return None
        samples = self._audio[self._index : self._index + self.chunk_samples]
        self._index += len(samples)
        return AudioChunk(samples=samples, t_capture=self._t0 + k * step)
