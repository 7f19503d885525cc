"""Camera frames with known text in them, drawn with OpenCV's Hershey fonts."""

from __future__ import annotations

import cv2
import numpy as np

Color = tuple[int, int, int]


def render_text_image(
    lines: list[str],
    *,
    size: tuple[int, int] = (640, 480),
    scale: float = 1.5,
    thickness: int = 2,
    fg: Color = (0, 0, 0),
    bg: Color = (255, 255, 255),
    angle: float = 0.0,
    font: int = cv2.FONT_HERSHEY_SIMPLEX,
) -> np.ndarray:
    """A BGR image of ``size`` (width, height) with ``lines`` centred, one under another.

    ``angle`` rotates the whole picture (degrees, counter-clockwise) about its
    centre; the corners uncovered by the rotation are filled with ``bg``. Text
    wider than the image is cut off, so keep ``scale`` in proportion to ``size``.
    """
    width, height = size
    image: np.ndarray = np.full((height, width, 3), bg, np.uint8)
    metrics = [cv2.getTextSize(line, font, scale, thickness) for line in lines]
    # Line pitch of 1.8 text heights keeps rows clearly apart for the detector.
    pitch = max((h + base for (_, h), base in metrics), default=0) * 1.8
    top = (height - pitch * len(lines)) / 2
    for i, (line, ((w, h), base)) in enumerate(zip(lines, metrics, strict=True)):
        baseline_y = top + pitch * i + (pitch + h - base) / 2
        origin = (round((width - w) / 2), round(baseline_y))
        cv2.putText(image, line, origin, font, scale, fg, thickness, cv2.LINE_AA)
    if angle:
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        image = cv2.warpAffine(
            image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=bg
        )
    return image
