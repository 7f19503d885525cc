"""CLIP on the CPU with ONNX Runtime and the ``tokenizers`` package (no PyTorch).

A CLIP model is two ONNX graphs, as Hugging Face's ONNX exports lay them out
(``Xenova/clip-vit-base-patch32``, the default, or any folder shaped the same):

- the vision tower: input ``pixel_values`` (N, 3, H, W) float32, output ``image_embeds``;
- the text tower: inputs ``input_ids`` (and ``attention_mask`` when the graph has
  it) int64, output ``text_embeds``;
- ``tokenizer.json`` and, optionally, ``preprocessor_config.json`` (input size, mean, std).

:func:`find_clip_model` looks in a folder, or in the Hugging Face cache for a repo
id, and downloads only when asked to. :class:`ClipModel` loads both towers on
first use and embeds in batches; :class:`ClipImageEmbedder` and
:class:`ClipTextEmbedder` are its two halves, sharing one embedding space.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from heron.agent.errors import ModelError

from .embedders import normalize_rows, to_bgr

log = logging.getLogger(__name__)

VISION_FILES = ("vision_model.onnx", "onnx/vision_model.onnx", "visual.onnx")
TEXT_FILES = ("text_model.onnx", "onnx/text_model.onnx", "textual.onnx")
HUB_FILES = [
    "onnx/vision_model.onnx",
    "onnx/text_model.onnx",
    "tokenizer.json",
    "preprocessor_config.json",
]
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_TOKENS = 77


@dataclass(frozen=True)
class ClipFiles:
    vision: Path
    text: Path
    tokenizer: Path
    preprocessor: Path | None


def _first(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def clip_files_in(folder: Path) -> ClipFiles | None:
    """The model files in ``folder``, or None when any required one is missing."""
    vision, text = _first(folder, VISION_FILES), _first(folder, TEXT_FILES)
    tokenizer = _first(folder, ("tokenizer.json",))
    if vision is None or text is None or tokenizer is None:
        return None
    return ClipFiles(vision, text, tokenizer, _first(folder, ("preprocessor_config.json",)))


def find_clip_model(model: str, *, download: bool = False) -> ClipFiles | str:
    """The files of ``model`` (a folder or a Hugging Face repo id), or why they are absent."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        found = clip_files_in(folder)
        return found or f"{folder} lacks a vision_model.onnx, text_model.onnx or tokenizer.json"
    if folder.is_absolute() or model.startswith((".", "~")):
        return f"the CLIP model folder {folder} does not exist"
    try:
        from huggingface_hub import snapshot_download

        snapshot = snapshot_download(model, allow_patterns=HUB_FILES, local_files_only=not download)
    except Exception as exc:
        where = "could not be downloaded" if download else "is not in the Hugging Face cache"
        return f"the CLIP model {model} {where} ({type(exc).__name__})"
    found = clip_files_in(Path(snapshot))
    return found or f"the cached CLIP model {model} is incomplete ({snapshot})"


class ClipModel:
    """Both CLIP towers, loaded lazily, thread-safe, batched."""

    def __init__(self, files: ClipFiles, *, name: str, batch_size: int = 32) -> None:
        self.files = files
        self.name = name
        self.batch_size = batch_size
        self.size = 224
        self.mean = np.array(CLIP_MEAN, np.float32)
        self.std = np.array(CLIP_STD, np.float32)
        if files.preprocessor is not None:
            self._read_preprocessor(files.preprocessor)
        self._vision: Any = None
        self._text: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.dim = 0
        self.model_calls = 0
        """How many times a tower ran (each call embeds one batch)."""

    def _read_preprocessor(self, path: Path) -> None:
        config = json.loads(path.read_text())
        crop: Any = config.get("crop_size", config.get("size", 224))
        if isinstance(crop, dict):
            crop = crop.get("height", crop.get("shortest_edge", 224))
        self.size = int(crop or 224)
        self.mean = np.array(config.get("image_mean", CLIP_MEAN), np.float32)
        self.std = np.array(config.get("image_std", CLIP_STD), np.float32)

    def load(self) -> None:
        with self._lock:
            if self._vision is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                options = ort.SessionOptions()
                options.log_severity_level = 3
                providers = ["CPUExecutionProvider"]
                vision = ort.InferenceSession(str(self.files.vision), options, providers=providers)
                text = ort.InferenceSession(str(self.files.text), options, providers=providers)
                tokenizer = Tokenizer.from_file(str(self.files.tokenizer))
            except Exception as exc:
                raise ModelError(
                    f"cannot load CLIP {self.name}: {type(exc).__name__}: {exc}"
                ) from exc
            tokenizer.enable_truncation(MAX_TOKENS)
            self._vision, self._text, self._tokenizer = vision, text, tokenizer
            self.dim = int(
                self._embed_pixels(self._pixels([np.zeros((8, 8, 3), np.uint8)])).shape[1]
            )

    def _output(self, session: Any, preferred: str) -> str:
        names = [o.name for o in session.get_outputs()]
        return preferred if preferred in names else names[0]

    def _pixels(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """CLIP's preprocessing: shortest side to ``size`` (bicubic), centre crop, normalise."""
        batch = np.empty((len(images), 3, self.size, self.size), np.float32)
        for i, image in enumerate(images):
            rgb = cv2.cvtColor(to_bgr(image), cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            scale = self.size / min(h, w)
            nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
            rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_CUBIC)
            top, left = (nh - self.size) // 2, (nw - self.size) // 2
            crop = rgb[top : top + self.size, left : left + self.size].astype(np.float32) / 255.0
            batch[i] = ((crop - self.mean) / self.std).transpose(2, 0, 1)
        return batch

    def _embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        self.model_calls += 1
        out = self._vision.run(
            [self._output(self._vision, "image_embeds")], {"pixel_values": pixels}
        )
        return normalize_rows(out[0])

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self.load()
        parts = [
            self._embed_pixels(self._pixels(images[i : i + self.batch_size]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        parts = []
        inputs = {i.name for i in self._text.get_inputs()}
        for start in range(0, len(texts), self.batch_size):
            encodings = [self._tokenizer.encode(t) for t in texts[start : start + self.batch_size]]
            length = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), length), np.int64)
            mask = np.zeros((len(encodings), length), np.int64)
            for row, enc in enumerate(encodings):
                # padding repeats the end token: CLIP pools at the first end-of-text token
                pad = enc.ids[-1] if enc.ids else 0
                ids[row] = enc.ids + [pad] * (length - len(enc.ids))
                mask[row, : len(enc.ids)] = 1
            feed = {"input_ids": ids}
            if "attention_mask" in inputs:
                feed["attention_mask"] = mask
            self.model_calls += 1
            out = self._text.run([self._output(self._text, "text_embeds")], feed)
            parts.append(normalize_rows(out[0]))
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)


class ClipImageEmbedder:
    """The image half of a CLIP model."""

    image_match = 0.85
    duplicate = 0.95

    def __init__(self, model: ClipModel) -> None:
        self.model = model
        self.name = f"clip-{model.name}-image"
        self.space = f"clip-{model.name}"

    @property
    def dim(self) -> int:
        self.model.load()
        return self.model.dim

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.model.embed_images(images)


class ClipTextEmbedder:
    """The text half of a CLIP model: texts find texts, and images in the same space."""

    text_match = 0.80
    cross_match = 0.22

    def __init__(self, model: ClipModel) -> None:
        self.model = model
        self.name = f"clip-{model.name}-text"
        self.space = f"clip-{model.name}"

    @property
    def dim(self) -> int:
        self.model.load()
        return self.model.dim

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.embed_texts(texts)
