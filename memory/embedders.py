"""Embedders: images and text to unit vectors, and the offline fallbacks.

An embedder turns a batch of inputs into an ``(n, dim)`` float32 array of unit
vectors, so cosine similarity is a dot product. Each has a ``name`` recorded in
the collections it fills (vectors of different embedders are never mixed) and a
``space``: a text embedder and an image embedder with the same space (CLIP) can
be compared, so text finds images.

When CLIP is not available heron uses two clearly named fallbacks:

- :class:`PerceptualImageEmbedder` (``perceptual-dct-v1``): the low frequencies of
  the image's DCT (the idea behind pHash) plus a coarse colour layout. It finds
  the same or nearly the same view again after resizing, re-encoding or small
  changes of light; it knows nothing about what is in the picture.
- :class:`LexicalTextEmbedder` (``lexical-hash-v1``): hashed words and character
  trigrams. It finds texts that share words ("keys" finds "my keys are on the
  shelf"), not texts that share meaning.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import ClassVar, Protocol

import cv2
import numpy as np


class ImageEmbedder(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def image_match(self) -> float:
        """Cosine similarity from which an image counts as the same scene (image → image)."""
        ...

    @property
    def duplicate(self) -> float:
        """Cosine similarity from which a new frame is a near-duplicate of a stored one."""
        ...

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


class TextEmbedder(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def space(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def text_match(self) -> float:
        """Cosine similarity from which a text is relevant to a text query."""
        ...

    @property
    def cross_match(self) -> float:
        """Cosine similarity from which an image matches a text query (same space only)."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Greyscale, BGR or BGRA of any numeric type as contiguous uint8 BGR."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"not an image: {getattr(image, 'shape', type(image))}")
    if image.dtype != np.uint8:
        scaled = image * 255.0 if image.dtype.kind == "f" and image.max() <= 1.0 else image
        image = np.clip(scaled, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[:, :, :3])


class PerceptualImageEmbedder:
    """Fallback image embedder: low DCT frequencies of the luminance plus a colour layout."""

    name: ClassVar[str] = "perceptual-dct-v1"
    space: ClassVar[str] = "perceptual-dct-v1"
    image_match: ClassVar[float] = 0.80
    duplicate: ClassVar[float] = 0.96

    SIDE = 32
    """Images are reduced to SIDE×SIDE before the DCT: detail above that is noise here."""
    FREQS = 11
    """The FREQS×FREQS lowest frequencies are kept (the DC term is dropped)."""
    GRID = 4
    """Colour layout: mean chroma (Lab a, b) on a GRID×GRID grid."""
    COLOUR_WEIGHT = 0.5
    LIGHT_WEIGHT = 1.0

    dim: int = FREQS * FREQS - 1 + GRID * GRID * 2 + 2

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        small = cv2.resize(to_bgr(image), (self.SIDE, self.SIDE), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
        freqs = cv2.dct(grey)[: self.FREQS, : self.FREQS].ravel()[1:]
        shape = freqs / max(float(np.linalg.norm(freqs)), 1e-6)
        lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
        grid = cv2.resize(lab[:, :, 1:], (self.GRID, self.GRID), interpolation=cv2.INTER_AREA)
        colour = (grid.ravel() - 128.0) / 128.0  # 0 is grey; saturated colours reach ±1
        # overall light and contrast: the shape part alone cannot tell a view from a darker copy
        light = np.array([grey.mean() - 0.5, grey.std() - 0.25], np.float32)
        vector = np.concatenate([shape, self.COLOUR_WEIGHT * colour, self.LIGHT_WEIGHT * light])
        return vector / max(float(np.linalg.norm(vector)), 1e-6)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.embed_one(image) for image in images]).astype(np.float32)


_STOP_TEXT = (
    "a an the and or but of to in on at by for with from as is are was were be been am "
    "i me my mine you your it its this that these those there here what where when which "
    "who whom how why do does did done have has had can could would should will shall may "
    "might please remember recall forget about see saw seen leave left put"
)
STOP_WORDS = frozenset(_STOP_TEXT.split())
"""Words that say how something is asked, not what it is about."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def content_words(text: str) -> list[str]:
    """Lower-case words of ``text`` without stop words, plural ``s`` trimmed."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.append(word)
    return words


class LexicalTextEmbedder:
    """Fallback text embedder: hashed words and character trigrams, sublinear counts."""

    name: ClassVar[str] = "lexical-hash-v1"
    space: ClassVar[str] = "lexical-hash-v1"
    text_match: ClassVar[float] = 0.30
    cross_match: ClassVar[float] = 2.0  # never: text and images are not in one space here
    dim: int = 1024
    WORD_WEIGHT = 2.0
    """Whole words count more than trigrams: a shared word is the strongest evidence."""

    def _bucket(self, token: str) -> tuple[int, float]:
        h = zlib.crc32(token.encode("utf-8"))
        # the top bit gives a sign, so collisions cancel out on average instead of adding up
        return h % self.dim, 1.0 if h & 0x80000000 else -1.0

    def embed_one(self, text: str) -> np.ndarray:
        counts: dict[int, float] = {}
        for word in content_words(text):
            tokens = [(f"w:{word}", self.WORD_WEIGHT)]
            padded = f" {word} "
            tokens += [(padded[i : i + 3], 1.0) for i in range(len(padded) - 2)]
            for token, weight in tokens:
                index, sign = self._bucket(token)
                counts[index] = counts.get(index, 0.0) + sign * weight
        vector = np.zeros(self.dim, np.float32)
        for index, value in counts.items():
            vector[index] = np.sign(value) * np.log1p(abs(value))
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.embed_one(text) for text in texts]).astype(np.float32)
