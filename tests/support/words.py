"""Comparing what Whisper heard with what was said: words, and word edit distance.

Whisper tiny.en on synthetic or re-recorded speech misses a word now and then
("today" → "to me"), depending on where the VAD cut falls to the millisecond.
Tests through the microphone therefore allow a stated number of word errors;
tests on files compare every word.
"""

from __future__ import annotations

import re


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_errors(reference: str, heard: str) -> int:
    """Substitutions, insertions and deletions between the two texts' words."""
    ref, hyp = words(reference), words(heard)
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        previous, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (ref[i - 1] != hyp[j - 1]))
            previous = current
    return row[len(hyp)]
