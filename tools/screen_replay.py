"""Is the camera looking at a screen? Evidence from one frame.

A photo of a display carries the display's own structure. Its pixels are a
regular grid of red, green and blue stripes with dark gaps; a camera sampling
that grid at a slightly different pitch and angle turns it into moiré, which
in the frame's 2-D spectrum shows as sharp peaks at fine frequencies, or, where
the picture on the screen modulates the grid, as copies of the picture's own
spectrum around them (blobs). Ordinary scenes have smooth spectra (about 1/f)
with streaks from edges; the exceptions (blinds, fabric, lines of print) are
mostly coarser and repeat in one direction, while a pixel grid repeats in two. A display
refreshing while a rolling shutter reads the sensor adds horizontal bands that
repeat down the frame. Weaker cues: a bright rectangle with a dark rim (the
bezel) and a glare patch on it.

:func:`screen_replay_score` measures these on the centre of a frame at its
native resolution (scaling would erase the grid) and returns a score with the
evidence behind it, in about 12 ms of CPU time for a 640×480 frame
(``bench/screen_replay.py`` measures it). The score is
evidence, not a verdict: a screen whose pixels are finer than the camera can
resolve and that shows no banding looks like any other scene.
:class:`ScreenReplayWatch` smooths scores over keyframes for the live loop.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, Field

from heron.tools.media_signals import MediaSignal, Strength, graded

MAX_WINDOW = 512
"""Side of the centre square whose spectrum is analysed (native pixels)."""

PEAK_LOG_RATIO = 3.0
"""A spectral peak counts when its power is e^3 (20x) above its neighbourhood's typical power."""

FINE_FREQUENCY = 0.2
"""Display grids repeat every 2-5 camera pixels; coarser patterns (lines of print,
bricks, blinds) are common in ordinary scenes, so only peaks above this count."""

MIN_AMPLITUDE = 0.05
"""Grey levels of ripple below which a periodic peak is too faint to be a screen's grid."""

FINE_PEAK = 3.5
"""Log ratio from which a fine peak is strong enough to trust its direction."""

WARN_SCORE = 0.5
"""Scores from here up are worth telling the user about."""

Level = Literal["none", "weak", "moderate", "strong"]


class ScreenReplayFeatures(BaseModel):
    """The measurements behind the score, for logs and tuning."""

    peak: float = Field(description="strongest fine periodic peak, log power over its surroundings")
    peaks: int = Field(description="fine periodic peaks found (grey and colour spectra)")
    two_directions: bool = Field(description="strong peaks repeat along two directions")
    blob: float = Field(description="strongest fine moiré blob off the axes, log ratio")
    axis_blob: float = Field(description="strongest fine moiré blob on the axes, log ratio")
    banding_share: float = Field(description="share of slow row-to-row change one period explains")
    band_period_px: float
    band_depth: float = Field(description="how much the bands dim the rows, as a fraction")
    bezel: float = Field(description="fraction of the frame inside a dark-rimmed rectangle, or 0")
    glare: float = Field(description="fraction of the frame in a saturated glare patch")


class ScreenReplayResult(BaseModel):
    """How much a frame looks like a photo of a screen, and why."""

    score: float = Field(description="0..1; evidence weight, not a probability")
    level: Level
    signals: list[MediaSignal]
    warning: str | None = Field(description="a sentence to say to the user, or None")
    features: ScreenReplayFeatures
    elapsed_ms: float


_WINDOWS: dict[int, np.ndarray] = {}


def _hann(n: int) -> np.ndarray:
    if n not in _WINDOWS:
        w = np.hanning(n).astype(np.float32)
        _WINDOWS[n] = np.outer(w, w)
    return _WINDOWS[n]


class _Frequencies:
    """Frequency axes and masks for an n×n spectrum, computed once per size."""

    def __init__(self, n: int, block: int) -> None:
        self.freqs = np.fft.fftshift(np.fft.fftfreq(n)).astype(np.float32)
        # JPEG's block grid leaves peaks at multiples of 1/block cycles per pixel.
        blocked = np.zeros(n, bool)
        for k in range(1, block // 2 + 1):
            blocked |= np.abs(np.abs(self.freqs) - k / block) <= 1.5 / n
        fy, fx = self.freqs[:, None], self.freqs[None, :]
        self.off_axis = (
            (np.hypot(fx, fy) >= FINE_FREQUENCY)
            & (np.abs(fx) > 2.5 / n)
            & (fy > 2.5 / n)  # one half-plane: the spectrum of a real image is symmetric
            & ~blocked[None, :]
            & ~blocked[:, None]
        )
        self.on_axis = (self.freqs >= FINE_FREQUENCY) & ~blocked
        # Blobs are smoothed over 5 bins, so keep them further from axes and block lines,
        # and from the spectrum's edge, where the wide average runs out.
        wide_blocked = np.zeros(n, bool)
        for k in range(1, block // 2 + 1):
            wide_blocked |= np.abs(np.abs(self.freqs) - k / block) <= 3.5 / n
        self.blob_off_axis = (
            (np.hypot(fx, fy) >= FINE_FREQUENCY)
            & (np.abs(fx) > 4.5 / n)
            & (fy > 4.5 / n)
            & ~wide_blocked[None, :]
            & ~wide_blocked[:, None]
        )
        self.blob_on_axis = (
            (self.freqs >= FINE_FREQUENCY) & (self.freqs < 0.5 - 20 / n) & ~wide_blocked
        )


@functools.lru_cache(maxsize=8)
def _frequencies(n: int, block: int) -> _Frequencies:
    return _Frequencies(n, block)


@dataclass
class _SpectrumFindings:
    peaks: list[tuple[float, float, float]]
    """(log ratio, fx, fy) of sharp peaks."""
    blob: float
    """Strongest blob off the axes: smoothed log power over its wide surroundings."""
    axis_blob: float
    """The same along the axes."""


def _analyse_spectrum(channel: np.ndarray, n: int, block: int) -> _SpectrumFindings:
    """Fine periodic structure in the power spectrum of the centre n×n window.

    Two kinds: sharp peaks (a grid over a plain picture), each compared with its
    11×11 neighbourhood off the axes, and along the axes, where every straight
    edge leaves a streak, with the median along the axis; and blobs (a grid whose
    brightness follows the picture, which spreads the peak into a copy of the
    picture's own spectrum), a 5×5 average compared with a 41×41 one. Frequencies
    of the JPEG block grid are skipped, and so is ripple fainter than
    MIN_AMPLITUDE grey levels (the 8-bit steps of a smooth gradient).
    """
    h, w = channel.shape
    y0, x0 = (h - n) // 2, (w - n) // 2
    patch = channel[y0 : y0 + n, x0 : x0 + n].astype(np.float32)
    patch = (patch - patch.mean()) * _hann(n)
    spectrum = cv2.dft(patch, flags=cv2.DFT_COMPLEX_OUTPUT)
    log_power = np.fft.fftshift(np.log(spectrum[..., 0] ** 2 + spectrum[..., 1] ** 2 + 1e-2))
    grid = _frequencies(n, block)
    freqs = grid.freqs
    floor = 2 * np.log(MIN_AMPLITUDE * float(_hann(n).sum()) / 2)
    peaks: list[tuple[float, float, float]] = []

    residual = log_power - cv2.blur(log_power, (11, 11))
    candidates = grid.off_axis & (residual > PEAK_LOG_RATIO) & (log_power > floor)
    candidates &= residual == cv2.dilate(residual, np.ones((5, 5), np.uint8))
    for y, x in np.argwhere(candidates):
        peaks.append((float(residual[y, x]), float(freqs[x]), float(freqs[y])))

    smooth = cv2.blur(log_power, (5, 5))
    blobs = np.where(
        grid.blob_off_axis & (smooth > floor), smooth - cv2.blur(log_power, (41, 41)), 0
    )
    axis_blob = 0.0
    mid = n // 2
    for horizontal in (True, False):
        band = log_power[mid - 2 : mid + 3, :] if horizontal else log_power[:, mid - 2 : mid + 3].T
        line = band.max(axis=0)
        background = np.median(sliding_window_view(np.pad(line, 7, mode="edge"), 15), axis=1)
        res = line - background
        is_max = res >= np.max(sliding_window_view(np.pad(res, 2, mode="edge"), 5), axis=1)
        visible = line > floor
        for i in np.nonzero(grid.on_axis & is_max & visible & (res > PEAK_LOG_RATIO))[0]:
            f = float(freqs[i])
            peaks.append((float(res[i]), f, 0.0) if horizontal else (float(res[i]), 0.0, f))
        line_smooth = np.convolve(line, np.ones(5) / 5, mode="same")
        line_wide = np.convolve(line, np.ones(41) / 41, mode="same")
        ok = grid.blob_on_axis & (line_smooth > floor)
        if ok.any():
            axis_blob = max(axis_blob, float((line_smooth - line_wide)[ok].max()))
    return _SpectrumFindings(peaks=peaks, blob=float(blobs.max()), axis_blob=axis_blob)


def _two_directions(peaks: list[tuple[float, float, float]]) -> bool:
    """Do the strongest peaks point along at least two directions 25° or more apart?"""
    strong = [p for p in sorted(peaks, reverse=True)[:20] if p[0] >= FINE_PEAK]
    angles = [np.degrees(np.arctan2(fy, fx)) % 180 for _, fx, fy in strong]
    for i, a in enumerate(angles):
        for b in angles[:i]:
            d = abs(a - b)
            if min(d, 180 - d) >= 25:
                return True
    return False


def _banding(gray: np.ndarray) -> tuple[float, float, float]:
    """(share, period px, depth) of the strongest regular horizontal banding.

    Bands from a refreshing display multiply whole rows, so the row-to-row change
    of log brightness is the same in every column; its median across columns
    keeps the bands and drops scene edges, which sit in few columns. ``share`` is
    how much of that profile's slow change (periods over 8 px) one period from
    12 px to a quarter of the frame explains, scaled down when the upper and lower halves of the
    frame disagree; ``depth`` how much the bands dim the rows.
    """
    w = gray.shape[1]
    columns = gray[:, w // 5 : w - w // 5 : 2].astype(np.float32)  # the middle, where a screen is
    rows = np.median(np.diff(np.log(columns + 8.0), axis=0), axis=1)
    n = rows.shape[0]
    if n < 48:
        return 0.0, 0.0, 0.0
    rows = rows - rows.mean()
    power = np.abs(np.fft.rfft(rows * np.hanning(n))) ** 2
    # At least four cycles down the frame: fewer look like any smooth scene.
    lo, hi = 4, max(5, n // 12)
    k = int(np.argmax(power[lo:hi])) + lo
    fundamental = float(power[k - 1 : k + 2].sum())
    share = fundamental / (float(power[2 : n // 8].sum()) + 1e-12)
    # The slope's amplitude (undoing the window) times period / 2 pi is the depth.
    depth = 4 * np.sqrt(fundamental) / n * (n / k) / (2 * np.pi)
    # Bands run down the whole screen; one edge or bump (a plate, a horizon) does not:
    # compare the component's strength in the upper and the lower half.
    half = n // 2
    wave = np.hanning(half) * np.exp(-2j * np.pi * k / n * np.arange(half))
    upper, lower = abs(np.dot(rows[:half], wave)), abs(np.dot(rows[half : 2 * half], wave))
    balance = min(upper, lower) / (max(upper, lower) + 1e-12)
    return share * float(balance), float(n / k), float(depth)


def _bezel(gray: np.ndarray) -> float:
    """Area fraction of the largest convex quadrilateral with a dark rim around it, else 0."""
    small = cv2.resize(gray, (320, round(320 * gray.shape[0] / gray.shape[1])))
    edges = cv2.dilate(cv2.Canny(cv2.GaussianBlur(small, (5, 5), 0), 40, 120), np.ones((3, 3)))
    contours, _ = cv2.findContours(edges, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    area = small.shape[0] * small.shape[1]
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
        hull = cv2.convexHull(contour)
        quad = cv2.approxPolyDP(hull, 0.03 * cv2.arcLength(hull, True), True)
        fraction = cv2.contourArea(quad) / area
        if len(quad) != 4 or not 0.12 <= fraction <= 0.9:
            continue
        inside = np.zeros_like(small)
        cv2.fillConvexPoly(inside, quad, 1)
        rim = cv2.dilate(inside, np.ones((9, 9), np.uint8)) - cv2.erode(inside, np.ones((5, 5)))
        rim_mean = float(small[rim > 0].mean())
        inner = float(small[inside > 0].mean())
        if rim_mean < 45 and inner > rim_mean + 40:
            return float(fraction)
    return 0.0


def _glare(gray: np.ndarray) -> float:
    """Area fraction of the largest saturated, smooth blob (glare on glass), or 0."""
    small = cv2.resize(gray, (160, round(160 * gray.shape[0] / gray.shape[1])))
    bright = (small >= 245).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(bright)
    if count < 2:
        return 0.0
    largest = float(stats[1:, cv2.CC_STAT_AREA].max()) / bright.size
    return largest if 0.003 <= largest <= 0.15 else 0.0


def _to_gray_and_chroma(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if image.ndim == 2:
        return image, None
    bgr = image[:, :, :3]
    gray = cv2.cvtColor(np.ascontiguousarray(bgr), cv2.COLOR_BGR2GRAY)
    # Red minus blue: the subpixel stripes of a display show up as colour moiré.
    chroma = bgr[:, :, 2].astype(np.int16) - bgr[:, :, 0].astype(np.int16)
    return gray, chroma


def measure(image: np.ndarray) -> ScreenReplayFeatures:
    """The raw screen-replay measurements of a uint8 BGR or greyscale frame."""
    gray, chroma = _to_gray_and_chroma(image)
    n = min(gray.shape[0], gray.shape[1], MAX_WINDOW)
    n -= n % 2
    findings = [_analyse_spectrum(gray, n, 8)]
    if chroma is not None:
        findings.append(_analyse_spectrum(chroma, n, 16))  # chroma: 16-px JPEG blocks
    peaks = [p for f in findings for p in f.peaks]
    share, period, depth = _banding(gray)
    return ScreenReplayFeatures(
        peak=max((p[0] for p in peaks), default=0.0),
        peaks=len(peaks),
        two_directions=_two_directions(peaks),
        blob=max(f.blob for f in findings),
        axis_blob=max(f.axis_blob for f in findings),
        banding_share=share,
        band_period_px=period,
        band_depth=depth,
        bezel=_bezel(gray),
        glare=_glare(gray),
    )


def _peak_evidence(f: ScreenReplayFeatures) -> float:
    """0..1 from the height of the strongest fine peak, how many there are, and directions."""
    height = float(np.clip((f.peak - FINE_PEAK) / 1.2, 0.0, 1.0))
    spread = 0.3 + 0.7 * float(np.clip((f.peaks - 3) / 10, 0.0, 1.0))
    return height * spread * (1.0 if f.two_directions else 0.55)


def _blob_evidence(f: ScreenReplayFeatures) -> float:
    """0..1 from the strongest moiré blob (ordinary photos stay below about 3.2 and 2.2)."""
    off_axis = (f.blob - 3.3) / 1.7
    on_axis = (f.axis_blob - 2.2) / 1.5
    return float(np.clip(max(off_axis, on_axis), 0.0, 1.0))


def _banding_evidence(f: ScreenReplayFeatures) -> float:
    """0..1 from how regular the bands are (ordinary photos stay below about 0.3 of the
    slow row change) and how deep (under 2 % they are invisible: a gradient's 8-bit steps)."""
    regular = float(np.clip((f.banding_share - 0.3) / 0.25, 0.0, 1.0))
    return regular * float(np.clip((f.band_depth - 0.02) / 0.04, 0.0, 1.0))


def _signals(
    f: ScreenReplayFeatures, grid: float, bands: float, *, sharp: bool
) -> list[MediaSignal]:
    signals = []
    strength: Strength | None = graded(grid, 0.6, 0.3, 0.1)
    if strength:
        if not sharp:
            detail = (
                "Fine moiré covers the picture, as when a camera's pixels beat against a "
                "display's pixel grid."
            )
        elif f.two_directions:
            detail = (
                "A fine pattern repeats across the picture in two directions (moiré from a "
                "display's pixel grid)."
            )
        else:
            detail = (
                "A fine stripe pattern repeats in one direction, as a display's pixels can; "
                "blinds, fabric or lines of print do this too."
            )
        signals.append(MediaSignal(kind="screen_replay", strength=strength, detail=detail))
    strength = graded(bands, 0.6, 0.3, 0.1)
    if strength:
        detail = (
            f"Even horizontal bands repeat every {f.band_period_px:.0f} pixels, as when a "
            "camera catches a screen refreshing."
        )
        signals.append(MediaSignal(kind="screen_replay", strength=strength, detail=detail))
    if f.bezel:
        detail = (
            f"A bright rectangle with a dark rim fills {f.bezel:.0%} of the frame, "
            "like a screen in its bezel."
        )
        signals.append(MediaSignal(kind="screen_replay", strength="weak", detail=detail))
    if f.glare and (signals or f.bezel):
        detail = "A patch of glare sits on it, as on glass."
        signals.append(MediaSignal(kind="screen_replay", strength="weak", detail=detail))
    for signal in signals:
        signal.source = "pixels"
    return signals


def screen_replay_score(image: np.ndarray) -> ScreenReplayResult:
    """How much ``image`` (uint8 BGR or greyscale) looks like a photo of a screen."""
    t0 = time.perf_counter()
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 64:
        raise ValueError("screen_replay_score needs a uint8 image at least 64 pixels on a side")
    features = measure(image)
    peaks, blobs = _peak_evidence(features), _blob_evidence(features)
    grid = max(peaks, blobs)
    bands = _banding_evidence(features)
    # Independent cues combine like probabilities of "not a screen".
    rest = (1 - grid) * (1 - 0.9 * bands)
    rest *= (1 - 0.15 * (features.bezel > 0)) * (1 - 0.1 * (features.glare > 0))
    score = float(np.clip(1 - rest, 0.0, 1.0))
    level: Level = graded(score, 0.6, 0.35, 0.15) or "none"
    signals = _signals(features, grid, bands, sharp=peaks >= blobs)
    warning = None
    if score >= WARN_SCORE:
        warning = (
            "This may be a picture of a screen rather than the scene itself: "
            + signals[0].detail[0].lower()
            + signals[0].detail[1:]
        )
    return ScreenReplayResult(
        score=round(score, 3),
        level=level,
        signals=signals,
        warning=warning,
        features=features,
        elapsed_ms=round((time.perf_counter() - t0) * 1000, 2),
    )


class ScreenReplayWatch:
    """Decides when the live loop should warn: most recent keyframes agree, not too often.

    Call :meth:`update` with each keyframe; it returns a sentence to say when at
    least ``needed`` of the last ``window`` keyframes scored ``WARN_SCORE`` or
    more, and then stays quiet for ``quiet_s`` seconds.
    """

    def __init__(self, *, window: int = 3, needed: int = 2, quiet_s: float = 60.0) -> None:
        self.needed = needed
        self.quiet_s = quiet_s
        self._recent: deque[bool] = deque(maxlen=window)
        self._last_warning = -float("inf")
        self.last: ScreenReplayResult | None = None

    def update(self, image: np.ndarray, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        self.last = screen_replay_score(image)
        self._recent.append(self.last.score >= WARN_SCORE)
        if sum(self._recent) >= self.needed and now - self._last_warning >= self.quiet_s:
            self._last_warning = now
            return self.last.warning
        return None
