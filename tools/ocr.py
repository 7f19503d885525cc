"""Reading text in camera frames: the ``read_text`` tool and the OCR engine behind it.

:class:`TextReader` wraps RapidOCR (PP-OCRv4 detection and recognition as ONNX
models shipped inside the ``rapidocr_onnxruntime`` wheel, so nothing is
downloaded). The engine is loaded on first use, and one lock serialises
inference: RapidOCR keeps per-call state on the engine object and is not safe
to call from two threads at once. Results come back as pydantic models with
boxes in the coordinates of the image that was passed in and the lines sorted
into reading order.

:class:`ReadTextTool` exposes this to the vision-language model (and to the
offline "read this" path) as the ``read_text`` tool.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field

from heron.agent.errors import ModelError, ToolError
from heron.tools.base import Tool, ToolArgs, ToolContext
from heron.tools.ocr_layout import document_order, paragraphs_of
from heron.tools.ocr_spacing import restore_word_spaces
from heron.tools.perception import (
    MIN_SIDE,
    Crop,
    Region,
    as_bgr,
    check_size,
    region_crop,
)

log = logging.getLogger(__name__)

MAX_SIDE = 2048
"""Longer sides are scaled down to this before OCR; detection time grows with area."""

MIN_DETECT_SIDE = 480
"""Images with a shorter side below this are enlarged (at most MAX_ENLARGE times) first."""

MAX_ENLARGE = 4.0

SMALL_TEXT_PX = 14
"""Lines lower than this (pixels) are read a second time from a 2× enlarged crop."""

ROTATIONS = (cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE)
"""Turns tried on the whole image when text was detected but not read (a page held sideways)."""

ROTATE_MIN_CHARS = 4
"""Unreadable text must add up to this many characters before turning is tried: a
photograph's texture gives one or two stray letters, and each turn costs a full read."""

TURN_ACCEPT = 0.8
"""A turn whose confident characters reach this share of those first seen is taken as is."""

Mode = Literal["lines", "document"]

Found = tuple[np.ndarray, str, float]
"""A box (4x2 corners), its text and its confidence, as the engine returned them."""


class TextLine(BaseModel):
    """One line (or block on one line) of text found in the image."""

    text: str
    confidence: float = Field(description="recognition confidence, 0..1")
    box: list[tuple[int, int]] = Field(
        description="four corners (x, y) in image pixels: top-left, top-right, "
        "bottom-right, bottom-left"
    )
    center: tuple[float, float] = Field(
        description="centre of the box as (x, y), each a fraction 0..1 of the image size"
    )


class TextReading(BaseModel):
    """Everything read from one image, lines in reading order."""

    lines: list[TextLine]
    text: str = Field(description="the lines' text joined with newlines, in reading order")
    elapsed_ms: float
    image_size: tuple[int, int] = Field(description="(width, height) of the image read")
    mode: Mode = "lines"
    paragraphs: list[str] = Field(
        default_factory=list,
        description="document mode: the text in paragraphs, in reading order (columns "
        "left to right); empty in lines mode",
    )


LETTER_O = re.compile(r"(?<=[A-Za-z])0(?=[A-Za-z])|(?<=[A-Za-z]{2})0\b|\b0(?=[A-Za-z]{2})")


def _letter_o(text: str) -> str:
    """A zero among letters is the letter O ("BEF0RE"): in many fonts they look alike."""
    return LETTER_O.sub("O", text)


def _deskewed(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """Boxes turned so that the lines' median slope is level (for text tilted as a whole).

    The slope of a box is that of its top edge (RapidOCR gives corners clockwise from
    the top-left of the text); tilts under 3° are left alone.
    """
    if not boxes:
        return boxes
    angles = [np.arctan2(b[1, 1] - b[0, 1], b[1, 0] - b[0, 0]) for b in boxes]
    angle = float(np.median(angles))
    if abs(angle) < np.radians(3) or abs(angle) > np.radians(60):
        return boxes
    c, s = np.cos(-angle), np.sin(-angle)
    turn = np.array([[c, -s], [s, c]])
    return [b @ turn.T for b in boxes]


def _reading_order(boxes: list[np.ndarray]) -> list[int]:
    """Indices of ``boxes`` (4x2 arrays) in reading order.

    Boxes are grouped into rows by vertical overlap (at least half the smaller
    height), rows go top to bottom and boxes left to right within a row.
    RapidOCR's own order compares only top-left corners within 10 px, which
    breaks for large text and slightly tilted lines.
    """
    boxes = _deskewed(boxes)
    spans = [(float(b[:, 1].min()), float(b[:, 1].max()), float(b[:, 0].min())) for b in boxes]
    rows: list[list[int]] = []
    row_band: list[tuple[float, float]] = []
    for i in sorted(range(len(boxes)), key=lambda k: (spans[k][0] + spans[k][1]) / 2):
        top, bottom, _ = spans[i]
        if rows:
            row_top, row_bottom = row_band[-1]
            overlap = min(bottom, row_bottom) - max(top, row_top)
            if overlap >= 0.5 * min(bottom - top, row_bottom - row_top):
                rows[-1].append(i)
                n = len(rows[-1])
                # The band is the row's mean extent so one tall box does not swallow the next row.
                row_band[-1] = (
                    row_top + (top - row_top) / n,
                    row_bottom + (bottom - row_bottom) / n,
                )
                continue
        rows.append([i])
        row_band.append((top, bottom))
    return [i for row in rows for i in sorted(row, key=lambda k: spans[k][2])]


class TextReader:
    """RapidOCR, loaded lazily once and safe to share between threads.

    ``use_cls`` runs the orientation classifier so upside-down text is read too
    (it costs a few milliseconds per line). ``threads`` caps ONNX Runtime's
    threads per model; ``None`` lets it use every core.
    """

    def __init__(
        self, *, max_side: int = MAX_SIDE, use_cls: bool = True, threads: int | None = None
    ) -> None:
        self.max_side = max_side
        self.use_cls = use_cls
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()
        self._warm = False

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def _load(self) -> Any:
        """Create the engine; the caller holds the lock."""
        if self._engine is not None:
            return self._engine
        t0 = time.perf_counter()
        try:
            from rapidocr_onnxruntime import RapidOCR

            self._engine = RapidOCR(
                # Keep every result and filter by the caller's min_confidence instead.
                text_score=0.0,
                use_cls=self.use_cls,
                # Images arrive already within max_side; a second resize would only blur them.
                max_side_len=self.max_side,
                intra_op_num_threads=self.threads or -1,
                # Detect at the image's own size (up to 960 px): RapidOCR's default scales
                # the shorter side up to 736, which for a 640x480 frame doubles the time and
                # read no more on the benchmark's frames. Small images are enlarged here.
                det_limit_type="max",
                det_limit_side_len=960,
            )
        except Exception as exc:
            raise ModelError(f"cannot load the OCR models: {type(exc).__name__}: {exc}") from exc
        log.info("OCR models loaded in %.0f ms", (time.perf_counter() - t0) * 1000)
        return self._engine

    def warmup(self) -> None:
        """Load the models and run one small inference so the first real call is fast.

        Tools that share this reader each warm it up; only the first call does the work.
        """
        if self._warm:
            return
        t0 = time.perf_counter()
        # A 4:3 image: enlarged 4x (MIN_DETECT_SIDE) it has a camera frame's shape,
        # and ONNX Runtime's first run on a new shape is the slow one.
        image = np.full((120, 160, 3), 255, np.uint8)
        cv2.putText(image, "warm up", (20, 68), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
        self.read(image, min_confidence=0.0)
        self._warm = True
        log.info("OCR warm-up took %.0f ms", (time.perf_counter() - t0) * 1000)

    def _recognise(self, bgr: np.ndarray, *, use_cls: bool = True) -> list[Found]:
        """Every box the engine reads in ``bgr``, in its coordinates; no filtering.

        ``use_cls=False`` skips the orientation classifier, so upside-down lines read
        as nonsense: that is how a quarter turn's direction is told (see _turned).
        """
        h, w = bgr.shape[:2]
        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        elif min(h, w) < MIN_DETECT_SIDE:
            # Small images (a crop, a thumbnail): small text needs more pixels to be found.
            scale = min(MIN_DETECT_SIDE / min(h, w), MAX_ENLARGE, self.max_side / max(h, w))
            size = (round(w * scale), round(h * scale))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
        bgr = np.ascontiguousarray(bgr)
        with self._lock:
            engine = self._load()
            try:
                # Every option is passed on each call: RapidOCR resets the ones left out.
                result, _ = engine(
                    bgr,
                    use_cls=self.use_cls and use_cls,
                    box_thresh=0.5,
                    unclip_ratio=1.6,
                    text_score=0.0,
                    return_word_box=True,
                )
            except Exception as exc:
                raise ModelError(f"OCR failed: {type(exc).__name__}: {exc}") from exc
        found: list[Found] = []
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        for raw_box, text, score, *chars in result or []:
            if len(chars) >= 2 and chars[1]:
                text = restore_word_spaces(gray, np.asarray(raw_box), list(chars[1]), chars[0])
            text = _letter_o(str(text).strip())
            if text:
                box = np.asarray(raw_box, dtype=np.float64).reshape(4, 2) / scale
                found.append((box, text, float(score)))
        return found

    @staticmethod
    def _needs_turning(found: list[Found], min_confidence: float) -> bool:
        """Text seen but not read, or read mostly from upright-standing boxes (a label or
        page held sideways: lines are read, but their order is lost)."""
        chars = sum(len(text) for _, text, _ in found)
        if not any(score >= min_confidence for _, _, score in found):
            return chars >= ROTATE_MIN_CHARS
        standing = [
            len(text)
            for box, text, score in found
            if score >= min_confidence and np.ptp(box[:, 1]) > 2 * np.ptp(box[:, 0])
        ]
        # One standing line is already read right; from two on, their order needs the turn.
        return len(standing) >= 2 and sum(standing) * 2 > chars

    def _turned(
        self, bgr: np.ndarray, min_confidence: float, expected_chars: int
    ) -> tuple[int, list[Found]] | None:
        """Read ``bgr`` turned a quarter each way: the better turn and its reading (in the
        turned image's coordinates), or None when neither reads anything.

        The second turn is skipped when the first reads about as much text as was
        seen, surely: the other way up would read upside down.
        """
        best: tuple[int, list[Found]] | None = None
        best_weight = 0.0
        for turn in ROTATIONS:
            turned = self._recognise(cv2.rotate(bgr, turn), use_cls=False)
            found = [f for f in turned if f[2] >= min_confidence]
            weight = sum(score * len(text) for _, text, score in found)
            if weight > best_weight:
                best, best_weight = (turn, found), weight
            if weight >= TURN_ACCEPT * expected_chars:
                break
        return best

    def _enlarged(self, bgr: np.ndarray, found: list[Found]) -> list[Found]:
        """Read small lines again from a 2× enlarged crop; keep whichever reading is surer."""
        small = [f for f in found if np.ptp(f[0][:, 1]) < SMALL_TEXT_PX]
        if not small:
            return found
        h, w = bgr.shape[:2]
        corners = np.vstack([box for box, _, _ in small])
        pad = SMALL_TEXT_PX * 2
        x0, y0 = (max(0, int(v) - pad) for v in corners.min(axis=0))
        x1, y1 = (int(v) + pad for v in corners.max(axis=0))
        x1, y1 = min(w, x1), min(h, y1)
        crop = bgr[y0:y1, x0:x1]
        if min(crop.shape[:2]) < MIN_SIDE:
            return found
        again = self._recognise(cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
        if not again:
            return found
        before = float(np.mean([score for _, _, score in small]))
        after = float(np.mean([score for _, _, score in again]))
        if after <= before:
            return found
        inside = {id(f) for f in found if _centre_in(f[0], (x0, y0, x1, y1))}
        kept = [f for f in found if id(f) not in inside]
        return kept + [(box / 2 + np.array([x0, y0]), text, score) for box, text, score in again]

    def read(
        self,
        image: np.ndarray,
        *,
        min_confidence: float = 0.5,
        crop: Crop | None = None,
        mode: Mode = "lines",
    ) -> TextReading:
        """Read the text in ``image`` (BGR, greyscale or BGRA).

        With ``crop`` only that rectangle is read, but boxes and centres are still
        given relative to the whole image. Lines below ``min_confidence`` are
        dropped. When text is detected but none of it is read with confidence, the
        image is also read turned a quarter each way (a label held sideways); lines
        lower than :data:`SMALL_TEXT_PX` are read again enlarged. ``mode="document"``
        orders the lines of a page column by column and groups them into paragraphs.
        Raises :class:`ToolError` when the image is too small and
        :class:`ModelError` when the OCR engine fails.
        """
        t0 = time.perf_counter()
        bgr = as_bgr(image, what="read")
        full_h, full_w = bgr.shape[:2]
        x0 = y0 = 0
        if crop is not None:
            x0, y0 = max(0, crop[0]), max(0, crop[1])
            bgr = bgr[y0 : max(y0, crop[3]), x0 : max(x0, crop[2])]
        check_size(bgr, what="read")
        h, w = bgr.shape[:2]

        found = self._recognise(bgr)
        view, turn = bgr, None
        if self._needs_turning(found, min_confidence):
            turned = self._turned(bgr, min_confidence, sum(len(f[1]) for f in found))
            if turned is not None:
                turn, found = turned
                view = cv2.rotate(bgr, turn)
        found = self._enlarged(view, [f for f in found if f[2] >= min_confidence])

        # Reading order is decided upright (in the turned view), boxes are reported
        # in the coordinates of the image that was passed in.
        found = [found[i] for i in _order([f[0] for f in found], mode)]
        boxes: list[np.ndarray] = []
        texts: list[tuple[str, float]] = []
        for box, text, score in found:
            box = _unturn(box, turn, h, w) + np.array([x0, y0])
            box[:, 0] = np.clip(box[:, 0], 0, full_w)
            box[:, 1] = np.clip(box[:, 1], 0, full_h)
            boxes.append(box)
            texts.append((text, score))
        upright = [f[0] for f in found]

        lines = []
        for i in range(len(boxes)):
            box = boxes[i]
            cx, cy = box.mean(axis=0)
            lines.append(
                TextLine(
                    text=texts[i][0],
                    confidence=round(texts[i][1], 4),
                    box=[(round(x), round(y)) for x, y in box],
                    center=(round(cx / full_w, 4), round(cy / full_h, 4)),
                )
            )
        paragraphs: list[str] = []
        if mode == "document":
            paragraphs = paragraphs_of(upright, [text for text, _ in texts])
        elapsed_ms = (time.perf_counter() - t0) * 1000
        log.debug("read %d text lines in %dx%d image in %.0f ms", len(lines), w, h, elapsed_ms)
        return TextReading(
            lines=lines,
            text="\n".join(line.text for line in lines),
            elapsed_ms=round(elapsed_ms, 1),
            image_size=(full_w, full_h),
            mode=mode,
            paragraphs=paragraphs,
        )


def _order(boxes: list[np.ndarray], mode: Mode) -> list[int]:
    return document_order(boxes) if mode == "document" else _reading_order(boxes)


def _unturn(box: np.ndarray, turn: int | None, h: int, w: int) -> np.ndarray:
    """Corners found in the image turned by ``turn``, back in the upright ``h`` x ``w`` one."""
    if turn == cv2.ROTATE_90_CLOCKWISE:  # (x, y) was turned into (h-1-y, x)
        return np.stack([box[:, 1], h - 1 - box[:, 0]], axis=1)
    if turn == cv2.ROTATE_90_COUNTERCLOCKWISE:  # (x, y) was turned into (y, w-1-x)
        return np.stack([w - 1 - box[:, 1], box[:, 0]], axis=1)
    return box.copy()


def _centre_in(box: np.ndarray, rect: Crop) -> bool:
    cx, cy = box.mean(axis=0)
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


class ReadTextArgs(ToolArgs):
    min_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="drop lines recognised with less confidence than this (0..1)",
    )
    region: Region = Field(
        "full",
        description='"full" reads the whole frame; "center" only its middle 60%, '
        "for a label or page the user holds up to the camera",
    )
    mode: Mode = Field(
        "lines",
        description='"lines" for signs, labels and screens; "document" for a full page: '
        "columns in order and the text grouped into paragraphs",
    )


class ReadTextTool(Tool[ReadTextArgs]):
    """Read the text visible in the current camera frame (signs, labels, pages, screens).

    Returns the lines of text in reading order (top to bottom, left to right),
    each with its confidence (0..1) and position, plus all the text joined with
    newlines. An empty "text" means no readable text was found. Use region
    "center" when the user holds something up to the camera, and mode "document"
    for a full page (columns in order, paragraphs).
    """

    name: ClassVar[str] = "read_text"
    Args = ReadTextArgs

    def __init__(self, reader: TextReader | None = None) -> None:
        self.reader = reader if reader is not None else TextReader()

    def warmup(self) -> None:
        self.reader.warmup()

    def run(self, args: ReadTextArgs, ctx: ToolContext) -> TextReading:
        image = ctx.require_frame()
        crop = region_crop(image.shape, args.region) if args.region == "center" else None
        try:
            return self.reader.read(
                image, min_confidence=args.min_confidence, crop=crop, mode=args.mode
            )
        except ModelError as exc:
            raise ToolError(f"text reading is not available: {exc}") from exc
