"""Indexing a folder of photos into the memory, resumably.

Files are read in batches; each batch is stored and then marked as indexed (by
path, size and modification time), so an interrupted run picks up at the first
batch it had not finished. A file whose content was indexed before under
another name is not embedded again (the embedding cache knows its content).
Files that cannot be read as images are skipped and listed at the end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .cache import content_hash
from .records import FrameInput, Remembered
from .store import MemoryStore

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


@dataclass
class IndexReport:
    found: int = 0
    added: int = 0
    already: int = 0
    """Files indexed by an earlier run and unchanged since."""
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), in a stable order."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found)


def read_image(path: Path) -> tuple[np.ndarray, str]:
    """The decoded image and a hash of the file's bytes; ValueError when unreadable."""
    data = path.read_bytes()
    if not data:
        raise ValueError("empty file")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # some decoders assert instead of returning None
        raise ValueError(f"not a readable image ({exc.err})") from None
    if image is None or image.size == 0:
        raise ValueError("not a readable image")
    return image, content_hash(data)


def _batches(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def index_folder(
    store: MemoryStore,
    folder: Path,
    *,
    batch: int = 32,
    session: str = "",
    progress: Callable[[Iterable[Path], int], Iterable[Path]] | None = None,
) -> IndexReport:
    """Remember every image under ``folder``; skip those indexed before and unchanged.

    ``progress(files, total)`` may wrap the per-file iteration (a progress bar).
    """
    folder = Path(folder).expanduser().resolve()
    files = image_files(folder)
    report = IndexReport(found=len(files))
    known = store.files.known(files)
    todo = [f for f in files if str(f) not in known]
    report.already = len(files) - len(todo)
    stream: Iterable[Path] = progress(todo, len(todo)) if progress else todo
    pending: list[tuple[Path, FrameInput]] = []
    for path in stream:
        try:
            image, digest = read_image(path)
        except (OSError, ValueError) as exc:
            report.unreadable.append((path, str(exc)))  # tried again, and listed, next run
            continue
        frame = FrameInput(
            image,
            t=path.stat().st_mtime,
            session=session,
            kind="photo",
            source=str(path),
            id=f"photo-{digest}",
        )
        pending.append((path, frame))
        if len(pending) >= batch:
            report.added += _flush(store, pending)
    report.added += _flush(store, pending)
    store.flush()
    return report


def _flush(store: MemoryStore, pending: list[tuple[Path, FrameInput]]) -> int:
    if not pending:
        return 0
    paths = [path for path, _ in pending]

    def mark(kept: list[Remembered]) -> None:  # only once Chroma holds them
        store.files.mark([(p, k.id) for p, k in zip(paths, kept, strict=True)])

    # written while the next batch is read and embedded
    kept = store.remember_frames(
        [frame for _, frame in pending], dedupe=False, wait=False, on_stored=mark
    )
    pending.clear()
    return sum(k.stored for k in kept)
