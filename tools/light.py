"""Is the view usable? Brightness, glare and blur: the ``light`` tool.

Cheap measurements on a greyscale copy of the frame at most 640 pixels wide:

- brightness: the mean level, 0 (black) to 1 (white), and the share of clipped
  pixels (blown-out highlights);
- contrast: the standard deviation of the levels; a frame with almost none shows
  nothing (a lens against a wall, a covered camera);
- sharpness: the variance of the Laplacian. scikit-image's sample photographs
  score 400 to 5000 at their own size; blurred by a 3-pixel Gaussian (camera
  shake, out of focus) the astronaut scores under 5.

Each judgement comes with advice a person can act on without seeing the screen.
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import BaseModel, Field

from heron.tools.base import NoArgs, Tool, ToolContext
from heron.tools.perception import as_bgr, check_size, fit_within

MAX_SIDE = 640
"""Sharpness depends on scale, so it is always measured at (at most) this size."""

TOO_DARK = 0.12
DIM = 0.28
BRIGHT = 0.78
TOO_BRIGHT = 0.9
CLIPPED_SHARE = 0.4
"""More than this share of blown-out (near white) pixels is glare, whatever the mean."""

FLAT_CONTRAST = 0.04
"""Below this contrast there is nothing in view to judge sharpness on."""

BLURRED = 15.0
"""Laplacian variance under which the view is blurred."""

Level = Literal["too dark", "dim", "good", "bright", "too bright"]

MORE_LIGHT = "more light"
LESS_GLARE = "turn away from the light"
HOLD_STEADY = "hold steady"
MOVE_CLOSER = "move closer"


class LightReport(BaseModel):
    """How usable the view is, with advice."""

    brightness: float = Field(description="mean level, 0 black .. 1 white")
    level: Level
    too_dark: bool
    too_bright: bool
    blurred: bool
    flat: bool = Field(description="almost no contrast: nothing in view (covered lens, a wall)")
    contrast: float = Field(description="standard deviation of levels, 0..0.5")
    sharpness: float = Field(description="variance of the Laplacian at 640 px; under 15 is blurred")
    clipped: float = Field(description="share of blown-out pixels, 0..1")
    advice: list[str] = Field(
        description='things to do, from: "more light", "turn away from the light", '
        '"hold steady", "move closer"'
    )
    summary: str = Field(description="one spoken sentence")
    elapsed_ms: float
    image_size: tuple[int, int] = Field(description="(width, height) of the image")


def _level(brightness: float, clipped: float) -> Level:
    if brightness >= TOO_BRIGHT or clipped >= CLIPPED_SHARE:
        return "too bright"
    if brightness < TOO_DARK:
        return "too dark"
    if brightness < DIM:
        return "dim"
    if brightness >= BRIGHT:
        return "bright"
    return "good"


def _summary(level: Level, blurred: bool, flat: bool) -> str:
    said = {
        "too dark": "It's too dark to see much; more light would help.",
        "dim": "It's dim.",
        "good": "The light is good.",
        "bright": "It's bright.",
        "too bright": "There's too much light or glare; turn away from the light.",
    }[level]
    if level == "too dark":
        return said
    if flat:
        return said + " There's nothing clear in view; move closer or point at something."
    if blurred:
        return said + " The view is blurred; hold steady."
    return said + " The view is sharp."


def assess_light(image: np.ndarray) -> LightReport:
    """Measure brightness, contrast and sharpness of ``image`` (BGR, greyscale or BGRA)."""
    t0 = time.perf_counter()
    bgr = as_bgr(image, what="judge the light of")
    check_size(bgr, what="judge the light of", min_side=3)
    full_h, full_w = bgr.shape[:2]
    small, _ = fit_within(bgr, MAX_SIDE)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    brightness = float(grey.mean()) / 255.0
    contrast = float(grey.std()) / 255.0
    clipped = float(np.count_nonzero(grey >= 250)) / grey.size
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    level = _level(brightness, clipped)
    flat = contrast < FLAT_CONTRAST
    # Darkness and flatness both starve the Laplacian; blur is judged only when it can be.
    blurred = sharpness < BLURRED and not flat and level != "too dark"
    advice = []
    if level in ("too dark", "dim"):
        advice.append(MORE_LIGHT)
    if level == "too bright":
        advice.append(LESS_GLARE)
    if blurred:
        advice.append(HOLD_STEADY)
    if flat and level != "too dark":
        advice.append(MOVE_CLOSER)
    elapsed = (time.perf_counter() - t0) * 1000
    return LightReport(
        brightness=round(brightness, 3),
        level=level,
        too_dark=level == "too dark",
        too_bright=level == "too bright",
        blurred=blurred,
        flat=flat,
        contrast=round(contrast, 3),
        sharpness=round(sharpness, 1),
        clipped=round(clipped, 3),
        advice=advice,
        summary=_summary(level, blurred, flat),
        elapsed_ms=round(elapsed, 1),
        image_size=(full_w, full_h),
    )


class LightTool(Tool[NoArgs]):
    """Check whether the camera view is usable: too dark, too bright, or blurred.

    Returns the brightness (0..1), a level (too dark, dim, good, bright, too
    bright), whether the view is blurred or shows nothing, and advice the user
    can follow ("more light", "turn away from the light", "hold steady", "move
    closer"). Use it when the view looks unclear, before saying you can't see.
    """

    name: ClassVar[str] = "light"
    Args = NoArgs

    def run(self, args: NoArgs, ctx: ToolContext) -> LightReport:
        return assess_light(ctx.require_frame())
