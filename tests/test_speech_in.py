"""Speech in: audio files and microphones → VAD segmentation → Whisper → utterances.

Everything here is real: the bundled tiny.en model, Silero VAD, files decoded by
PyAV, speech synthesised with espeak-ng, and a PulseAudio null sink whose monitor
is the microphone. Run with ``HERON_TEST_SINK=<name>`` to use a private sink.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from heron.agent import audio_source
from heron.agent.audio_source import (
    AudioSource,
    FileAudioSource,
    MicrophoneSource,
    list_audio_devices,
    load_audio,
)
from heron.agent.config import MicrophoneConfig, STTConfig, VADConfig
from heron.agent.errors import AudioSourceError, ModelError
from heron.agent.events import SAMPLE_RATE, AudioChunk, Utterance
from heron.agent.listener import Listener
from heron.agent.stt import Transcriber
from heron.agent.vad import (
    SileroVAD,
    SpeechEnded,
    SpeechStarted,
    UtteranceSegmenter,
    VoiceGone,
    VoiceOnset,
)
from tests.conftest import need
from tests.support.pulse import VirtualAudio
from tests.support.words import word_errors, words

JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
SHOP = "What time does the shop open?"
GLASSES = "Where did I leave my glasses?"


def write_wav(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    sf.write(path, audio, rate)
    return path


def trim(audio: np.ndarray, level: float = 0.01) -> np.ndarray:
    """Cut the silence espeak-ng puts around its speech."""
    loud = np.flatnonzero(np.abs(audio) > level)
    return audio[loud[0] : loud[-1] + 1]


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    stt = Transcriber()
    stt.load()
    return stt


@pytest.fixture(scope="module")
def jfk_wav(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jfk.flac as 16-bit WAV: paplay (libsndfile) plays the 24-bit FLAC as noise."""
    audio, rate = sf.read(data_dir / "jfk.flac", dtype="float32")
    path = tmp_path_factory.mktemp("jfk") / "jfk.wav"
    sf.write(path, audio, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def speak(tmp_path_factory: pytest.TempPathFactory):
    """Synthesise text with espeak-ng; returns 16 kHz mono samples (and the file)."""
    if shutil.which("espeak-ng") is None:
        need("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("speech")

    def _speak(text: str) -> tuple[np.ndarray, Path]:
        path = folder / f"{abs(hash(text))}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, timeout=30)
        return load_audio(path), path

    return _speak


class Collector:
    """Callbacks for a Listener that record what they get."""

    def __init__(self) -> None:
        self.utterances: list[Utterance] = []
        self.errors: list[Exception] = []
        self.starts: list[float] = []
        self.heard = threading.Event()
        self.failed = threading.Event()
        self.expect: list[str] = []
        """Set ``heard`` once the words heard so far end with these (or on any utterance)."""

    def listener(self, source: AudioSource, stt: Transcriber, **vad: int) -> Listener:
        return Listener(
            source,
            UtteranceSegmenter(VADConfig(**vad), SileroVAD()),
            stt,
            on_utterance=self._utterance,
            on_speech_start=self.starts.append,
            on_error=self._error,
            source_kind="file" if isinstance(source, FileAudioSource) else "microphone",
        )

    def _utterance(self, utterance: Utterance) -> None:
        self.utterances.append(utterance)
        if not self.expect or self.words[-len(self.expect) :] == self.expect:
            self.heard.set()

    def _error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.failed.set()

    @property
    def words(self) -> list[str]:
        return [w for u in self.utterances for w in words(u.text)]


def listen_to_file(path: Path, stt: Transcriber, **vad: int) -> Collector:
    got = Collector()
    listener = got.listener(FileAudioSource(path, realtime=False, trail_silence_s=1.0), stt, **vad)
    listener.start()
    assert listener.join(60), "the listener did not finish"
    assert got.errors == []
    return got


# --- files ----------------------------------------------------------------------------


def test_load_audio_jfk(data_dir: Path) -> None:
    audio = load_audio(data_dir / "jfk.flac")  # 44.1 kHz stereo, 11.0 s
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 11 * SAMPLE_RATE) <= 16
    assert 0.05 < np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("rate", [8000, 48000])
def test_load_audio_any_rate_stereo(tmp_path: Path, rate: int) -> None:
    t = np.arange(int(1.5 * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = write_wav(tmp_path / f"tone{rate}.wav", np.stack([tone, tone], axis=1), rate)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - int(1.5 * SAMPLE_RATE)) <= 2
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(audio) - 440) < 2
    assert abs(np.sqrt(np.mean(audio[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.02


def test_load_audio_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    no_samples = write_wav(tmp_path / "nosamples.wav", np.zeros((0, 2), np.float32), 8000)
    garbage = tmp_path / "garbage.mp3"
    garbage.write_bytes(os.urandom(4096))
    cases = {
        tmp_path / "missing.wav": "not found",
        empty: "empty",
        no_samples: "no samples",
        garbage: "cannot decode",
    }
    for path, reason in cases.items():
        with pytest.raises(AudioSourceError, match=reason) as info:
            load_audio(path)
        assert path.name in str(info.value)


def test_transcribe_jfk_exactly(transcriber: Transcriber, data_dir: Path) -> None:
    result = transcriber.transcribe_file(data_dir / "jfk.flac")
    assert words(result.text) == words(JFK)
    assert result.duration_s == pytest.approx(11.0, abs=0.01)
    assert result.no_speech_prob < 0.5
    print(f"jfk (11 s) transcribed in {result.elapsed_s:.2f} s")


def test_transcribe_silence_is_empty(transcriber: Transcriber) -> None:
    assert transcriber.transcribe(np.zeros(0, np.float32)).text == ""
    quiet = np.random.default_rng(1).standard_normal(3 * SAMPLE_RATE).astype(np.float32) * 1e-3
    assert transcriber.transcribe(quiet).text == ""


def test_model_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model\.bin"):
        Transcriber(STTConfig(model=str(tmp_path))).load()
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelError, match=re.escape(str(tmp_path))):
        Transcriber(STTConfig(model=str(tmp_path))).transcribe(np.ones(1600, np.float32))


def test_file_source_realtime_pacing(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "one.wav", np.full(SAMPLE_RATE, 0.1, np.float32))
    source = FileAudioSource(path, realtime=True, chunk_ms=20, trail_silence_s=0.2)
    with source:
        t0 = time.monotonic()
        chunks: list[AudioChunk] = []
        late = []
        while (chunk := source.read()) is not None:
            now = time.monotonic()
            assert now >= chunk.t_end - 1e-3, "delivered before it was 'captured'"
            late.append(now - chunk.t_end)
            chunks.append(chunk)
        elapsed = time.monotonic() - t0
    assert len(chunks) == 60 and all(len(c.samples) == 320 for c in chunks)
    assert elapsed == pytest.approx(1.2, abs=0.06)
    steps = np.diff([c.t_capture for c in chunks])
    assert np.allclose(steps, 0.02)
    assert max(late) < 0.03, f"chunks up to {max(late) * 1000:.1f} ms late"
    assert source.read() is None


def test_file_source_fast_and_timeout(data_dir: Path) -> None:
    fast = FileAudioSource(data_dir / "jfk.flac", realtime=False)
    with fast:
        t0 = time.perf_counter()
        total = 0
        while (chunk := fast.read()) is not None:
            total += len(chunk.samples)
        elapsed = time.perf_counter() - t0
    assert total == 11 * SAMPLE_RATE and elapsed < 0.2
    slow = FileAudioSource(data_dir / "jfk.flac", realtime=True, chunk_ms=200)
    with slow, pytest.raises(TimeoutError):
        slow.read(timeout=0.01)


# --- segmentation ------------------------------------------------------------------------


def test_two_questions_make_two_utterances(tmp_path: Path, speak, transcriber: Transcriber) -> None:
    first, _ = speak(SHOP)
    second, _ = speak(GLASSES)
    gap = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    path = write_wav(tmp_path / "two.wav", np.concatenate([gap, trim(first), gap, trim(second)]))
    got = listen_to_file(path, transcriber)
    a, b = got.utterances
    assert word_errors(SHOP, a.text) <= 1, a.text
    assert word_errors(GLASSES, b.text) <= 1, b.text
    assert a.source == "file" and a.audio is not None
    # (fast mode runs the virtual clock ahead of real time, so t_final is not compared)
    assert a.t_start < a.t_end < b.t_start < b.t_end
    # Onset and end match where the speech is, within a few VAD windows.
    # (a soft last syllable may fall under the VAD threshold a little early)
    assert a.t_end - a.t_start == pytest.approx(len(trim(first)) / SAMPLE_RATE, abs=0.35)
    assert b.t_start - a.t_end == pytest.approx(1.5, abs=0.25)
    assert len(got.starts) == 2
    # Audio: the pre-roll before the onset, 100 ms after the end of speech.
    pre_roll = VADConfig().pre_roll_ms / 1000
    assert len(a.audio) / SAMPLE_RATE == pytest.approx(
        a.t_end - a.t_start + pre_roll + 0.1, abs=0.01
    )
    print(f"speech {len(trim(first)) / SAMPLE_RATE:.2f} s, segment {a.t_end - a.t_start:.2f} s")


def test_short_pause_does_not_cut(tmp_path: Path, speak, transcriber: Transcriber) -> None:
    head, _ = speak("Where did I leave")
    tail, _ = speak("my glasses?")
    pause = np.zeros(int(0.25 * SAMPLE_RATE), np.float32)
    lead = np.zeros(SAMPLE_RATE // 2, np.float32)
    path = write_wav(tmp_path / "pause.wav", np.concatenate([lead, trim(head), pause, trim(tail)]))
    got = listen_to_file(path, transcriber)
    assert len(got.utterances) == 1, [u.text for u in got.utterances]
    assert words(got.utterances[0].text) == words(GLASSES)


def test_minutes_of_silence_give_nothing() -> None:
    rng = np.random.default_rng(2)
    silence = np.zeros(120 * SAMPLE_RATE, np.float32)
    silence[60 * SAMPLE_RATE :] = rng.standard_normal(60 * SAMPLE_RATE) * 3e-3  # low hiss
    segmenter = UtteranceSegmenter(VADConfig(), SileroVAD())
    t0 = time.perf_counter()
    events = []
    for k, start in enumerate(range(0, len(silence), 320)):
        events += segmenter.push(AudioChunk(silence[start : start + 320], t_capture=k * 0.02))
    events += segmenter.flush()
    elapsed = time.perf_counter() - t0
    assert events == []
    print(f"VAD + segmenter: {elapsed / 120 * 1000:.2f} ms per second of audio")
    assert elapsed < 5


def test_clipped_speech_still_transcribes(tmp_path: Path, speak, transcriber: Transcriber) -> None:
    speech, _ = speak(SHOP)
    clipped = np.clip(speech * 10, -1, 1)
    assert np.mean(np.abs(clipped) >= 1) > 0.05  # really clipped
    path = write_wav(tmp_path / "clipped.wav", np.concatenate([np.zeros(8000), clipped]))
    got = listen_to_file(path, transcriber)
    # live utterances are decoded on a 10 s window (a sixth of the cost of Whisper's
    # 30 s one): on speech this distorted it may get one word wrong
    assert word_errors(SHOP, " ".join(got.words)) <= 1, got.words


def test_short_bursts_are_ignored(speak) -> None:
    rng = np.random.default_rng(3)
    speech, _ = speak("Hey")
    blip = trim(speech)[: int(0.08 * SAMPLE_RATE)]  # 80 ms of voice
    noise = (rng.standard_normal(int(0.06 * SAMPLE_RATE)) * 0.5).astype(np.float32)
    click = np.zeros(SAMPLE_RATE // 10, np.float32)
    click[10] = 1.0
    second = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([second, blip, second, noise, second, click, second])
    segmenter = UtteranceSegmenter(VADConfig(), SileroVAD())
    events = []
    for k, start in enumerate(range(0, len(audio), 320)):
        events += segmenter.push(AudioChunk(audio[start : start + 320], t_capture=k * 0.02))
    events += segmenter.flush()
    # each burst is noticed at once (it may be the start of speech: barge-in pauses)
    # and then dropped: no utterance
    assert not [e for e in events if isinstance(e, SpeechStarted | SpeechEnded)]
    kinds = [type(e) for e in events]
    assert kinds == [VoiceOnset, VoiceGone] * (len(kinds) // 2), kinds


def test_max_utterance_forces_a_cut(data_dir: Path) -> None:
    audio = load_audio(data_dir / "jfk.flac")
    segmenter = UtteranceSegmenter(
        VADConfig(max_utterance_s=1.5, min_silence_ms=2000),
        SileroVAD(),
    )
    events = []
    for k, start in enumerate(range(0, len(audio), 320)):
        events += segmenter.push(AudioChunk(audio[start : start + 320], t_capture=k * 0.02))
    events += segmenter.flush()
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ended) >= 4
    assert all(e.t_end - e.t_start <= 1.5 + 0.05 for e in ended)
    started = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(started) == len(ended)
    assert [e.utterance for e in started] == list(range(1, len(started) + 1))


# --- microphone ------------------------------------------------------------------------


def play_and_listen(
    virtual_audio: VirtualAudio, path: Path, mic: MicrophoneConfig, stt: Transcriber, tail: str
) -> Collector:
    got = Collector()
    got.expect = words(tail)
    listener = got.listener(MicrophoneSource(mic), stt)
    listener.start()
    t_play = time.monotonic()
    player = virtual_audio.play(path)
    try:
        assert player.wait(30) == 0
        assert got.heard.wait(15), f"heard only {got.words}"
    finally:
        player.kill()
        listener.stop()
        assert listener.join(10)
    assert got.errors == []
    first = got.utterances[0]
    assert t_play < first.t_start < first.t_end < first.t_final
    return got


def test_microphone_48k_stereo_hears_jfk(
    virtual_audio: VirtualAudio, jfk_wav: Path, transcriber: Transcriber
) -> None:
    mic = MicrophoneConfig(device=virtual_audio.device, sample_rate=48000, channels=2)
    got = play_and_listen(virtual_audio, jfk_wav, mic, transcriber, "for your country")
    # what matters here is the device path (48 kHz stereo → 16 kHz mono): jfk's pauses
    # cut it into pieces, each transcribed on its own, so tiny.en may slip once a piece
    heard = " ".join(got.words)
    assert "ask what you can do for your country" in heard, heard
    assert word_errors(JFK, heard) <= 5, heard
    lag = [u.t_final - u.t_end for u in got.utterances]
    print(f"jfk over the microphone: {len(got.utterances)} utterances, end→text {lag}")


def test_microphone_44k_hears_a_question(
    virtual_audio: VirtualAudio, speak, transcriber: Transcriber
) -> None:
    _, path = speak(SHOP)
    mic = MicrophoneConfig(device=virtual_audio.device, sample_rate=44100)
    got = play_and_listen(virtual_audio, path, mic, transcriber, "")
    assert len(got.utterances) == 1
    assert word_errors(SHOP, " ".join(got.words)) <= 1, got.words


def test_missing_microphone_is_a_clear_error(virtual_audio: VirtualAudio) -> None:
    names = [d["name"] for d in list_audio_devices() if d["max_input_channels"] > 0]
    assert virtual_audio.device in names
    mic = MicrophoneSource(MicrophoneConfig(device="no-such-microphone"))
    with pytest.raises(AudioSourceError, match="no-such-microphone") as info:
        mic.start()
    assert virtual_audio.device in str(info.value)  # lists what is available


def _kill_my_recording_streams() -> int:
    """Kill this process's PulseAudio recording streams, as if the device vanished."""
    listed = subprocess.run(
        ["pactl", "-f", "json", "list", "source-outputs"], capture_output=True, text=True
    )
    mine = [
        s["index"]
        for s in json.loads(listed.stdout or "[]")
        if s["properties"].get("application.process.id") == str(os.getpid())
    ]
    for index in mine:
        subprocess.run(["pacmd", "kill-source-output", str(index)], check=True, timeout=10)
    return len(mine)


def test_microphone_vanishing_ends_the_listener(
    virtual_audio: VirtualAudio, transcriber: Transcriber
) -> None:
    if shutil.which("pacmd") is None:
        need("pacmd is not installed (pulseaudio-utils)")
    mic = MicrophoneConfig(device=virtual_audio.device, sample_rate=48000, channels=2)
    direct_errors: list[Exception] = []
    source = MicrophoneSource(mic, on_error=direct_errors.append)
    with source:
        assert source.read(timeout=5) is not None
        assert _kill_my_recording_streams() == 1
        with pytest.raises(AudioSourceError, match="pulse"):
            while source.read(timeout=5) is not None:
                pass
    assert len(direct_errors) == 1

    got = Collector()
    listener = got.listener(MicrophoneSource(mic), transcriber)
    listener.start()
    assert _kill_my_recording_streams() == 1
    assert got.failed.wait(5), "on_error was not called"
    assert listener.join(5) and listener.done.is_set()
    assert isinstance(got.errors[0], AudioSourceError)
    assert "stopped delivering audio" in str(got.errors[0])


def test_microphone_going_silent_is_an_error(
    virtual_audio: VirtualAudio, transcriber: Transcriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suspended sink: the stream stays open but no audio arrives."""
    monkeypatch.setattr(audio_source, "NO_AUDIO_TIMEOUT_S", 1.5)
    got = Collector()
    listener = got.listener(
        MicrophoneSource(MicrophoneConfig(device=virtual_audio.device)), transcriber
    )
    listener.start()
    subprocess.run(["pactl", "suspend-sink", virtual_audio.sink, "1"], check=True, timeout=10)
    try:
        assert got.failed.wait(5), "on_error was not called"
    finally:
        subprocess.run(["pactl", "suspend-sink", virtual_audio.sink, "0"], check=True, timeout=10)
    assert listener.join(5)
    assert isinstance(got.errors[0], AudioSourceError)
    assert "delivered no audio" in str(got.errors[0])
