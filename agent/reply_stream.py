"""A turn's reply on its way to the speaker: sentence by sentence, each checked first.

The model's text arrives in small deltas; speech should start with the first
complete sentence. Moderation must come before anything is said, so each complete
sentence is checked (in order, on the event loop) and only then fed to the
:class:`~heron.agent.playback.SpeechStream`. A blocked sentence is replaced by a
short notice and nothing after it is said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from .tts import split_sentences

SentenceCheck = Callable[[str], Awaitable[bool]]
"""True when a sentence may be said."""


class _Speech(Protocol):
    def feed_sentence(self, sentence: str) -> None: ...


class ModeratedFeed:
    """Feeds reply text to speech as sentences that passed ``check``."""

    def __init__(self, speech: _Speech, check: SentenceCheck | None, blocked_notice: str) -> None:
        self.speech = speech
        self.check = check
        self.blocked_notice = blocked_notice
        self.blocked = False
        self.said: list[str] = []
        """The sentences handed to speech, notices included: the reply as it is said."""
        self.received = 0
        """How many pieces of text came in: a round that added none did not stream."""
        self._buffer = ""
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return " ".join(self.said)

    @property
    def started(self) -> bool:
        """Whether any text came in (streamed or fed whole)."""
        return bool(self.said) or bool(self._buffer.strip()) or not self._queue.empty()

    def say_first(self, notice: str) -> None:
        """A sentence of heron's own (a notice) to say before what follows."""
        self._put(notice, checked=False)

    def on_text(self, delta: str) -> None:
        """A streamed delta of the model's reply (called on the event loop)."""
        self.received += 1
        self._buffer += delta
        sentences = split_sentences(self._buffer)
        for sentence in sentences[:-1]:
            self._put(sentence)
        if len(sentences) > 1:
            self._buffer = sentences[-1] + (" " if self._buffer[-1:].isspace() else "")

    async def finish(self) -> str:
        """Check and feed what is left; returns the reply as it is said."""
        for sentence in split_sentences(self._buffer):
            self._put(sentence)
        self._buffer = ""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None
        return self.text

    def _put(self, sentence: str, *, checked: bool = True) -> None:
        self._queue.put_nowait(sentence if checked else "\x00" + sentence)
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while (item := await self._queue.get()) is not None:
            if self.blocked:
                continue
            trusted = item.startswith("\x00")
            sentence = item.lstrip("\x00")
            if not trusted and self.check is not None and not await self.check(sentence):
                self.blocked = True
                sentence = self.blocked_notice
            self.said.append(sentence)
            self.speech.feed_sentence(sentence)
