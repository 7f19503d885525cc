"""Which utterances are turns: always listening, push-to-talk, or a wake phrase.

A pure policy with no audio and no threads of its own. The live loop asks
:meth:`TurnPolicy.decide` (or :meth:`TurnPolicy.accept`) about every transcribed
utterance; a window or a terminal presses the talk key through
:class:`~heron.agent.live_events.LiveControls`, which :meth:`TurnPolicy.attach`
turns into :meth:`TurnPolicy.press` / :meth:`TurnPolicy.release`.

- ``always``: every utterance with words in it is a turn.
- ``push_to_talk``: only utterances that overlap a press of the talk key (with a
  small grace either side: people start talking a moment before the key is down
  and stop a moment after it is up). Releasing the key ends the utterance at once
  (:meth:`TurnPolicy.wants_endpoint_now` or :meth:`TurnPolicy.on_endpoint`), so
  the reply does not wait for the silence timeout.
- ``wake_phrase``: only utterances that start with the wake phrase ("Heron, read
  this"), which is stripped from the turn's text. Whisper writes names loosely
  ("Hey Heron,", "Heron.", "Herron", "Harin", "Her on"), so the match skips a
  leading greeting, ignores punctuation and case, and takes words close in spelling
  or in sound (Metaphone). The wake phrase alone ("Heron?") opens a window: the next
  utterance within ``wake_window_s`` is a turn. Whisper tiny.en also hears unusual
  names as common words ("Heaven, read this"); :attr:`TurnPolicy.stt_hint` is what
  to prime it with (faster-whisper's ``hotwords``), which bench/wake_phrase.py
  measures.

Typed text (``Utterance.source == "text"``) is always a turn: typing is deliberate.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

import jellyfish

from .config import ListenConfig
from .errors import ConfigError
from .events import Utterance
from .live_events import LiveControls

DecisionKind = Literal["turn", "ignored", "woken"]

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
"""A word: letters and digits, with inner apostrophes ("what's")."""

LEADING_PUNCTUATION = re.compile(r"^[\s,.;:!?\-–—…\"'“”‘’]+")

GREETINGS = frozenset({"hey", "hi", "hello", "ok", "okay", "oh", "yo", "so", "um", "uh", "a"})
"""Words people (or Whisper) put before a name: "Hey Heron", "OK, Heron", "Uh, Heron"."""

MAX_GREETINGS = 2

MIN_SIMILARITY = 0.8
"""Of a heard word to the wake word (difflib ratio): "herron" 0.91, "hero" 0.89, "her" 0.75."""

MIN_SOUND_SIMILARITY = 0.5
"""Enough for a word that also sounds the same (equal Metaphone codes): "harin", "harren"."""

MIN_SPLIT_SIMILARITY = 0.95
"""For the wake phrase heard as two words ("her on"): all but exact, or "here on" would wake."""

KEPT_PRESSES = 64


@dataclass(frozen=True)
class Decision:
    """What the policy made of one utterance."""

    kind: DecisionKind
    text: str | None
    """The turn's text (wake phrase stripped) when ``kind == "turn"``, else None."""
    reason: str
    """Why, in words for the session log ("no wake phrase", "outside push-to-talk"…)."""

    @property
    def is_turn(self) -> bool:
        return self.kind == "turn"


def _normalize(word: str) -> str:
    """Lower case, no accents, no possessive: "Héron's" -> "heron"."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).replace("’", "'")
    return plain.removesuffix("'s")


def _similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def sounds_like(heard: str, wake: str) -> bool:
    """Whether a heard word is the wake word as Whisper may write it.

    Close in spelling ("herron", "hero"), or sounding the same by Metaphone and not far
    in spelling ("harin", "harren"); never much longer ("heronly" is another word).
    """
    if abs(len(heard) - len(wake)) > max(1, len(wake) // 4):
        return False
    similarity = _similarity(heard, wake)
    if similarity >= MIN_SIMILARITY:
        return True
    code = jellyfish.metaphone(heard)
    return (
        similarity >= MIN_SOUND_SIMILARITY and len(code) >= 2 and code == jellyfish.metaphone(wake)
    )


def wake_phrase_words(phrase: str) -> list[list[str]]:
    """The words to listen for, per alternative ("heron|hey aaron"), less a leading greeting.

    "Hey Heron" listens for "heron" (after any greeting), so "Heron, ..." wakes it too.
    Raises :class:`ConfigError` for a phrase (or an alternative) with no words.
    """
    alternatives: list[list[str]] = []
    for alternative in phrase.split("|"):
        words = [_normalize(m.group()) for m in WORD.finditer(alternative)]
        if not words:
            raise ConfigError(
                f"HERON_LISTEN_WAKE_PHRASE = {phrase!r}: {alternative.strip()!r} has no words "
                "to listen for (give a name, or names separated by |)"
            )
        while len(words) > 1 and words[0] in GREETINGS:
            words = words[1:]
        alternatives.append(words)
    return alternatives


def match_wake_phrase(text: str, wake: list[list[str]]) -> int | None:
    """Where ``text`` goes on after a wake phrase at its start, or None if it doesn't start so.

    ``wake`` comes from :func:`wake_phrase_words`. Up to two greetings may come first.
    """
    words = list(WORD.finditer(text))
    normalized = [_normalize(m.group()) for m in words]
    for skip in range(MAX_GREETINGS + 1):
        if skip and (skip > len(normalized) or normalized[skip - 1] not in GREETINGS):
            break
        for phrase in wake:
            n = len(phrase)
            heard = normalized[skip : skip + n]
            if len(heard) == n and all(map(sounds_like, heard, phrase)):
                return words[skip + n - 1].end()
            split = "".join(normalized[skip : skip + n + 1])
            if (
                skip + n < len(words)
                and _similarity(split, "".join(phrase)) >= MIN_SPLIT_SIMILARITY
            ):
                return words[skip + n].end()
    return None


class TurnPolicy:
    """Decides which utterances start turns, under one :class:`ListenConfig`.

    Thread-safe: the talk key is pressed on a UI thread while utterances are decided
    on the session's loop. ``clock`` (monotonic seconds, as utterance times are) is
    injectable for tests.
    """

    def __init__(
        self, config: ListenConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._clock = clock
        self._wake = wake_phrase_words(config.wake_phrase)
        self._lock = threading.Lock()
        # push-to-talk: [pressed at, released at]; released at is inf while held
        self._presses: deque[list[float]] = deque(maxlen=KEPT_PRESSES)
        self._endpoint_pending = False
        self._endpoint_listeners: list[Callable[[], None]] = []
        # wake phrase: the next utterance starting before this time is a turn
        self._open_until: float | None = None
        self.last: Decision | None = None
        """The latest decision, for logging why an utterance was ignored."""

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def stt_hint(self) -> str | None:
        """Words to bias speech recognition towards (faster-whisper's ``hotwords``).

        Whisper tiny.en hears an unusual name as a common word ("Heron, read this" as
        "Heaven, read this"); primed with the name it writes the name.
        """
        if self.config.mode != "wake_phrase":
            return None
        return ", ".join(a.strip() for a in self.config.wake_phrase.split("|") if a.strip())

    def describe(self) -> str:
        """The mode in a few words, for a status line."""
        if self.config.mode == "push_to_talk":
            return f"push-to-talk ({self.config.push_to_talk_key})"
        if self.config.mode == "wake_phrase":
            first = self.config.wake_phrase.split("|")[0].strip()
            return f'say "{first}" first'
        return "always listening"

    # -- utterances ---------------------------------------------------------------------

    def accept(self, utterance: Utterance) -> str | None:
        """The text to use for the turn, or None to ignore it (``last.reason`` says why)."""
        return self.decide(utterance).text

    def decide(self, utterance: Utterance) -> Decision:
        with self._lock:
            decision = self._decide(utterance)
            self.last = decision
            return decision

    def _decide(self, utterance: Utterance) -> Decision:
        text = utterance.text.strip()
        if not WORD.search(text):
            return Decision("ignored", None, "no words")
        if utterance.source == "text":
            return Decision("turn", text, "typed")
        if self.config.mode == "push_to_talk":
            if self._overlaps_press(utterance.t_start, utterance.t_end):
                return Decision("turn", text, "during push-to-talk")
            return Decision("ignored", None, "outside push-to-talk")
        if self.config.mode == "wake_phrase":
            return self._decide_wake(utterance, text)
        return Decision("turn", text, "always listening")

    def _decide_wake(self, utterance: Utterance, text: str) -> Decision:
        end = match_wake_phrase(text, self._wake)
        if end is not None:
            rest = LEADING_PUNCTUATION.sub("", text[end:]).strip()
            if WORD.search(rest):
                self._open_until = None
                return Decision("turn", rest, "wake phrase")
            self._open_until = utterance.t_end + self.config.wake_window_s
            return Decision(
                "woken", None, f"wake phrase alone: listening {self.config.wake_window_s:g} s"
            )
        if self._open_until is not None and utterance.t_start <= self._open_until:
            self._open_until = None
            return Decision("turn", text, "after the wake phrase")
        self._open_until = None
        return Decision("ignored", None, "no wake phrase")

    @property
    def awake(self) -> bool:
        """In wake-phrase mode: the wake phrase was just said and the next utterance counts."""
        with self._lock:
            return self._open_until is not None and self._clock() <= self._open_until

    # -- the talk key -------------------------------------------------------------------

    def press(self, t: float | None = None) -> None:
        """The talk key went down at ``t`` (default now); a second press is ignored."""
        with self._lock:
            if self._presses and self._presses[-1][1] == float("inf"):
                return
            self._presses.append([self._clock() if t is None else t, float("inf")])

    def release(self, t: float | None = None) -> None:
        """The talk key came up: in push-to-talk mode the utterance ends now."""
        with self._lock:
            if not self._presses or self._presses[-1][1] != float("inf"):
                return
            self._presses[-1][1] = self._clock() if t is None else t
            notify = self.config.mode == "push_to_talk"
            if notify:
                self._endpoint_pending = True
            listeners = list(self._endpoint_listeners) if notify else []
        for listener in listeners:
            listener()

    @property
    def pressed(self) -> bool:
        with self._lock:
            return bool(self._presses) and self._presses[-1][1] == float("inf")

    def mic_open(self, t: float | None = None) -> bool:
        """Whether speech at ``t`` (default now) can make a turn: False only for an idle key."""
        if self.config.mode != "push_to_talk":
            return True
        now = self._clock() if t is None else t
        with self._lock:
            return self._overlaps_press(now, now)

    def wants_endpoint_now(self) -> bool:
        """True once after each release of the talk key: end the utterance in progress."""
        with self._lock:
            pending, self._endpoint_pending = self._endpoint_pending, False
            return pending

    def on_endpoint(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (on the releasing thread) when the talk key is released."""
        with self._lock:
            self._endpoint_listeners.append(listener)

    def attach(self, controls: LiveControls) -> None:
        """Follow the talk key of a window or terminal (``controls.push_to_talk``)."""
        controls.on_push_to_talk(lambda down: self.press() if down else self.release())
        if controls.talk_pressed:
            self.press()

    def _overlaps_press(self, t_start: float, t_end: float) -> bool:
        grace = self.config.push_to_talk_grace_s
        return any(down - grace <= t_end and t_start <= up + grace for down, up in self._presses)
