"""Local bookkeeping of the memory: an embedding cache, the kept pictures, indexed files.

All live in one SQLite file in the memory folder (``<memory>/local.sqlite``), also
when the vectors themselves are on a Chroma server, because they describe this
machine: which frames it has embedded and kept, which files of a folder it has read.

- :class:`EmbeddingCache` maps (embedder, content hash) to the vector, with a small
  in-memory layer in front, so the same frame is never embedded twice, not even
  after a restart or when a folder is indexed again.
- :class:`Thumbnails` keeps the pictures (JPEG) by memory id.
- :class:`IndexedFiles` maps a path with its size and modification time to the
  memory it became, so an interrupted ``heron memory index`` resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    embedder TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (embedder, hash)
);
CREATE TABLE IF NOT EXISTS thumbs (id TEXT PRIMARY KEY, jpeg BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, item_id TEXT
);
"""


def content_hash(data: bytes | np.ndarray) -> str:
    """A short, stable hash of bytes or of an array's shape and pixels."""
    h = hashlib.sha256()  # the fastest here: CPUs hash SHA-256 in hardware
    if isinstance(data, np.ndarray):
        h.update(repr((data.shape, str(data.dtype))).encode())
        data = np.ascontiguousarray(data).tobytes()
    h.update(data)
    return h.hexdigest()[:24]


class LocalDB:
    """One SQLite connection shared by threads, each statement under a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return fn(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class EmbeddingCache:
    """Vectors by (embedder, content hash): memory first, then disk."""

    def __init__(self, db: LocalDB, *, memory_items: int = 4096) -> None:
        self.db = db
        self.memory_items = memory_items
        self._recent: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _remember(self, key: tuple[str, str], vector: np.ndarray) -> None:
        self._recent[key] = vector
        self._recent.move_to_end(key)
        while len(self._recent) > self.memory_items:
            self._recent.popitem(last=False)

    def get_many(
        self, embedder: str, hashes: Sequence[str], *, disk: bool = True
    ) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        missing = []
        for h in hashes:
            vector = self._recent.get((embedder, h))
            if vector is not None:
                found[h] = vector
            else:
                missing.append(h)
        if not disk:
            missing = []
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT hash, vector FROM vectors WHERE embedder=? AND hash IN ({marks})"
            params = [embedder, *chunk]
            rows: list[tuple[str, bytes]] = self.db.run(
                lambda c, sql=sql, params=params: c.execute(sql, params).fetchall()  # type: ignore[misc]
            )
            for h, blob in rows:
                vector = np.frombuffer(blob, np.float32)
                found[h] = vector
                self._remember((embedder, h), vector)
        self.hits += len(found)
        self.misses += len(hashes) - len(found)
        return found

    def put_many(
        self, embedder: str, items: Iterable[tuple[str, np.ndarray]], *, disk: bool = True
    ) -> None:
        rows = []
        for h, vector in items:
            vector = np.ascontiguousarray(vector, np.float32)
            self._remember((embedder, h), vector)
            rows.append((embedder, h, vector.tobytes()))
        if not disk:
            return
        self.db.run(
            lambda c: c.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
        )

    def embed(
        self,
        embedder: str,
        items: Sequence[T],
        hashes: Sequence[str],
        compute: Callable[[list[T]], np.ndarray],
        *,
        disk: bool = True,
    ) -> np.ndarray:
        """Vectors for ``items``: cached ones looked up, the rest computed in one batch.

        With ``disk=False`` only the in-memory layer is used (queries: a disk write
        per search would cost more than it saves).
        """
        known = self.get_many(embedder, hashes, disk=disk)
        todo = [i for i, h in enumerate(hashes) if h not in known]
        if todo:
            # the same content twice in one batch is computed once
            first: dict[str, int] = {}
            for i in todo:
                first.setdefault(hashes[i], i)
            order = list(first.values())
            vectors = compute([items[i] for i in order])
            fresh = {hashes[i]: vectors[k] for k, i in enumerate(order)}
            self.put_many(embedder, fresh.items(), disk=disk)
            known.update(fresh)
        return np.stack([known[h] for h in hashes]) if hashes else np.zeros((0, 0), np.float32)

    def forget(self, hashes: Iterable[str] | None = None) -> None:
        """Drop the vectors of these contents (of every embedder), or all of them."""
        if hashes is None:
            self._recent.clear()
            self.db.run(lambda c: c.execute("DELETE FROM vectors"))
            return
        wanted = set(hashes)
        for key in [k for k in self._recent if k[1] in wanted]:
            del self._recent[key]
        self.db.run(
            lambda c: c.executemany("DELETE FROM vectors WHERE hash=?", [(h,) for h in wanted])
        )


class Thumbnails:
    """The kept pictures, as JPEG bytes by memory id.

    One SQLite write per batch instead of one file per picture: creating a file
    costs more than encoding the JPEG. A picture is written out as a file in
    ``folder`` when it is recalled, so that it can be opened.
    """

    def __init__(self, db: LocalDB, folder: Path) -> None:
        self.db = db
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        rows = list(items)
        self.db.run(lambda c: c.executemany("INSERT OR REPLACE INTO thumbs VALUES (?, ?)", rows))

    def get(self, id_: str) -> bytes | None:
        row = self.db.run(
            lambda c: c.execute("SELECT jpeg FROM thumbs WHERE id=?", (id_,)).fetchone()
        )
        return bytes(row[0]) if row else None

    def path(self, id_: str) -> Path | None:
        """A file holding the picture of memory ``id_`` (written now if needed), or None."""
        path = self.folder / f"{id_}.jpg"
        if path.is_file():
            return path
        data = self.get(id_)
        if data is None:
            return None
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def forget(self, ids: Iterable[str] | None = None) -> None:
        if ids is None:
            self.db.run(lambda c: c.execute("DELETE FROM thumbs"))
            for path in self.folder.glob("*.jpg"):
                path.unlink(missing_ok=True)
            return
        wanted = list(ids)
        self.db.run(
            lambda c: c.executemany("DELETE FROM thumbs WHERE id=?", [(i,) for i in wanted])
        )
        for id_ in wanted:
            (self.folder / f"{id_}.jpg").unlink(missing_ok=True)

    def totals(self) -> tuple[int, int]:
        """How many pictures are kept, and their bytes."""
        row = self.db.run(
            lambda c: c.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(jpeg)), 0) FROM thumbs"
            ).fetchone()
        )
        return int(row[0]), int(row[1])


class IndexedFiles:
    """Which files have been indexed, by path, size and modification time."""

    def __init__(self, db: LocalDB) -> None:
        self.db = db

    def known(self, paths: Sequence[Path]) -> set[str]:
        """The paths among ``paths`` indexed before and unchanged since."""
        rows = self.db.run(lambda c: c.execute("SELECT path, size, mtime_ns FROM files").fetchall())
        seen = {path: (size, mtime) for path, size, mtime in rows}
        unchanged = set()
        for path in paths:
            stat = path.stat()
            if seen.get(str(path)) == (stat.st_size, stat.st_mtime_ns):
                unchanged.add(str(path))
        return unchanged

    def mark(self, entries: Sequence[tuple[Path, str | None]]) -> None:
        rows = []
        for path, item_id in entries:
            stat = path.stat()
            rows.append((str(path), stat.st_size, stat.st_mtime_ns, item_id))
        self.db.run(
            lambda c: c.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)
        )

    def forget(self, item_ids: Iterable[str] | None = None) -> None:
        if item_ids is None:
            self.db.run(lambda c: c.execute("DELETE FROM files"))
            return
        ids = [(i,) for i in item_ids]
        self.db.run(lambda c: c.executemany("DELETE FROM files WHERE item_id=?", ids))
