"""When has the user finished speaking? Silence, informed by the words so far.

A fixed silence is a bad compromise: long enough for every pause inside a
sentence makes every turn slow; short enough to be quick cuts questions in two.
The listener transcribes what was said as soon as silence begins (Whisper on a
short window costs well under the silence itself), and this policy picks the
silence from those words: a finished sentence ends after ``complete_silence_ms``;
words that clearly go on ("…and", "…the", a trailing comma) wait
``continue_silence_ms``; anything else waits the configured ``min_silence_ms``.
"""

from __future__ import annotations

import re

from .config import VADConfig

_CONTINUING = """
    a an the and or but nor so because if than that which whose to of in on at for with
    from by into onto about as like my your his her its our their this these those is are
    was were am be been being do does did has have had can could will would shall should
    may might must um uh er erm hmm not very really just
"""
CONTINUING_WORDS = frozenset(_CONTINUING.split())
"""Words a sentence almost never ends with: the speaker is still going."""

_WORD = re.compile(r"[a-z']+")


def sentence_state(text: str) -> str:
    """``complete``, ``continuing`` or ``unsure`` for the words heard so far."""
    stripped = text.strip()
    if not stripped:
        return "unsure"
    words = _WORD.findall(stripped.lower())
    if stripped.endswith((",", ";", ":", "-", "…", "...")):
        return "continuing"
    if words and words[-1] in CONTINUING_WORDS:
        return "continuing"
    if stripped.endswith(("?", "!", ".")) and len(words) >= 2:
        return "complete"
    return "unsure"


def endpoint_silence_ms(text: str, config: VADConfig) -> float:
    """The silence after these words that ends the utterance."""
    if not config.smart_endpoint:
        return float(config.min_silence_ms)
    state = sentence_state(text)
    if state == "complete":
        return float(min(config.complete_silence_ms, config.min_silence_ms))
    if state == "continuing":
        return float(max(config.continue_silence_ms, config.min_silence_ms))
    return float(config.min_silence_ms)
