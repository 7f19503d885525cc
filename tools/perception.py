"""What the perception tools share: image clean-up, regions, and where things are.

Every perception tool (``read_text``, ``scan_codes``, ``people``, ``colours``,
``light``) takes the current camera frame from :class:`~heron.tools.base.ToolContext`,
brings it to contiguous uint8 BGR with :func:`as_bgr` (greyscale, BGRA and float
images are accepted), refuses images too small to say anything about, and scales
large ones down before any heavy work with :func:`fit_within`. Positions are
reported as fractions of the frame and in words (:func:`horizontal_place`), which
is what a spoken answer needs.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from heron.agent.errors import ToolError

Crop = tuple[int, int, int, int]
"""A rectangle ``(x0, y0, x1, y1)`` in pixels, end-exclusive."""

Region = Literal["full", "center"]
"""``full`` looks at the whole frame; ``center`` at its middle (see CENTER_FRACTION)."""

Place = Literal["left", "centre", "right"]

CENTER_FRACTION = 0.6
"""The ``center`` region keeps this fraction of the frame's width and height."""

MIN_SIDE = 8
"""Images narrower or shorter than this (pixels) are refused: nothing can be seen in them."""


def as_bgr(image: np.ndarray, *, what: str = "look at") -> np.ndarray:
    """Bring greyscale, BGR or BGRA input of any numeric type to contiguous uint8 BGR.

    Float images in 0..1 (scikit-image's convention) are scaled to 0..255; other
    values are clipped. Alpha is dropped, not blended. Raises :class:`ToolError`
    for empty arrays and shapes that are not images.
    """
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise ToolError(f"the image is too small to {what}")
    if image.dtype != np.uint8:
        scaled = image * 255.0 if image.dtype.kind == "f" and image.max() <= 1.0 else image
        image = np.clip(scaled, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.ascontiguousarray(image[:, :, :3])
    raise ToolError(f"cannot {what} an image of shape {image.shape}")


def check_size(image: np.ndarray, *, what: str = "look at", min_side: int = MIN_SIDE) -> None:
    """Raise :class:`ToolError` when ``image`` is smaller than ``min_side`` on a side."""
    if min(image.shape[:2]) < min_side:
        raise ToolError(f"the image is too small to {what}")


def fit_within(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` scaled down (never up) so its longer side is at most ``max_side``.

    Returns the image and the scale applied (1.0 when it already fits); area
    averaging keeps thin strokes and small faces visible in the smaller copy.
    """
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def region_crop(shape: tuple[int, ...], region: Region) -> Crop:
    """The rectangle of ``region`` in an image of ``shape`` (height, width, ...)."""
    h, w = shape[:2]
    if region == "full":
        return (0, 0, w, h)
    margin = (1.0 - CENTER_FRACTION) / 2
    return (round(w * margin), round(h * margin), round(w * (1 - margin)), round(h * (1 - margin)))


def horizontal_place(x_fraction: float) -> Place:
    """Left, centre or right, for a horizontal position given as a fraction 0..1."""
    if x_fraction < 1 / 3:
        return "left"
    if x_fraction > 2 / 3:
        return "right"
    return "centre"


def box_center(box: np.ndarray, width: int, height: int) -> tuple[float, float]:
    """Centre of a polygon (N x 2 pixel corners) as fractions of the image size."""
    cx, cy = np.asarray(box, dtype=np.float64).reshape(-1, 2).mean(axis=0)
    return (round(float(cx) / width, 4), round(float(cy) / height, 4))


def count_words(count: int, singular: str, plural: str | None = None) -> str:
    """``count_words(2, "person", "people")`` → ``"two people"``; for spoken answers."""
    names = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    number = names[count] if 0 <= count < len(names) else str(count)
    noun = singular if count == 1 else (plural or singular + "s")
    return f"{number} {noun}"
