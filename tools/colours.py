"""The main colours in view, in plain words: the ``colours`` tool.

The frame (or its centre) is shrunk to a few thousand pixels, clustered with
k-means in CIE L*a*b* (where distances follow what people see, unlike RGB), and
each cluster is named after the nearest entry of a small palette of everyday
colour names ("dark blue", "light grey", "beige"). Clusters that get the same
name are merged, and colours covering less than :data:`MIN_SHARE` of the view
are left out: a spoken answer names the two or three that matter.
"""

from __future__ import annotations

import time
from typing import ClassVar

import cv2
import numpy as np
from pydantic import BaseModel, Field

from heron.tools.base import Tool, ToolArgs, ToolContext
from heron.tools.perception import Region, as_bgr, check_size, region_crop

SAMPLE_PIXELS = 4800
"""Pixels clustered (80×60 for a 4:3 frame): enough for shares to 1%, a few ms of k-means."""

CLUSTERS = 6
MIN_SHARE = 0.05

PALETTE: dict[str, tuple[int, int, int]] = {
    # name: sRGB. Neutrals first, then hues with dark and light variants.
    "black": (10, 10, 10),
    "dark grey": (70, 70, 70),
    "grey": (128, 128, 128),
    "light grey": (190, 190, 190),
    "white": (245, 245, 245),
    "dark red": (120, 15, 20),
    "red": (210, 30, 35),
    "pink": (240, 120, 170),
    "light pink": (250, 195, 210),
    "dark brown": (70, 40, 20),
    "brown": (140, 85, 45),
    "orange": (245, 130, 20),
    "beige": (220, 200, 160),
    "yellow": (245, 215, 30),
    "olive": (120, 120, 30),
    "dark green": (20, 80, 30),
    "green": (45, 160, 60),
    "light green": (150, 225, 130),
    "teal": (0, 128, 128),
    "turquoise": (60, 205, 200),
    "light blue": (140, 190, 235),
    "blue": (35, 85, 210),
    "dark blue": (20, 30, 110),
    "purple": (120, 50, 150),
    "lavender": (190, 160, 225),
    "magenta": (215, 40, 190),
}


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (N x 3, 0..255) → L*a*b* (L 0..100), float32."""
    pixels = (np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0).astype(np.float32)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2Lab).reshape(-1, 3)


PALETTE_NAMES = list(PALETTE)
PALETTE_LAB = _lab(np.array(list(PALETTE.values())))


def name_colour(rgb: tuple[int, int, int]) -> tuple[str, float]:
    """The palette name nearest to an sRGB colour, and the distance (ΔE*76) to it."""
    lab = _lab(np.array([rgb]))[0]
    distances = np.linalg.norm(PALETTE_LAB - lab, axis=1)
    best = int(distances.argmin())
    return PALETTE_NAMES[best], float(distances[best])


class Colour(BaseModel):
    """One of the main colours in view."""

    name: str = Field(description='plain name, e.g. "dark blue", "light grey"')
    share: float = Field(description="fraction 0..1 of the region this colour covers")
    rgb: tuple[int, int, int] = Field(description="the colour's mean sRGB value")
    hex: str = Field(description="the same as #rrggbb")
    confidence: float = Field(description="0..1, how well the name fits the colour")


class ColourReport(BaseModel):
    """The main colours of the frame or its centre, largest share first."""

    colours: list[Colour]
    region: Region
    elapsed_ms: float
    image_size: tuple[int, int] = Field(description="(width, height) of the image")


def dominant_colours(
    image: np.ndarray, *, region: Region = "full", clusters: int = CLUSTERS
) -> ColourReport:
    """The main colours of ``image`` (BGR, greyscale or BGRA) with their shares."""
    t0 = time.perf_counter()
    bgr = as_bgr(image, what="name the colours of")
    full_h, full_w = bgr.shape[:2]
    x0, y0, x1, y1 = region_crop(bgr.shape, region)
    crop = bgr[y0:y1, x0:x1]
    check_size(crop, what="name the colours of", min_side=1)
    h, w = crop.shape[:2]
    factor = min(1.0, (SAMPLE_PIXELS / (h * w)) ** 0.5)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA) if factor < 1 else crop
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).reshape(-1, 3)
    lab = _lab(rgb)
    k = min(clusters, len(np.unique(rgb, axis=0)))
    if k <= 1:
        labels = np.zeros(len(lab), np.int32)
    else:
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
        # A fixed seed: the same frame gives the same answer every time.
        cv2.setRNGSeed(7)
        best = np.zeros((len(lab), 1), np.int32)
        _, found, _ = cv2.kmeans(lab, k, best, criteria, 2, cv2.KMEANS_PP_CENTERS)
        labels = np.asarray(found, np.int32).ravel()
    named: dict[str, list[int]] = {}
    for cluster in np.unique(labels):
        members = labels == cluster
        mean_rgb = rgb[members].mean(axis=0)
        name, _ = name_colour((int(mean_rgb[0]), int(mean_rgb[1]), int(mean_rgb[2])))
        named.setdefault(name, []).extend(np.flatnonzero(members).tolist())
    colours = []
    for name, indices in named.items():
        share = len(indices) / len(labels)
        if share < MIN_SHARE:
            continue
        r, g, b = (round(v) for v in rgb[indices].mean(axis=0))
        _, distance = name_colour((r, g, b))
        colours.append(
            Colour(
                name=name,
                share=round(share, 3),
                rgb=(r, g, b),
                hex=f"#{r:02x}{g:02x}{b:02x}",
                # ΔE 0 fits exactly; at 40 the colour is halfway to another name.
                confidence=round(max(0.0, 1.0 - distance / 40.0), 3),
            )
        )
    colours.sort(key=lambda c: -c.share)
    elapsed = (time.perf_counter() - t0) * 1000
    return ColourReport(
        colours=colours, region=region, elapsed_ms=round(elapsed, 1), image_size=(full_w, full_h)
    )


class ColoursArgs(ToolArgs):
    region: Region = Field(
        "full",
        description='"full" for the whole frame; "center" for its middle 60%, '
        "e.g. a piece of clothing held up to the camera",
    )


class ColoursTool(Tool[ColoursArgs]):
    """Name the main colours in the current camera frame, largest first.

    Returns plain colour names ("dark blue", "light grey") with the share (0..1)
    of the view each covers and a confidence that the name fits. Use region
    "center" for the colour of something held up to the camera. Colours depend
    on the light: in dim or coloured light, say so.
    """

    name: ClassVar[str] = "colours"
    Args = ColoursArgs

    def run(self, args: ColoursArgs, ctx: ToolContext) -> ColourReport:
        return dominant_colours(ctx.require_frame(), region=args.region)
