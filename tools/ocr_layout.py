"""The layout of a page: columns in reading order, and paragraphs.

For ``read_text``'s document mode. Lines (boxes of four corners) are gathered
into blocks: a line joins the block above it when it starts within a line and a
half below it and the two overlap horizontally. Blocks side by side are columns;
the left column is read to its end before the right one, and a heading that spans
both comes first. Within a block, a new paragraph starts after a gap taller than
the block's usual line gap, at an indented first line, or after a heading.
"""

from __future__ import annotations

import numpy as np

LINE_GAP = 1.5
"""A line more than this many line heights below the previous one starts a new block."""

PARAGRAPH_GAP = 1.6
"""Within a block, a gap this many times the median gap starts a new paragraph."""

INDENT = 1.5
"""A line starting this many line heights right of the block's left edge is indented."""


HEADING = 1.3
"""A line this many times taller than the next is a heading: its own paragraph."""


def _height(span: tuple[float, float, float, float]) -> float:
    return span[3] - span[1]


def _extent(box: np.ndarray) -> tuple[float, float, float, float]:
    return (
        float(box[:, 0].min()),
        float(box[:, 1].min()),
        float(box[:, 0].max()),
        float(box[:, 1].max()),
    )


def _blocks(boxes: list[np.ndarray]) -> list[list[int]]:
    """Indices of ``boxes`` grouped into blocks, each block top to bottom."""
    spans = [_extent(b) for b in boxes]
    blocks: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda k: (spans[k][1], spans[k][0])):
        x0, y0, x1, y1 = spans[i]
        height = y1 - y0
        for block in blocks:
            bx0, _, bx1, by1 = spans[block[-1]]
            overlap = min(x1, bx1) - max(x0, bx0)
            if overlap > 0 and -0.5 * height <= y0 - by1 <= LINE_GAP * height:
                block.append(i)
                break
        else:
            blocks.append([i])
    return blocks


def _block_order(boxes: list[np.ndarray], blocks: list[list[int]]) -> list[list[int]]:
    """Blocks in reading order: by column (blocks fully to the left come first), then top."""
    spans = [_extent(b) for b in boxes]
    extents = []
    for block in blocks:
        parts = [spans[i] for i in block]
        extents.append(
            (
                min(p[0] for p in parts),
                min(p[1] for p in parts),
                max(p[2] for p in parts),
                max(p[3] for p in parts),
            )
        )

    def column(k: int) -> int:
        x0, y0, _, y1 = extents[k]
        return sum(
            1
            for j, (ox0, oy0, ox1, oy1) in enumerate(extents)
            if j != k and ox1 <= x0 and min(y1, oy1) > max(y0, oy0)
        )

    order = sorted(range(len(blocks)), key=lambda k: (column(k), extents[k][1]))
    return [blocks[k] for k in order]


def document_order(boxes: list[np.ndarray]) -> list[int]:
    """Indices of ``boxes`` (4x2 corners) in a page's reading order."""
    if not boxes:
        return []
    spans = [_extent(b) for b in boxes]
    ordered: list[int] = []
    for block in _block_order(boxes, _blocks(boxes)):
        # Lines side by side within a block (words the detector split) go left to right.
        ordered += sorted(block, key=lambda k: (round(spans[k][1] / 4), spans[k][0]))
    return ordered


def paragraphs_of(boxes: list[np.ndarray], texts: list[str]) -> list[str]:
    """The texts of lines already in reading order, joined into paragraphs."""
    if not boxes:
        return []
    blocks = _blocks(boxes)
    block_of = {i: n for n, block in enumerate(blocks) for i in block}
    spans = [_extent(b) for b in boxes]
    gaps = [
        spans[i][1] - spans[i - 1][3]
        for i in range(1, len(boxes))
        if block_of[i] == block_of[i - 1] and spans[i][1] > spans[i - 1][3]
    ]
    usual_gap = float(np.median(gaps)) if gaps else 0.0
    left = {n: min(spans[i][0] for i in block) for n, block in enumerate(blocks)}
    paragraphs: list[list[str]] = []
    for i, text in enumerate(texts):
        x0, y0, _, y1 = spans[i]
        height = y1 - y0
        new = (
            i == 0
            or block_of[i] != block_of[i - 1]
            or (usual_gap > 0 and y0 - spans[i - 1][3] > PARAGRAPH_GAP * usual_gap + 2)
            or x0 - left[block_of[i]] > INDENT * height
            # a heading: set larger than the line after it
            or _height(spans[i - 1]) > HEADING * height
        )
        if new:
            paragraphs.append([text])
        else:
            paragraphs[-1].append(text)
    return [_join(lines) for lines in paragraphs]


def _join(lines: list[str]) -> str:
    """Lines of one paragraph as running text; a hyphen at a line's end joins the word."""
    out = ""
    for line in lines:
        if out.endswith("-") and line[:1].islower():
            out = out[:-1] + line
        else:
            out = f"{out} {line}" if out else line
    return out
