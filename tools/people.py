"""How many people are in view, and where: the ``people`` tool.

Faces are found with OpenCV's LBP frontal-face cascade (``lbpcascade_frontalface``),
which scikit-image ships inside its wheel and runs with ``skimage.feature.Cascade``.
OpenCV 5's own wheels no longer include cascades or the HOG people detector, and
a cascade needs no download, no GPU and no PyTorch. It sees faces turned towards
the camera: people seen from behind or far in profile are missed, and the answer
says "facing the camera" for that reason.

Detections at neighbouring positions and scales are grouped; the number of raw
detections in a group is the evidence for it (a real face fires the cascade many
times, a face-like texture once or twice), which gives the confidence. Nothing
about who a person is is computed or returned.
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
from heron.tools.base import NoArgs, Tool, ToolContext
from heron.tools.perception import Place, as_bgr, check_size, fit_within, horizontal_place

log = logging.getLogger(__name__)

MAX_SIDE = 320
"""Faces are searched in a copy this size: ~120 ms on one core, faces from ~40 px up
in a 640×480 frame (about 4 m from a webcam)."""

MIN_FACE = 20
"""Smallest face searched for, in pixels of the downscaled copy."""

MIN_SUPPORT = 8
"""Raw detections a group needs to count as a face. On scikit-image's sample photos the
astronaut's face gathers 16 and the strongest false detection (a flag's stripes) 4 to 7,
depending on scale and JPEG compression."""

NEAR_HEIGHT = 0.15
"""A face at least this fraction of the frame's height is near (within ~1.5 m of a webcam)."""

FAR_HEIGHT = 0.07
"""A face smaller than this fraction is far (beyond ~3.5 m)."""

Distance = Literal["near", "middle", "far"]


class Face(BaseModel):
    """One face turned towards the camera."""

    box: tuple[int, int, int, int] = Field(description="(x, y, width, height) in image pixels")
    center: tuple[float, float] = Field(description="centre (x, y), fractions 0..1 of the image")
    place: Place = Field(description="where the face is across the frame")
    distance: Distance = Field(description="near, middle or far, judged by the face's size")
    height: float = Field(description="face height as a fraction of the frame height")
    confidence: float = Field(description="0..1, from how strongly the detector fired")


class PeopleCount(BaseModel):
    """People facing the camera, left to right."""

    people: int = Field(description="number of people facing the camera")
    faces: list[Face]
    elapsed_ms: float
    image_size: tuple[int, int] = Field(description="(width, height) of the image")


def _distance(height_fraction: float) -> Distance:
    if height_fraction >= NEAR_HEIGHT:
        return "near"
    if height_fraction < FAR_HEIGHT:
        return "far"
    return "middle"


def group_detections(
    boxes: list[tuple[int, int, int, int]], *, min_support: int = MIN_SUPPORT
) -> list[tuple[tuple[float, float, float, float], int]]:
    """Merge overlapping ``(x, y, w, h)`` boxes: the mean box of each group, and its size.

    Two boxes belong together when one's centre lies inside the other and their
    sizes differ by less than half, the grouping OpenCV's ``groupRectangles`` uses
    in spirit. Groups with fewer than ``min_support`` boxes are dropped.
    """
    groups: list[list[tuple[int, int, int, int]]] = []
    for box in sorted(boxes, key=lambda b: -b[2]):
        x, y, w, h = box
        cx, cy = x + w / 2, y + h / 2
        for group in groups:
            gx, gy, gw, gh = np.mean(group, axis=0)
            inside = gx <= cx <= gx + gw and gy <= cy <= gy + gh
            if inside and 0.5 < w / gw < 2.0:
                group.append(box)
                break
        else:
            groups.append([box])
    Box = tuple[float, float, float, float]
    merged: list[tuple[Box, int]] = []
    for group in groups:
        if len(group) >= min_support:
            gx, gy, gw, gh = (float(v) for v in np.mean(group, axis=0))
            merged.append(((gx, gy, gw, gh), len(group)))
    # A smaller group inside a larger face is a part of it (an eye, a mouth).
    kept: list[tuple[Box, int]] = []
    for (fx, fy, fw, fh), support in merged:
        cx, cy = fx + fw / 2, fy + fh / 2
        swallowed = any(
            ow > fw and ox <= cx <= ox + ow and oy <= cy <= oy + oh and os >= support
            for (ox, oy, ow, oh), os in merged
        )
        if not swallowed:
            kept.append(((fx, fy, fw, fh), support))
    return kept


class FaceFinder:
    """The LBP face cascade, loaded once; ``skimage.feature.Cascade`` is not thread-safe."""

    def __init__(self, *, max_side: int = MAX_SIDE, min_support: int = MIN_SUPPORT) -> None:
        self.max_side = max_side
        self.min_support = min_support
        self._cascade: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._cascade is None:
            try:
                from skimage.data import lbp_frontal_face_cascade_filename
                from skimage.feature import Cascade

                self._cascade = Cascade(lbp_frontal_face_cascade_filename())
            except Exception as exc:
                raise ModelError(f"cannot load the face detector: {exc}") from exc
        return self._cascade

    def warmup(self) -> None:
        with self._lock:
            self._load()

    def count(self, image: np.ndarray) -> PeopleCount:
        """Find the faces in ``image`` (BGR, greyscale or BGRA)."""
        t0 = time.perf_counter()
        bgr = as_bgr(image, what="look for people in")
        check_size(bgr, what="look for people in", min_side=MIN_FACE)
        full_h, full_w = bgr.shape[:2]
        small, scale = fit_within(bgr, self.max_side)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        side = min(grey.shape)
        with self._lock:
            cascade = self._load()
            raw = cascade.detect_multi_scale(
                img=grey,
                scale_factor=1.2,
                step_ratio=1,
                min_size=(MIN_FACE, MIN_FACE),
                max_size=(side, side),
                # Every raw detection, ungrouped (no overlap reaches 2.0): we group them
                # ourselves to know how many support each face.
                min_neighbor_number=0,
                intersection_score_threshold=2.0,
            )
        boxes = [(d["c"], d["r"], d["width"], d["height"]) for d in raw]
        faces = []
        for (x, y, w, h), support in group_detections(boxes, min_support=self.min_support):
            x, y, w, h = x / scale, y / scale, w / scale, h / scale
            center = (round((x + w / 2) / full_w, 4), round((y + h / 2) / full_h, 4))
            height = h / full_h
            faces.append(
                Face(
                    box=(round(x), round(y), round(w), round(h)),
                    center=center,
                    place=horizontal_place(center[0]),
                    distance=_distance(height),
                    height=round(height, 4),
                    confidence=round(support / (support + 4), 3),
                )
            )
        faces.sort(key=lambda face: face.center[0])
        elapsed = (time.perf_counter() - t0) * 1000
        return PeopleCount(
            people=len(faces),
            faces=faces,
            elapsed_ms=round(elapsed, 1),
            image_size=(full_w, full_h),
        )


class PeopleTool(Tool[NoArgs]):
    """Count the people facing the camera in the current frame, and say where they are.

    Returns the number of people and, for each face, its place across the frame
    (left, centre, right), how near it is judged by its size (near, middle, far)
    and a confidence (0..1). People turned away from the camera are not counted.
    It never says who anyone is.
    """

    name: ClassVar[str] = "people"
    Args = NoArgs

    def __init__(self, finder: FaceFinder | None = None) -> None:
        self.finder = finder if finder is not None else FaceFinder()

    def warmup(self) -> None:
        self.finder.warmup()

    def run(self, args: NoArgs, ctx: ToolContext) -> PeopleCount:
        try:
            return self.finder.count(ctx.require_frame())
        except ModelError as exc:
            raise ToolError(f"people detection is not available: {exc}") from exc
