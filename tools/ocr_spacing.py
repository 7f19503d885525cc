"""Putting back the spaces between words that the text recogniser drops.

RapidOCR's bundled recogniser (PP-OCRv4, Chinese and English) often returns a
line of capitals as one run ("OPENSAT9AM"), which a speech synthesiser then
mangles. The pixels still show where the words are: the blank columns between
words are much wider than those between letters. For a roughly horizontal line
we measure the blank runs of the line's binarised crop, take those wider than
both twice the typical gap and a quarter of the line's height as word breaks,
and insert a space between the recognised characters that straddle each break
(the recogniser reports where each character sits).
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_TILT = 0.14
"""Lines tilted more than this (rise over run, about 8°) are left as recognised."""


def _blank_runs(ink_columns: np.ndarray) -> list[tuple[int, int]]:
    """(start, width) of each run of inkless columns between the first and last ink."""
    inked = np.flatnonzero(ink_columns)
    if inked.size < 2:
        return []
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for x in range(int(inked[0]), int(inked[-1]) + 1):
        if not ink_columns[x]:
            start = x if start is None else start
        elif start is not None:
            runs.append((start, x - start))
            start = None
    return runs


def restore_word_spaces(
    gray: np.ndarray,
    line_box: np.ndarray,
    chars: list[str],
    char_boxes: list[list[list[float]]],
) -> str:
    """The line's text with spaces inserted at the word breaks visible in ``gray``.

    ``line_box`` is the line's 4 corners and ``char_boxes`` each character's 4
    corners, in ``gray``'s pixel coordinates.
    """
    text = "".join(chars)
    if len(chars) < 2 or len(chars) != len(char_boxes):
        return text
    box = np.asarray(line_box, dtype=np.float64).reshape(4, 2)
    run = box[1, 0] - box[0, 0]
    if run <= 0 or abs(box[1, 1] - box[0, 1]) / run > MAX_TILT:
        return text
    x0, y0 = np.floor(box.min(axis=0)).astype(int)
    x1, y1 = np.ceil(box.max(axis=0)).astype(int)
    x0, y0 = max(0, x0), max(0, y0)
    crop = gray[y0:y1, x0:x1]
    if crop.size == 0 or min(crop.shape) < 4:
        return text
    _, binary = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = binary == 0
    ink = (
        dark if dark.mean() < 0.5 else ~dark
    )  # ink is the minority: dark on light or light on dark
    height = crop.shape[0]
    runs = _blank_runs(ink.sum(axis=0) > max(1.0, 0.04 * height))
    if not runs:
        return text
    threshold = max(2.0 * float(np.median([width for _, width in runs])), 0.25 * height)
    centers = [float(np.mean(np.asarray(b, dtype=np.float64)[:, 0])) for b in char_boxes]
    breaks: set[int] = set()
    for start, width in runs:
        if width < threshold:
            continue
        middle = x0 + start + width / 2
        for i in range(len(centers) - 1):
            if centers[i] < middle < centers[i + 1] and " " not in (chars[i], chars[i + 1]):
                breaks.add(i + 1)
    return "".join((" " if i in breaks else "") + c for i, c in enumerate(chars))
