"""Camera frames of a screen, and ordinary photographs, for the screen-replay check.

There is no camera here, so a "photographed screen" is simulated the way the
light takes: the picture is drawn on a display made of pixels, each three
coloured subpixel stripes with black gaps between them; a camera at a slight
angle resamples that display through a perspective warp, lens blur, sensor
noise and JPEG. Resampling a fine periodic grid at the camera's pixel pitch is
what produces real aliasing moiré, so the frames carry the same physics a real
photograph of a screen does. Variants add rolling-shutter refresh banding, a
bezel with the room around it, and glare.

Ordinary photographs are scikit-image's sample photos, cropped or scaled to a
camera frame, with JPEG re-encodes, blur and noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import skimage.data

FRAME = (640, 480)
"""Camera frame size (width, height)."""

PHOTOS = [
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "coins",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "brick",
    "grass",
    "gravel",
    "moon",
    "page",
    "text",
    "clock",
    "colorwheel",
    "cell",
]


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as uint8 BGR."""
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2BGR)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def fit_frame(
    image: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = FRAME
) -> np.ndarray:
    """Scale ``image`` to cover ``size`` and cut a random window of that size out of it."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h) * rng.uniform(1.0, 1.25)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(
        image, (max(width, round(w * scale)), max(height, round(h * scale))), interpolation=interp
    )
    y = int(rng.integers(0, scaled.shape[0] - height + 1))
    x = int(rng.integers(0, scaled.shape[1] - width + 1))
    return np.ascontiguousarray(scaled[y : y + height, x : x + width])


def ordinary_photo(name: str, rng: np.random.Generator) -> np.ndarray:
    """A camera-sized frame of a sample photo, with the usual camera processing."""
    frame = fit_frame(photo(name), rng)
    if rng.random() < 0.4:
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.5:
        noise = rng.normal(0, rng.uniform(1, 5), frame.shape)
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    return jpeg(frame, int(rng.integers(50, 96)))


@dataclass(frozen=True)
class ScreenShot:
    """How a simulated screen photograph is taken."""

    subpixel: int = 1
    """Width of one subpixel stripe in the rendered display, in its own pixels."""
    pitch: float = 2.0
    """How many camera pixels one display pixel covers (1-3: the grid aliases into moiré)."""
    screen_fraction: float = 1.0
    """How much of the frame's width the screen fills (1.0: the screen fills the frame)."""
    angle: float = 2.0
    """Rotation of the screen in the frame, degrees."""
    tilt: float = 0.03
    """Perspective: how much the far edge shrinks, as a fraction of the size."""
    blur: float = 0.7
    """Lens blur (Gaussian sigma) in camera pixels."""
    banding: float = 0.0
    """Depth of rolling-shutter refresh bands (0: none, 0.15: clearly visible)."""
    band_period: float = 60.0
    """Period of the refresh bands in camera pixels."""
    glare: float = 0.0
    """Strength of a specular highlight (0: none, 1: saturated)."""
    noise: float = 3.0
    quality: int = 85


def render_display(content: np.ndarray, shot: ScreenShot, pixels: tuple[int, int]) -> np.ndarray:
    """``content`` shown on a display of ``pixels`` (width, height), as float light levels.

    Each display pixel becomes a cell of R, G and B stripes ``shot.subpixel`` wide,
    left to right, with a black gap after them and a black row below: the layout
    of an LCD. Lit stripes are brighter than the pixel so the cell's average light
    is the pixel's colour (values above 255 are fine: the camera's exposure and
    blur bring them back).
    """
    width, height = pixels
    shown = cv2.resize(content, (width, height), interpolation=cv2.INTER_AREA)
    s = shot.subpixel
    gap = max(1, s // 2)
    cell_w, cell_h = 3 * s + gap, 3 * s + gap
    mask = np.zeros((cell_h, cell_w, 3), np.float32)
    for stripe, bgr_index in enumerate((2, 1, 0)):  # R, G, B stripes left to right
        mask[: cell_h - gap, stripe * s : (stripe + 1) * s, bgr_index] = 1.0
    mask /= mask[:, :, 0].mean()
    size = (width * cell_w, height * cell_h)
    big = cv2.resize(shown, size, interpolation=cv2.INTER_NEAREST).astype(np.float32)
    big *= np.tile(mask, (height, width, 1))
    return big


def screen_photo(
    content: np.ndarray,
    shot: ScreenShot,
    rng: np.random.Generator,
    *,
    room: np.ndarray | None = None,
    size: tuple[int, int] = FRAME,
) -> np.ndarray:
    """A camera frame of ``content`` shown on a screen, taken as ``shot`` says."""
    width, height = size
    screen_w = width * shot.screen_fraction
    pitch = shot.pitch
    if shot.screen_fraction >= 1.0:
        screen_w = width * 1.15  # the screen overfills the frame
    pixels = (max(8, round(screen_w / pitch)), max(6, round(screen_w / pitch * 0.75)))
    display = render_display(content, shot, pixels)
    dh, dw = display.shape[:2]

    # Where the display's corners land in the frame: centred, scaled, rotated, tilted.
    sw = screen_w
    sh = sw * dh / dw
    cx, cy = (
        width / 2 + rng.uniform(-0.05, 0.05) * width,
        height / 2 + rng.uniform(-0.05, 0.05) * height,
    )
    t = shot.tilt
    corners = np.array(
        [
            [-sw / 2 * (1 - t), -sh / 2],
            [sw / 2 * (1 - t), -sh / 2],
            [sw / 2, sh / 2],
            [-sw / 2, sh / 2],
        ],
        np.float32,
    )
    a = np.deg2rad(shot.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], np.float32)
    dst = corners @ rot.T + np.array([cx, cy], np.float32)
    src = np.array([[0, 0], [dw, 0], [dw, dh], [0, dh]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)

    if room is None:
        frame_bg = np.zeros((height, width, 3), np.float32)
    else:
        frame_bg = cv2.GaussianBlur(fit_frame(room, rng, size).astype(np.float32) * 0.6, (0, 0), 2)
    # Lens blur acts before sampling: blur the display by the blur in display pixels.
    scale = np.sqrt(abs(np.linalg.det(matrix[:2, :2])))
    pre_sigma = shot.blur / max(scale, 1e-3)
    display = cv2.GaussianBlur(display, (0, 0), pre_sigma)
    warped = cv2.warpPerspective(display, matrix, size, flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(
        np.ones((dh, dw), np.float32), matrix, size, flags=cv2.INTER_LINEAR
    )
    if room is not None:
        # A bezel: a dark frame a few percent wide around the panel.
        bezel_dst = (dst - [cx, cy]) * 1.06 + [cx, cy]
        cv2.fillConvexPoly(frame_bg, bezel_dst.astype(np.int32), (18, 18, 20), cv2.LINE_AA)
    frame = frame_bg * (1 - inside[..., None]) + warped * inside[..., None]

    if shot.banding > 0:
        rows = np.arange(height, dtype=np.float32)
        phase = rng.uniform(0, 2 * np.pi)
        bands = 1 + shot.banding * np.sin(2 * np.pi * rows / shot.band_period + phase)
        frame = frame * (1 + (bands[:, None, None] - 1) * inside[..., None])
    if shot.glare > 0:
        gx, gy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        spot = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (0.08 * width) ** 2))
        frame = frame + 255 * shot.glare * spot[..., None] * inside[..., None]
    frame = frame + rng.normal(0, shot.noise, frame.shape)
    return jpeg(np.clip(frame, 0, 255).astype(np.uint8), shot.quality)


def grid_contrast(shot: ScreenShot) -> float:
    """How much of the display grid's contrast survives the lens blur (0..1).

    The grid's fundamental has a period of ``pitch`` camera pixels; a Gaussian
    blur of sigma ``blur`` keeps exp(-2 pi^2 sigma^2 f^2) of it. Below about
    0.05 no detector can see the grid: the photo is as smooth as an ordinary one.
    """
    return float(np.exp(-2 * np.pi**2 * shot.blur**2 / shot.pitch**2))


def random_shot(rng: np.random.Generator, *, min_contrast: float = 0.0) -> ScreenShot:
    """A plausible hand-held photo of a screen (one whose grid keeps ``min_contrast``)."""
    shot = _random_shot(rng)
    while grid_contrast(shot) < min_contrast:
        shot = _random_shot(rng)
    return shot


def _random_shot(rng: np.random.Generator) -> ScreenShot:
    banding = float(rng.uniform(0.05, 0.2)) if rng.random() < 0.35 else 0.0
    return ScreenShot(
        pitch=float(rng.uniform(1.2, 3.5)),
        screen_fraction=1.0 if rng.random() < 0.5 else float(rng.uniform(0.6, 0.9)),
        angle=float(rng.uniform(-6, 6)),
        tilt=float(rng.uniform(0.0, 0.08)),
        blur=float(rng.uniform(0.4, 1.2)),
        banding=banding,
        band_period=float(rng.uniform(25, 120)),
        glare=float(rng.uniform(0.3, 0.9)) if rng.random() < 0.25 else 0.0,
        noise=float(rng.uniform(1, 5)),
        quality=int(rng.integers(60, 95)),
    )


def labelled_frames(
    contents: list[str], rooms: list[str], seed: int, per_content: int = 2
) -> Iterator[tuple[str, bool, np.ndarray]]:
    """(description, is_screen, frame) for screens showing ``contents`` and those photos as-is."""
    rng = np.random.default_rng(seed)
    for name in contents:
        for k in range(per_content):
            shot = random_shot(rng)
            room = photo(rooms[(k + len(name)) % len(rooms)]) if shot.screen_fraction < 1 else None
            yield (
                f"screen showing {name} #{k}",
                True,
                screen_photo(photo(name), shot, rng, room=room),
            )
            yield f"photo {name} #{k}", False, ordinary_photo(name, rng)
