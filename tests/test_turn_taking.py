"""Real-time turn-taking on real parts: streaming transcripts, endpoints, streamed replies,
barge-in and what the conversation records of an interrupted reply.

Speech is espeak-ng's, transcribed by the bundled Whisper tiny.en; replies are played
into PulseAudio's null sink; the model is the scripted server on loopback.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from heron.agent.audio_source import FileAudioSource
from heron.agent.config import STTConfig, VADConfig, load_settings
from heron.agent.endpointing import endpoint_silence_ms, sentence_state
from heron.agent.events import SAMPLE_RATE, Utterance
from heron.agent.listener import Listener, Partial
from heron.agent.playback import Speaker, SpeakerSink, WavFileSink
from heron.agent.session import Session
from heron.agent.stt import Transcriber
from heron.agent.tts import Synthesizer
from heron.agent.vad import SileroVAD, UtteranceSegmenter
from heron.memory.session_log import read_session_log
from tests.conftest import need
from tests.support.pulse import VirtualAudio
from tests.support.vlm_server import ScriptedVLM, Step
from tests.support.words import word_errors

LONG_REPLY = (
    "The kitchen has a white table with three green bottles on it. "
    "Behind the table there is a window with blue curtains. "
    "On the left there is a tall shelf full of cookbooks and jars. "
    "The floor is made of light wooden boards."
)


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    stt = Transcriber()
    stt.warmup()
    return stt


@pytest.fixture(scope="module")
def synth() -> Any:
    synthesizer = Synthesizer(load_settings().tts)
    yield synthesizer
    synthesizer.close()


def espeak_wav(path: Path, text: str, *, gap_s: float = 0.0) -> Path:
    """Speech by espeak-ng at 16 kHz; ``gap_s`` of silence before and after."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
    audio, rate = sf.read(raw, dtype="float32")
    import soxr

    audio = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.01)  # espeak pads its speech with silence
    audio = audio[loud[0] : loud[-1] + 1]
    pad = np.zeros(int(gap_s * SAMPLE_RATE), np.float32)
    sf.write(path, np.concatenate([pad, audio, pad]), SAMPLE_RATE)
    return path


def listen(
    path: Path, transcriber: Transcriber, stats: dict[str, int] | None = None, **vad: Any
) -> tuple[list[Utterance], list[Any]]:
    utterances: list[Utterance] = []
    partials: list[Partial] = []
    listener = Listener(
        FileAudioSource(path, realtime=True, trail_silence_s=1.5),
        UtteranceSegmenter(VADConfig(**vad), SileroVAD()),
        transcriber,
        on_utterance=utterances.append,
        on_partial=partials.append,
        source_kind="file",
    )
    listener.start()
    assert listener.join(60)
    assert listener.error is None
    if stats is not None:
        stats.update(listener.stats)
    return utterances, partials


# -- endpointing and streaming transcription --------------------------------------------


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("What time does the shop open?", "complete"),
        ("Read the label.", "complete"),
        ("What does the sign in front of the", "continuing"),
        ("Can you tell me,", "continuing"),
        ("I want to go to the station and", "continuing"),
        ("okay", "unsure"),
        ("", "unsure"),
    ],
)
def test_sentence_state(text: str, state: str) -> None:
    assert sentence_state(text) == state


def test_endpoint_silence_follows_the_words() -> None:
    config = VADConfig()
    assert endpoint_silence_ms("Where is the bus stop?", config) == config.complete_silence_ms
    assert endpoint_silence_ms("Where is the", config) == config.continue_silence_ms
    assert endpoint_silence_ms("hmm yes", config) == config.min_silence_ms
    fixed = VADConfig(smart_endpoint=False, min_silence_ms=300)
    assert endpoint_silence_ms("Where is the", fixed) == 300
    assert config.min_silence_ms <= 400  # the default silence the turn-taking targets


def test_short_window_transcribes_like_the_full_one(
    tmp_path: Path, transcriber: Transcriber
) -> None:
    question = "What time does the shop open?"
    audio, _ = sf.read(espeak_wav(tmp_path / "q.wav", question, gap_s=0.3), dtype="float32")
    short = transcriber.transcribe(audio)
    full = Transcriber(STTConfig(window_s=30))
    assert word_errors(question, short.text) == 0, short.text
    assert word_errors(question, full.transcribe(audio).text) == 0
    # the encoder's cost is proportional to its window: the short one is faster
    times = {}
    for name, stt in (("short", transcriber), ("full", full)):
        runs = []
        for _ in range(3):
            runs.append(stt.transcribe(audio).elapsed_s)
        times[name] = min(runs)
    assert times["short"] < times["full"], times


def test_partials_arrive_while_speaking_and_the_final_is_ready_at_the_endpoint(
    tmp_path: Path, transcriber: Transcriber
) -> None:
    question = "Could you please tell me what time the shop on the corner opens?"
    path = espeak_wav(tmp_path / "q.wav", question, gap_s=0.5)
    stats: dict[str, int] = {}
    (utterance,), partials = listen(path, transcriber, stats)
    assert word_errors(question, utterance.text) <= 2, utterance.text
    during = [p for p in partials if p.t < utterance.t_end]
    assert len(during) >= 2, [p.text for p in partials]  # the words, while still speaking
    assert during[-1].text.split()[0].lower() == utterance.text.split()[0].lower()
    # transcribed when the silence began, while the endpoint's silence ran: the
    # final transcript is that one, not a second pass over the whole utterance
    assert stats["finals"] == stats["finals_from_pause"] == 1


def test_a_pause_inside_a_sentence_does_not_end_it(
    tmp_path: Path, transcriber: Transcriber
) -> None:
    first = espeak_wav(tmp_path / "a.wav", "I would like to know the way to the")
    second = espeak_wav(tmp_path / "b.wav", "train station in the city centre.")
    a, _ = sf.read(first, dtype="float32")
    b, _ = sf.read(second, dtype="float32")
    pause = np.zeros(int(0.6 * SAMPLE_RATE), np.float32)  # longer than the 400 ms default
    sf.write(tmp_path / "both.wav", np.concatenate([pause, a, pause, b, pause]), SAMPLE_RATE)
    utterances, _ = listen(tmp_path / "both.wav", transcriber)
    assert len(utterances) == 1, [u.text for u in utterances]
    assert "station" in utterances[0].text.lower()


def test_long_speech_commits_at_pauses_and_keeps_every_word(
    tmp_path: Path, transcriber: Transcriber
) -> None:
    sentences = [
        "The first sentence is about the weather in the morning and",
        "the second one talks about the bus that comes at nine and",
        "the third one ends the story of the day.",
    ]
    parts = []
    for i, sentence in enumerate(sentences):
        audio, _ = sf.read(espeak_wav(tmp_path / f"{i}.wav", sentence), dtype="float32")
        parts += [audio, np.zeros(int(0.25 * SAMPLE_RATE), np.float32)]
    sf.write(tmp_path / "long.wav", np.concatenate(parts), SAMPLE_RATE)
    utterances, _ = listen(tmp_path / "long.wav", transcriber)
    heard = " ".join(u.text for u in utterances)
    reference = " ".join(sentences)
    # nothing lost or repeated where the words before a pause were committed: as
    # close to the words as one pass over the whole recording gets, give or take
    whole = transcriber.transcribe(np.concatenate(parts)).text
    assert abs(len(heard.split()) - len(reference.split())) <= 3, heard
    assert word_errors(reference, heard) <= word_errors(reference, whole) + 6, (heard, whole)
    assert heard.lower().startswith("the first")


# -- streamed replies -------------------------------------------------------------------


class TimedWavSink(WavFileSink):
    """A WAV file sink that notes when each piece of audio was handed to it."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.plays: list[float] = []

    def play(self, samples: Any, sample_rate: int, *, cancel: Any = None) -> Any:
        self.plays.append(time.monotonic())
        return super().play(samples, sample_rate, cancel=cancel)


def test_speech_starts_before_the_model_has_finished(
    heron_env: Path, synth: Synthesizer, transcriber: Transcriber
) -> None:
    reply = "The sign says no parking at any time. The shop opens at nine in the morning."
    step = Step(text=reply, word_delay_s=0.15)  # about 2 s of streaming
    with ScriptedVLM([step]) as vlm:
        settings = load_settings(
            vlm={"base_url": vlm.base_url, "model": "scripted", "max_retries": 0}
        )
        sink = TimedWavSink(heron_env / "reply.wav")
        speaker = Speaker(synth, sink)

        async def main() -> Any:
            async with Session(settings) as session:
                return await session.turn("Is the door open?", speech=speaker.stream())

        result = asyncio.run(main())
        (stream_end,) = vlm.stream_ends
    sink.close()
    assert result.reply == reply
    # the first sentence was played while the model was still streaming the second
    assert len(sink.plays) == 2
    assert sink.plays[0] < stream_end - 0.5, (sink.plays, stream_end)
    assert result.marks["first_audio"] < stream_end
    heard = transcriber.transcribe_file(heron_env / "reply.wav").text
    # both sentences are in the file, in order (tiny.en on espeak-ng: a slip or two)
    assert word_errors(reply, heard) <= 3, heard
    assert heard.lower().index("parking") < heard.lower().index("morning"), heard


# -- barge-in through the virtual devices ----------------------------------------------


def test_interrupted_reply_is_recorded_as_heard(
    virtual_audio: VirtualAudio, heron_env: Path, synth: Synthesizer
) -> None:
    steps = [
        Step(tool_calls=[{"name": "read_text", "arguments": "{}"}]),
        Step(text=LONG_REPLY),
    ]
    with ScriptedVLM(steps, default=Step(text="You stopped me.")) as vlm:
        settings = load_settings(
            vlm={"base_url": vlm.base_url, "model": "scripted", "max_retries": 0},
            speaker={"device": virtual_audio.device},
        )
        sink = primed_sink(virtual_audio)
        speaker = Speaker(synth, sink)

        async def main() -> tuple[Any, list[dict[str, Any]], Any]:
            async with Session(settings) as session:
                stream = speaker.stream()
                turn = asyncio.ensure_future(session.turn("Describe the kitchen.", speech=stream))
                while stream.t_first_audio is None or time.monotonic() - stream.t_first_audio < 2.5:
                    await asyncio.sleep(0.05)
                    assert not turn.done()
                turn.cancel()  # what the conversation does when the user barges in
                with pytest.raises(asyncio.CancelledError):
                    await turn
                second = await session.turn("What did you say?", speech=speaker.stream())
                return session.id, await session.history(), second

        session_id, history, second = asyncio.run(main())
    sink.close()
    cut = next(m for m in history if m.get("interrupted"))
    said = cut["content"].removesuffix(" [interrupted by the user]")
    assert cut["content"].endswith("[interrupted by the user]")
    # about 2.5 s of a 12 s reply: the start of it, not all of it
    assert said and LONG_REPLY.startswith(said.rstrip(".")[:20])
    assert 3 <= len(said.split()) < len(LONG_REPLY.split()) // 2, said
    # the tool call of the cut turn has its result; the next turn went through
    calls = [c["id"] for m in history for c in m.get("tool_calls") or []]
    results = [m["tool_call_id"] for m in history if m.get("role") == "tool"]
    assert calls and set(calls) <= set(results)
    assert second.reply == "You stopped me."
    # the model's next request carried the reply as it was heard
    sent = [m for m in vlm.requests[-1]["messages"] if m["role"] == "assistant"]
    assert any("[interrupted by the user]" in str(m.get("content")) for m in sent)
    log = list(read_session_log(heron_env / "heron-data" / "sessions" / session_id / "log.jsonl"))
    (record,) = [r for r in log if r["kind"] == "interrupted"]
    assert record["said"] == said


def primed_sink(audio: VirtualAudio) -> SpeakerSink:
    """An output that stays open, started with silence (as ``heron live`` keeps it)."""
    sink = SpeakerSink(load_settings(speaker={"device": audio.device}).speaker, keep_alive_s=60)
    sink.play(np.zeros(4410, np.float32), 22050)
    return sink


def test_pause_and_resume_hold_the_place(
    virtual_audio: VirtualAudio, synth: Synthesizer, transcriber: Transcriber, tmp_path: Path
) -> None:
    """A backchannel pauses heron; it then goes on from where it was, every word said."""
    sink = primed_sink(virtual_audio)
    speaker = Speaker(synth, sink)
    text = "The bus to the station leaves at nine. It stops at the market on the way."
    recording = tmp_path / "out.wav"
    recorder = virtual_audio.record(recording)
    stream = speaker.stream()
    stream.feed(text)
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(stream.finish()))
    thread.start()
    while stream.t_first_audio is None or time.monotonic() - stream.t_first_audio < 1.0:
        time.sleep(0.02)
    speaker.pause()
    time.sleep(0.8)
    speaker.resume()
    thread.join(30)
    assert stream.t_first_audio is not None
    elapsed = time.monotonic() - stream.t_first_audio
    time.sleep(2.5)  # the null sink's monitor lags
    recorder.terminate()
    recorder.wait(10)
    sink.close()
    (out,) = done
    assert not out.interrupted and out.said == out.text
    assert elapsed >= out.audio_seconds + 0.7  # the pause added its time, nothing was skipped
    heard = transcriber.transcribe_file(recording).text
    if not heard:
        need("nothing was recorded from the null sink's monitor")
    assert word_errors(text, heard) <= 7, heard  # tiny.en on espeak-ng: a few slips
    assert "station" in heard and "market" in heard  # both sentences, the paused one too
