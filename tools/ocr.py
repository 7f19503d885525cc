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
import threading
import time
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field

from heron.agent.errors import ModelError, ToolError
from heron.tools.base import Tool, ToolArgs, ToolContext
from heron.tools.ocr_spacing import restore_word_spaces

log = logging.getLogger(__name__)

MIN_SIDE = 8
"""Images narrower or shorter than this (pixels) cannot hold readable text."""

MAX_SIDE = 2048
"""Longer sides are scaled down to this before OCR; detection time grows with area."""

CENTER_FRACTION = 0.6
"""The ``center`` region keeps this fraction of the frame's width and height."""

Crop = tuple[int, int, int, int]
"""A rectangle ``(x0, y0, x1, y1)`` in pixels, end-exclusive."""


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


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """Bring greyscale, BGR or BGRA input of any numeric type to contiguous uint8 BGR."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ToolError("the image is too small to read")
    if image.dtype != np.uint8:
        # float images are usually 0..1 (scikit-image); anything else is clipped.
        scaled = image * 255.0 if image.dtype.kind == "f" and image.max() <= 1.0 else image
        image = np.clip(scaled, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        # Alpha is dropped, not blended: RapidOCR's own RGBA path inverts some images.
        return np.ascontiguousarray(image[:, :, :3])
    raise ToolError(f"cannot read text in an image of shape {image.shape}")


def _reading_order(boxes: list[np.ndarray]) -> list[int]:
    """Indices of ``boxes`` (4x2 arrays) in reading order.

    Boxes are grouped into rows by vertical overlap (at least half the smaller
    height), rows go top to bottom and boxes left to right within a row.
    RapidOCR's own order compares only top-left corners within 10 px, which
    breaks for large text and slightly tilted lines.
    """
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
            )
        except Exception as exc:
            raise ModelError(f"cannot load the OCR models: {type(exc).__name__}: {exc}") from exc
        log.info("OCR models loaded in %.0f ms", (time.perf_counter() - t0) * 1000)
        return self._engine

    def warmup(self) -> None:
        """Load the models and run one small inference so the first real call is fast."""
        t0 = time.perf_counter()
        # A 4:3 image: the detector scales it to the same input shape as a camera frame,
        # and ONNX Runtime's first run on a new shape is the slow one.
        image = np.full((120, 160, 3), 255, np.uint8)
        cv2.putText(image, "warm up", (20, 68), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
        self.read(image, min_confidence=0.0)
        log.info("OCR warm-up took %.0f ms", (time.perf_counter() - t0) * 1000)

    def read(
        self, image: np.ndarray, *, min_confidence: float = 0.5, crop: Crop | None = None
    ) -> TextReading:
        """Read the text in ``image`` (BGR, greyscale or BGRA).

        With ``crop`` only that rectangle is read, but boxes and centres are still
        given relative to the whole image. Lines below ``min_confidence`` are
        dropped. Raises :class:`ToolError` when the image is too small and
        :class:`ModelError` when the OCR engine fails.
        """
        t0 = time.perf_counter()
        bgr = _to_bgr(image)
        full_h, full_w = bgr.shape[:2]
        x0 = y0 = 0
        if crop is not None:
            x0, y0 = max(0, crop[0]), max(0, crop[1])
            bgr = bgr[y0 : max(y0, crop[3]), x0 : max(x0, crop[2])]
        h, w = bgr.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise ToolError("the image is too small to read")

        scale = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(bgr)

        with self._lock:
            engine = self._load()
            try:
                # Every option is passed on each call: RapidOCR resets the ones left out.
                result, _ = engine(
                    bgr,
                    box_thresh=0.5,
                    unclip_ratio=1.6,
                    text_score=0.0,
                    return_word_box=True,
                )
            except Exception as exc:
                raise ModelError(f"OCR failed: {type(exc).__name__}: {exc}") from exc

        boxes: list[np.ndarray] = []
        found: list[tuple[str, float]] = []
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        for raw_box, text, score, *chars in result or []:
            if len(chars) >= 2 and chars[1]:
                text = restore_word_spaces(gray, np.asarray(raw_box), list(chars[1]), chars[0])
            text = str(text).strip()
            if text and float(score) >= min_confidence:
                box = np.asarray(raw_box, dtype=np.float64).reshape(4, 2)
                box[:, 0] = np.clip(box[:, 0] / scale + x0, 0, full_w)
                box[:, 1] = np.clip(box[:, 1] / scale + y0, 0, full_h)
                boxes.append(box)
                found.append((text, float(score)))

        lines = []
        for i in _reading_order(boxes):
            box = boxes[i]
            cx, cy = box.mean(axis=0)
            lines.append(
                TextLine(
                    text=found[i][0],
                    confidence=round(found[i][1], 4),
                    box=[(round(x), round(y)) for x, y in box],
                    center=(round(cx / full_w, 4), round(cy / full_h, 4)),
                )
            )
        elapsed_ms = (time.perf_counter() - t0) * 1000
        log.debug("read %d text lines in %dx%d image in %.0f ms", len(lines), w, h, elapsed_ms)
        return TextReading(
            lines=lines,
            text="\n".join(line.text for line in lines),
            elapsed_ms=round(elapsed_ms, 1),
            image_size=(full_w, full_h),
        )


class ReadTextArgs(ToolArgs):
    min_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="drop lines recognised with less confidence than this (0..1)",
    )
    region: Literal["full", "center"] = Field(
        "full",
        description='"full" reads the whole frame; "center" only its middle 60%, '
        "for a label or page the user holds up to the camera",
    )


class ReadTextTool(Tool[ReadTextArgs]):
    """Read the text visible in the current camera frame (signs, labels, pages, screens).

    Returns the lines of text in reading order (top to bottom, left to right),
    each with its confidence (0..1) and position, plus all the text joined with
    newlines. An empty "text" means no readable text was found. Use region
    "center" when the user holds something up to the camera.
    """

    name: ClassVar[str] = "read_text"
    Args = ReadTextArgs

    def __init__(self, reader: TextReader | None = None) -> None:
        self.reader = reader if reader is not None else TextReader()

    def warmup(self) -> None:
        self.reader.warmup()

    def run(self, args: ReadTextArgs, ctx: ToolContext) -> TextReading:
        image = ctx.require_frame()
        crop: Crop | None = None
        if args.region == "center":
            h, w = image.shape[:2]
            margin = (1.0 - CENTER_FRACTION) / 2
            crop = (
                round(w * margin),
                round(h * margin),
                round(w * (1 - margin)),
                round(h * (1 - margin)),
            )
        try:
            return self.reader.read(image, min_confidence=args.min_confidence, crop=crop)
        except ModelError as exc:
            raise ToolError(f"text reading is not available: {exc}") from exc
