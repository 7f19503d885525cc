"""Turn-taking for a live conversation: when heron speaks, stops, and listens.

The :class:`Conversation` sits between the listener (voice events, partial and
final transcripts) and the session (one turn per accepted utterance), on the
asyncio loop thread:

- **Barge-in.** The first window of the user's voice (:class:`VoiceOnset`, 32 ms)
  pauses heron's playback at once. If the speech lasts ``barge_in_min_ms`` the
  reply is stopped and the turn cancelled (model call and tools included); the
  conversation records what was heard of the reply. Shorter sounds (a cough,
  "mm-hm") only paused it: playback resumes where it was.
- **Questions cut at a pause.** When the user goes on speaking soon after a turn
  began (``merge_window_s``), that turn was premature: it is cancelled and the
  next turn gets both parts of the question.
- **Own voice.** What the microphone hears is echo-cancelled before the VAD; as a
  last check, an utterance made of the words heron just said is dropped.
- **Modes.** A :class:`~heron.agent.turn_modes.TurnPolicy` decides which utterances
  are turns (always, push-to-talk, wake phrase).

Everything it decides goes to the session log and, as :mod:`live_events
<heron.agent.live_events>`, to whoever shows the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .config import ConversationConfig
from .events import Utterance
from .listener import Partial
from .live_events import (
    LiveEvent,
    LiveState,
    Notice,
    PartialTranscript,
    ReplyText,
    StateChanged,
    TurnLatency,
    UserTurn,
)
from .playback import Speaker, SpeechStream
from .session import Session, TurnResult
from .turn_modes import TurnPolicy
from .vad import (
    SegmenterEvent,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    VoiceGone,
    VoiceOnset,
)

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-z0-9']+")
MERGE_MAX_HEARD_S = 1.5
"""A turn the user continued is merged only if little of its reply was heard."""
RECENT_SPEECH_S = 30.0
"""heron's words stay candidates for echo this long after they were said."""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass
class _Turn:
    number: int
    text: str
    utterance: Utterance
    speech: SpeechStream
    task: asyncio.Task[TurnResult]
    interrupted: bool = False


class Conversation:
    """Runs turns for utterances and handles the user's voice while heron speaks."""

    def __init__(
        self,
        session: Session,
        speaker: Speaker,
        config: ConversationConfig,
        policy: TurnPolicy,
        *,
        emit: Callable[[LiveEvent], None],
        say: Callable[[str], None],
        assistant_name: str = "heron",
    ) -> None:
        self.session = session
        self.speaker = speaker
        self.config = config
        self.policy = policy
        self.emit = emit
        self.say = say
        self.name = assistant_name
        self.turns = 0
        self._current: _Turn | None = None
        self._last: _Turn | None = None
        self._paused_at: float | None = None
        """Capture time of the voice onset that paused playback (None: not paused)."""
        self._confirm: asyncio.TimerHandle | None = None
        self._in_speech = False
        self._voice_active = False
        self._utterance = 0
        self._backchannels: set[int] = set()
        self._recent_speech: deque[tuple[float, list[str]]] = deque(maxlen=32)
        self._state: LiveState = "listening"
        self.on_audio_stopped: Callable[[], None] | None = None
        """Called when a reply is cut off (the echo canceller's reference ends there)."""
        self.finished: list[tuple[Utterance, TurnResult | None]] = []
        """Every turn that ended: its utterance, and its result (None if cut off)."""
        self.barge_in_ms: list[float] = []
        """Voice onset → playback paused, per barge-in (the benchmark reads these)."""

    # -- state --------------------------------------------------------------------

    def set_state(self, state: LiveState) -> None:
        if state != self._state:
            self._state = state
            self.emit(StateChanged(state))

    @property
    def busy(self) -> bool:
        return self._current is not None and not self._current.task.done()

    @property
    def current_task(self) -> asyncio.Task[TurnResult] | None:
        """The turn in progress, if any."""
        return self._current.task if self.busy and self._current is not None else None

    async def finish_turn(self) -> None:
        """Wait for the turn in progress to end (said out, or cut off)."""
        task = self.current_task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await asyncio.sleep(0)  # its done-callbacks run first

    def audio_started(self) -> None:
        """The current reply's first audio reached the device (loop thread)."""
        if self.busy:
            self.set_state("speaking")

    # -- the user's voice (loop thread) -------------------------------------------

    def on_voice(self, event: SegmenterEvent) -> None:
        if isinstance(event, VoiceOnset):
            self._hold(event.t)
        elif isinstance(event, SpeechStarted):
            self._in_speech = self._voice_active = True
            self._utterance = event.utterance
            self.set_state("hearing")
            onset = self._paused_at if self._paused_at is not None else event.t
            self._schedule_confirm(onset)
        elif isinstance(event, SpeechResumed):
            # more words after a pause: it was not a backchannel after all
            self._voice_active = True
            if self._hold(event.t):
                self._schedule_confirm(event.t)
        elif isinstance(event, SpeechPaused):
            self._voice_active = False
        elif isinstance(event, VoiceGone):
            self._resume_if_paused("a short sound")
        elif isinstance(event, SpeechEnded):
            self._in_speech = self._voice_active = False
            if self._confirm is not None:
                self._cancel_confirm()
                self._backchannel(event.utterance)
            if not self.busy:
                self.set_state("listening")

    def on_partial(self, partial: Partial) -> None:
        self.emit(PartialTranscript(partial.text))

    def _hold(self, t: float) -> bool:
        """Pause heron's reply at the first sign of the user's voice; True if it did."""
        if not (
            self.config.barge_in
            and self.busy
            and self.speaker.speaking
            and self._paused_at is None
            and self.policy.mic_open(t)
        ):
            return False
        self.speaker.pause()
        self._paused_at = t
        self.barge_in_ms.append((time.monotonic() - t) * 1000)
        return True

    def _schedule_confirm(self, onset: float) -> None:
        if not (self.busy and self.config.barge_in and self.policy.mic_open(onset)):
            return
        self._cancel_confirm()
        delay = onset + self.config.barge_in_min_ms / 1000 - time.monotonic()
        self._confirm = asyncio.get_running_loop().call_later(
            max(0.0, delay), self._confirm_barge_in
        )

    def _cancel_confirm(self) -> None:
        if self._confirm is not None:
            self._confirm.cancel()
            self._confirm = None

    def _resume_if_paused(self, why: str) -> None:
        if self._paused_at is not None and self._confirm is None:
            self._paused_at = None
            self.speaker.resume()
            self.session.log.write("barge_in.ignored", reason=why)
            if self.busy:
                self.set_state("speaking")

    def _backchannel(self, utterance: int) -> None:
        """Speech too short to interrupt: heron goes on, and its words are not a turn."""
        self._backchannels.add(utterance)
        self._resume_if_paused("a backchannel")

    def _confirm_barge_in(self) -> None:
        self._confirm = None
        turn = self._current
        if turn is None or turn.task.done():
            self._resume_if_paused("nothing to interrupt")
        elif self._voice_active:
            self._backchannels.discard(self._utterance)
            self.interrupt("barge-in")
        else:  # the voice stopped before it lasted barge_in_min_ms
            self._backchannel(self._utterance)

    def interrupt(self, reason: str) -> None:
        """Stop the current reply and cancel its turn (barge-in, or a cut question)."""
        turn = self._current
        self._paused_at = None
        if turn is None or turn.task.done():
            self.speaker.resume()
            return
        turn.interrupted = True
        turn.speech.stop()
        if self.on_audio_stopped is not None:
            self.on_audio_stopped()
        self.speaker.resume()
        turn.task.cancel()
        self.session.log.write("barge_in", turn=turn.number, reason=reason)
        self.emit(Notice(f"interrupted ({reason})"))

    # -- utterances (loop thread) -------------------------------------------------

    def is_own_voice(self, utterance: Utterance) -> bool:
        """Whether the utterance is made of words heron said just before (echo)."""
        heard = _words(utterance.text)
        if not heard:
            return False
        now = time.monotonic()
        recent = [w for t, words in self._recent_speech if now - t < RECENT_SPEECH_S for w in words]
        if not recent:
            return False
        known = set(recent)
        share = sum(1 for w in heard if w in known) / len(heard)
        return len(heard) >= 2 and share >= self.config.echo_words_ratio

    async def handle(self, utterance: Utterance) -> None:
        """One final transcript: ignore it, or start a turn (after the current one)."""
        log_ = self.session.log
        if utterance.utterance_id in self._backchannels:
            self._backchannels.discard(utterance.utterance_id)
            log_.write("ignored", reason="backchannel while speaking", text=utterance.text)
            return
        if self.is_own_voice(utterance):
            log_.write("ignored", reason="own voice (echo)", text=utterance.text)
            self.emit(Notice("ignored my own voice"))
            return
        decision = self.policy.decide(utterance)
        if decision.text is None:
            log_.write("ignored", reason=decision.reason, text=utterance.text)
            if decision.kind == "woken":
                self.emit(Notice(decision.reason))
            return
        text = decision.text
        previous = self._current or self._last
        if (
            previous is not None
            and previous.utterance.t_end <= utterance.t_start
            and utterance.t_start - previous.utterance.t_end <= self.config.merge_window_s
            and (previous.interrupted or not previous.task.done())
            and previous.speech.result().audio_seconds < MERGE_MAX_HEARD_S
        ):
            # the user went on before heron said anything: one question, not two
            self.interrupt("the question went on")
            text = f"{previous.text} {text}"
            log_.write("merged", turns=[previous.number], text=text)
        if self._current is not None and not self._current.task.done():
            # barge-in is off or the turn outlived it: answer in order
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._current.task
        await self._start(text, utterance)

    async def _start(self, text: str, utterance: Utterance) -> None:
        self.turns += 1
        loop = asyncio.get_running_loop()
        turn_number = self.session.next_turn

        def spoken(said: str) -> None:  # on the playback thread
            loop.call_soon_threadsafe(self.emit, ReplyText(turn_number, said))

        speech = self.speaker.stream(on_spoken=spoken)
        task = asyncio.ensure_future(self.session.turn(text, utterance=utterance, speech=speech))
        turn = _Turn(turn_number, text, utterance, speech, task)
        self._current = turn
        self.emit(UserTurn(turn_number, text))
        self.say(f"you: {text}")
        self.set_state("thinking")
        task.add_done_callback(lambda _: self._finished(turn))

    def _finished(self, turn: _Turn) -> None:
        self._last = turn
        if self._current is turn:
            self._current = None
        said = turn.speech.spoken_text()
        if said:
            self._recent_speech.append((time.monotonic(), _words(said)))
        ok = not turn.task.cancelled() and turn.task.exception() is None
        self.finished.append((turn.utterance, turn.task.result() if ok else None))
        if turn.task.cancelled():
            self.emit(ReplyText(turn.number, said, final=True, interrupted=True))
            self.say(f"{self.name} (interrupted): {said or '…'}")
        elif (exc := turn.task.exception()) is not None:
            log.error("the turn failed: %s", exc)
            self.say(f"error: {exc}")
        else:
            result = turn.task.result()
            self.emit(ReplyText(turn.number, said or result.reply, final=True))
            self.emit(TurnLatency(turn.number, _stages(result.timing)))
            self.say(f"{self.name}: {result.reply}")
            self.say(f"  ({latency_line(result.timing)})")
        self.set_state("hearing" if self._in_speech else "listening")

    async def close(self) -> None:
        """Stop speaking and wait for the turn in progress to end."""
        self._cancel_confirm()
        if self._current is not None and not self._current.task.done():
            self.interrupt("stopping")
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._current.task


def _stages(timing: dict[str, object]) -> dict[str, float]:
    return {k: float(v) for k, v in timing.items() if isinstance(v, int | float)}


def latency_line(timing: dict[str, object]) -> str:
    """The turn's latency in one line: what the user waited for, and where it went."""
    parts = []
    for key, label in (
        ("first_audio", "end of speech → first audio"),
        ("endpoint", "endpoint"),
        ("transcript", "transcript"),
        ("first_token", "first token"),
    ):
        value = timing.get(key)
        if isinstance(value, int | float):
            parts.append(f"{label} {value:.0f} ms")
    tools = timing.get("tools")
    if isinstance(tools, list):
        parts += [f"{t['name']} {t['ms']:.0f} ms" for t in tools if isinstance(t, dict)]
    return "; ".join(parts) or "no timing"
