"""Text to speech with pyttsx3 (the espeak-ng driver on Linux), rendered to memory.

Speech is rendered with ``engine.save_to_file`` + ``runAndWait`` into a temporary
WAV and read back, so no audio device is involved. pyttsx3 engines are not
thread-safe, and espeak-ng keeps its voice, rate and synthesis callback in
process-wide state, so one engine lives on one worker thread that every
:class:`Synthesizer` in the process shares; each request carries its own voice,
rate and volume. The worker runs while at least one synthesizer is open.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import soundfile as sf

from .config import TTSConfig
from .errors import ModelError

__all__ = ["Synthesis", "Synthesizer", "split_sentences"]

log = logging.getLogger(__name__)
T = TypeVar("T")

ESPEAK_SAMPLE_RATE = 22_050
"""The rate espeak-ng renders at (pyttsx3's espeak driver writes it into the WAV)."""

_FINISH_TIMEOUT_S = 10.0
_ATTEMPTS = 3
# NUL ends the C string espeak receives and lone surrogates cannot be encoded as
# UTF-8 (pyttsx3 then raises mid-loop); other control characters are noise.
_UNSPEAKABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Synthesis:
    """One rendered piece of speech: mono float32 samples in [-1, 1]."""

    samples: np.ndarray = field(repr=False)
    sample_rate: int
    text: str
    elapsed_s: float
    """Wall time the synthesis took (queueing excluded)."""

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def _quiet_print(*args: Any, **_kwargs: Any) -> None:
    """Stand-in for ``print`` inside pyttsx3's espeak driver: log instead of stdout."""
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


def _silence_driver_prints() -> None:
    # pyttsx3 2.99's espeak driver calls print("Audio saved to ...") after every
    # save_to_file. A module-level ``print`` shadows the builtin for that module
    # only, so a CLI's stdout stays clean without redirecting it process-wide.
    module = sys.modules.get("pyttsx3.drivers.espeak")
    if module is not None and getattr(module, "print", None) is not _quiet_print:
        module.print = _quiet_print  # type: ignore[attr-defined]


class _Engine:
    """The one pyttsx3 engine and the thread that owns it; shared, reference-counted."""

    _lock = threading.Lock()
    _instance: _Engine | None = None
    _users = 0

    @classmethod
    def acquire(cls) -> _Engine:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            cls._users += 1
            return cls._instance

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users > 0 or cls._instance is None:
                return
            # Shut down under the lock: a second live engine would take over espeak's
            # process-wide synthesis callback.
            cls._instance._shutdown()
            cls._instance = None

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._engine: Any = None
        self._applied: tuple[str | None, int, float] | None = None
        self._default_voice: str | None = None
        self._finished = threading.Event()
        self._completed = False
        self._espeak: Any = None
        self._tmp = tempfile.TemporaryDirectory(prefix="heron-tts-")
        self._wav = str(Path(self._tmp.name) / "speech.wav")
        self._thread = threading.Thread(target=self._run, name="heron-tts", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._requests.put((fn, future))
        return future

    def _run(self) -> None:
        while (item := self._requests.get()) is not None:
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def _shutdown(self) -> None:
        self._requests.put(None)
        self._thread.join(timeout=5)
        self._engine = None
        self._tmp.cleanup()

    # -- everything below runs on the worker thread --------------------------------

    def engine(self) -> Any:
        """The pyttsx3 engine, created on first use (or again after a failure)."""
        if self._engine is None:
            try:
                import pyttsx3

                engine = pyttsx3.Engine()
            except Exception as exc:  # ImportError, RuntimeError("could not initialize espeak")
                raise ModelError(f"cannot start the text-to-speech engine: {exc}") from exc
            _silence_driver_prints()
            # espeak-ng renders on its own thread and runAndWait may return before the
            # WAV is written: the driver's finished-utterance event is the real end.
            engine.connect("finished-utterance", self._on_finished)
            self._espeak = sys.modules.get("pyttsx3.drivers._espeak")
            self._engine, self._applied = engine, None
            self._default_voice = engine.getProperty("voice")
        return self._engine

    def _on_finished(self, completed: bool = True, **_: Any) -> None:
        self._completed = bool(completed)
        self._finished.set()

    def _settle(self) -> None:
        # runAndWait's endLoop calls the driver's stop(), which cancels whatever espeak
        # is still busy with (settings just queued, or the utterance itself), so start
        # only once espeak is idle.
        if self._espeak is not None and self._espeak.IsPlaying():
            self._espeak.Synchronize()

    def voices(self) -> list[Any]:
        return list(self.engine().getProperty("voices"))

    def synthesize(self, text: str, voice: str | None, rate: int, volume: float) -> Synthesis:
        t0 = time.monotonic()
        for last_try in (False, True):
            engine = self.engine()
            try:
                samples, sample_rate = self._synthesize(engine, text, voice, rate, volume)
                break
            except Exception as exc:
                # A failed runAndWait can leave pyttsx3 marked as "in loop" for good:
                # drop the engine and try once more with a new one.
                self._engine = None
                if last_try:
                    raise ModelError(f"text-to-speech failed: {exc}") from exc
                log.warning("text-to-speech failed for %r (%s); restarting the engine", text, exc)
        mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
        return Synthesis(mono, int(sample_rate), text, time.monotonic() - t0)

    def _synthesize(
        self, engine: Any, text: str, voice: str | None, rate: int, volume: float
    ) -> tuple[np.ndarray, int]:
        for _attempt in range(_ATTEMPTS):
            self._apply(engine, voice or self._default_voice, rate, volume)
            if self._render(engine, text):
                samples, sample_rate = sf.read(self._wav, dtype="float32", always_2d=True)
                return samples, int(sample_rate)
            # pyttsx3 cancelled the utterance (and maybe queued settings) itself.
            log.debug("pyttsx3 cancelled %r; synthesizing it again", text)
            self._applied = None
        raise RuntimeError(f"the utterance was cancelled {_ATTEMPTS} times")

    def _apply(self, engine: Any, voice: str | None, rate: int, volume: float) -> None:
        # espeak's settings are process-wide: apply this request's when they differ.
        if self._applied != (voice, rate, volume):
            if voice:
                engine.setProperty("voice", voice)
            engine.setProperty("rate", rate)
            engine.setProperty("volume", volume)
            self._applied = (voice, rate, volume)

    def _render(self, engine: Any, text: str) -> bool:
        """One save_to_file + runAndWait; False when pyttsx3 cancelled the utterance."""
        self._settle()
        self._finished.clear()
        Path(self._wav).unlink(missing_ok=True)
        engine.save_to_file(text, self._wav)
        engine.runAndWait()
        if not self._finished.wait(_FINISH_TIMEOUT_S + len(text) / 100):
            raise RuntimeError("espeak did not finish the utterance")
        return self._completed


class Synthesizer:
    """Renders text to audio in memory with pyttsx3; works without any audio device.

    Raises :class:`ModelError` when the engine cannot start or the configured voice
    does not exist (the message lists available voices).
    """

    def __init__(self, config: TTSConfig) -> None:
        self.config = config
        self._sample_rate = ESPEAK_SAMPLE_RATE
        self._closed = False
        self._engine = _Engine.acquire()
        try:
            self._voice_id = self._call(lambda: self._resolve_voice(self.config.voice))
        except BaseException:
            self.close()
            raise

    def _call(self, fn: Callable[[], T]) -> T:
        return self._engine.submit(fn).result()

    def _resolve_voice(self, wanted: str | None) -> str | None:
        """Find a voice by id, language or name (exact first, then by substring)."""
        if wanted is None:
            return None
        voices = self._engine.voices()
        key = wanted.strip().lower()

        def ids(v: Any) -> list[str]:
            return [v.id.lower(), v.id.lower().rsplit("/", 1)[-1], *map(str.lower, v.languages)]

        for match in (
            lambda v: key in ids(v),
            lambda v: v.name.lower() == key,
            lambda v: key in v.name.lower(),
        ):
            found = [v for v in voices if match(v)]
            if found:
                return str(found[0].id)
        names = sorted(v.name for v in voices)
        english = [n for n in names if "english" in n.lower()]
        shown = ", ".join(itertools.islice(itertools.chain(english, names), 12))
        raise ModelError(
            f"unknown text-to-speech voice {wanted!r}; {len(names)} voices are available, "
            f"e.g. {shown} (see Synthesizer.voices())"
        )

    def voices(self) -> list[str]:
        """Names of the voices the engine offers."""
        return [str(v.name) for v in self._call(self._engine.voices)]

    def submit(self, text: str) -> Future[Synthesis]:
        """Queue ``text`` for synthesis; the future resolves to a :class:`Synthesis`."""
        if self._closed:
            raise ModelError("the synthesizer is closed")
        spoken = " ".join(_UNSPEAKABLE.sub(" ", text).split())
        if not spoken:
            # pyttsx3 asserts on empty text, and espeak would announce no finished utterance.
            done: Future[Synthesis] = Future()
            empty = np.zeros(0, dtype=np.float32)
            done.set_result(Synthesis(empty, self._sample_rate, text, 0.0))
            return done
        cfg = self.config

        def work() -> Synthesis:
            result = self._engine.synthesize(spoken, self._voice_id, cfg.rate, cfg.volume)
            self._sample_rate = result.sample_rate
            log.debug("synthesized %.2f s of audio in %.3f s", result.duration, result.elapsed_s)
            return Synthesis(result.samples, result.sample_rate, text, result.elapsed_s)

        return self._engine.submit(work)

    def synthesize(self, text: str) -> Synthesis:
        """Render ``text`` (blocking); empty or blank text gives zero samples."""
        return self.submit(text).result()

    async def asynthesize(self, text: str) -> Synthesis:
        """Render ``text`` without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(text))

    def close(self) -> None:
        """Release the engine (the worker stops when the last synthesizer closes)."""
        if not self._closed:
            self._closed = True
            _Engine.release()

    def __enter__(self) -> Synthesizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- sentences ------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Abbreviations that a sentence does not end with, even before a capital letter.
_NEVER_FINAL = _words(
    "mr mrs ms dr prof st sr jr mt ft vs cf e.g i.e approx dept gen col capt lt sgt"
)
# Abbreviations that come before a number ("No. 5", "Fig. 2").
_BEFORE_NUMBER = _words("no nos fig vol ch art")
# Abbreviations that may end a sentence: a boundary only before a capital letter.
_MAYBE_FINAL = _words("etc a.m p.m u.s u.k inc ltd co corp jan feb aug sept oct nov dec")
_BOUNDARY = re.compile(r"(?P<punct>[.!?]+|…)(?P<close>[\"'”’)\]]*)\s+(?=(?P<next>\S))")


def _ends_sentence(text: str, start: int, match: re.Match[str]) -> bool:
    punct, following = match["punct"], match["next"]
    starts_upper = following.isupper() or following.isdigit() or following in "\"'“‘("
    if "!" in punct or "?" in punct:
        return True
    if punct == "…" or len(punct) > 1:  # an ellipsis trails off unless a sentence follows
        return starts_upper
    word = text[start : match.start()].rsplit(maxsplit=1)[-1].lstrip("\"'“‘([").lower()
    if word in _NEVER_FINAL or (word in _BEFORE_NUMBER and following.isdigit()):
        return False
    if len(word) == 1 and word.isalpha():  # an initial, as in "J. R. R. Tolkien"
        return False
    if word in _MAYBE_FINAL or re.fullmatch(r"(?:[a-z]\.)+[a-z]", word):
        return starts_upper
    # "1. Open the door": a list number is not a sentence of its own.
    return not (word.isdigit() and text[start : match.start()].strip() == word)


def split_sentences(text: str) -> list[str]:
    """Split a reply into sentences to be spoken one after another.

    Lines are split apart; abbreviations ("Dr.", "e.g."), initials, decimals ("3.5")
    and list numbers do not end a sentence; an ellipsis does only before a capital.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        start = 0
        for match in _BOUNDARY.finditer(line):
            if match.start() < start or not _ends_sentence(line, start, match):
                continue
            sentences.append(line[start : match.end("close")].strip())
            start = match.end()
        sentences.append(line[start:].strip())
    return [" ".join(s.split()) for s in sentences if s and any(c.isalnum() for c in s)]
