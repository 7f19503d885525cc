"""Opening the memory from heron's settings: CLIP when its weights are here, else fallbacks."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from heron.agent.config import MemoryConfig, Settings

from .clip import ClipImageEmbedder, ClipModel, ClipTextEmbedder, find_clip_model
from .embedders import ImageEmbedder, LexicalTextEmbedder, PerceptualImageEmbedder, TextEmbedder
from .store import MemoryStore

log = logging.getLogger(__name__)

_said: set[str] = set()
_said_lock = threading.Lock()


@dataclass(frozen=True)
class Embedders:
    image: ImageEmbedder
    text: TextEmbedder
    notice: str | None = None
    """Why the fallbacks are in use (None with CLIP)."""


def _model_name(model: str) -> str:
    return Path(model).name if Path(model).expanduser().is_dir() else model.split("/")[-1]


def choose_embedders(config: MemoryConfig) -> Embedders:
    """CLIP from the configured folder or Hugging Face cache, or the named fallbacks.

    The reason for a fallback is logged once per process and returned as
    ``notice`` so a command can print it.
    """
    found = find_clip_model(config.model, download=config.download_model)
    if not isinstance(found, str):
        model = ClipModel(found, name=_model_name(config.model), batch_size=config.batch_size)
        return Embedders(ClipImageEmbedder(model), ClipTextEmbedder(model))
    notice = (
        f"CLIP is not available: {found}. Memory uses the offline fallbacks "
        f"'{PerceptualImageEmbedder.name}' (finds the same view again) and "
        f"'{LexicalTextEmbedder.name}' (finds shared words); text cannot find pictures "
        "by what they show. Set HERON_MEMORY_MODEL to a CLIP ONNX folder, or "
        "HERON_MEMORY_DOWNLOAD_MODEL=true to fetch it."
    )
    with _said_lock:
        if notice not in _said:
            _said.add(notice)
            log.info(notice)
    return Embedders(PerceptualImageEmbedder(), LexicalTextEmbedder(), notice)


def memory_folder(settings: Settings) -> Path:
    return Path(settings.memory.path or Path(settings.data_dir) / "memory").expanduser()


def open_memory(settings: Settings, embedders: Embedders | None = None) -> MemoryStore:
    """The memory store these settings describe (raises MemoryStoreError)."""
    chosen = embedders or choose_embedders(settings.memory)
    return MemoryStore(
        memory_folder(settings),
        image_embedder=chosen.image,
        text_embedder=chosen.text,
        server_url=settings.memory.server_url,
        thumbnail_side=settings.memory.thumbnail_side,
    )
