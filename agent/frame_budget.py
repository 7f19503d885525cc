"""The frame budget: what a frame sent to the model may cost, in pixels and bytes.

A frame is resized so its longest side is at most ``max_side`` and JPEG-encoded at
``quality``; when the JPEG is still larger than ``max_bytes``, the quality steps
down (to :data:`MIN_QUALITY`), then the size, until it fits. Detailed scenes (a
page of text, foliage) are what overflow; stepping quality first keeps the
resolution that text needs to stay legible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .vlm import estimate_image_tokens

MIN_QUALITY = 40
"""Below this JPEG quality text edges smear; shrink the image instead."""

_QUALITY_STEP = 10
_SIZE_STEP = 0.8
_MIN_SIDE = 64


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """A frame as the model gets it."""

    jpeg: bytes
    width: int
    height: int
    quality: int
    image_tokens: int
    """Estimated image tokens (OpenAI's high-detail tiling) of sending it."""
    over_budget: bool = False
    """True when even the smallest size and lowest quality did not fit ``max_bytes``."""


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return image


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up) so the longest side is at most ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_within_budget(
    image: np.ndarray, *, max_side: int, quality: int, max_bytes: int | None = None
) -> EncodedFrame:
    """Resize and JPEG-encode ``image`` (BGR, grey or BGRA) to fit the budget."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ValueError("the frame is empty")
    image = _bgr(image)
    height, width = image.shape[:2]
    side = max_side
    while True:
        size = fit_size(width, height, side)
        resized = (
            image
            if size == (width, height)
            else cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        )
        q = quality
        while True:
            ok, buf = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, q])
            if not ok:
                raise ValueError("the frame could not be encoded as JPEG")
            fits = max_bytes is None or len(buf) <= max_bytes
            if fits or q <= MIN_QUALITY:
                break
            q = max(MIN_QUALITY, q - _QUALITY_STEP)
        smallest = max(size) <= _MIN_SIDE
        if fits or smallest:
            return EncodedFrame(
                jpeg=buf.tobytes(),
                width=size[0],
                height=size[1],
                quality=q,
                image_tokens=estimate_image_tokens(*size),
                over_budget=not fits,
            )
        # bytes grow about with area: aim straight at the budget, at least one step down
        assert max_bytes is not None
        ratio = math.sqrt(max_bytes / len(buf))
        side = max(_MIN_SIDE, min(round(max(size) * _SIZE_STEP), round(max(size) * ratio)))
