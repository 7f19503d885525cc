"""The memory store: Chroma collections of heron's own embeddings, and the kept pictures.

Chroma runs embedded (``PersistentClient`` on a folder) or as a server
(``HttpClient``), which is how several sessions or machines share one memory.
heron always hands Chroma its own vectors: Chroma's default embedding function
would download a model.

Each embedder fills its own collections, named after it and recording its name,
space and dimension in their metadata: ``heron-frames-<embedder>`` holds pictures
(camera keyframes, indexed photos), ``heron-texts-<embedder>`` notes, turns and
the text read in pictures. Vectors of different embedders are never mixed; when
the embedder changes, :meth:`MemoryStore.reindex` embeds what the others hold
into the new collections. Thumbnails and the local cache stay in the memory
folder, next to the embedded store.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np

from .cache import EmbeddingCache, IndexedFiles, LocalDB, Thumbnails, content_hash
from .embedders import ImageEmbedder, TextEmbedder
from .records import FrameInput, Memory, MemoryStoreError, Remembered, TextInput, iso_time
from .timefilter import TimeRange

log = logging.getLogger(__name__)

PREFIX = "heron-"
ANY_TIME = TimeRange()
Hit = tuple[str, float, dict[str, Any], str | None]
"""(id, cosine similarity, metadata, document) of one search result."""
Progress = Callable[[Sequence[Any], str], Any]
"""Wraps an iterable to show progress (e.g. ``lambda items, what: tqdm(items, desc=what)``)."""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _chroma_error(exc: Exception, where: str) -> MemoryStoreError:
    return MemoryStoreError(f"memory store: {where} failed: {type(exc).__name__}: {exc}")


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise MemoryStoreError(f"cannot encode a thumbnail of shape {image.shape}")
    return data.tobytes()


def connect(folder: Path, server_url: str | None) -> Any:
    """A Chroma client: a server when a URL is given, else the embedded store in ``folder``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if server_url:
        url = urlparse(server_url if "://" in server_url else f"http://{server_url}")
        if not url.hostname:
            raise MemoryStoreError(f"memory server URL {server_url!r} has no host")
        try:
            return chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=settings,
            )
        except Exception as exc:
            raise MemoryStoreError(
                f"cannot reach the Chroma server at {server_url} ({exc}); start it with "
                "`chroma run --path DIR --port PORT` or unset HERON_MEMORY_SERVER_URL",
                retryable=True,
            ) from None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return chromadb.PersistentClient(path=str(folder / "chroma"), settings=settings)
    except Exception as exc:
        raise _chroma_error(exc, f"opening {folder / 'chroma'}") from None


class MemoryStore:
    """Remember pictures and texts; recall them by text or by image; forget them."""

    def __init__(
        self,
        folder: Path,
        *,
        image_embedder: ImageEmbedder,
        text_embedder: TextEmbedder,
        server_url: str | None = None,
        thumbnail_side: int = 320,
        client: Any = None,
    ) -> None:
        self.folder = Path(folder)
        self.thumbs = self.folder / "thumbs"
        self.thumbs.mkdir(parents=True, exist_ok=True)
        self.image_embedder = image_embedder
        self.text_embedder = text_embedder
        self.server_url = server_url
        self.thumbnail_side = thumbnail_side
        self.client = client if client is not None else connect(self.folder, server_url)
        self.db = LocalDB(self.folder / "local.sqlite")
        self.cache = EmbeddingCache(self.db)
        self.files = IndexedFiles(self.db)
        self.pictures = Thumbnails(self.db, self.thumbs)
        self.embed_seconds = 0.0
        """Time spent inside the embedders (model time), for benchmarks."""
        self._lock = threading.Lock()
        self._io = ThreadPoolExecutor(max_workers=2, thread_name_prefix="heron-thumbs")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heron-memory")
        self._inflight: Future[None] | None = None
        self._pending: tuple[list[str], np.ndarray] | None = None
        """Ids and vectors of the frames being written (near-duplicates are checked there too)."""
        self.frames = self._collection(
            "frames", image_embedder.name, image_embedder.space, image_embedder.dim
        )
        self.texts = self._collection(
            "texts", text_embedder.name, text_embedder.space, text_embedder.dim
        )

    # collections

    def _collection(self, kind: str, embedder: str, space: str, dim: int) -> Any:
        name = f"{PREFIX}{kind}-{_slug(embedder)}"
        wanted = {"embedder": embedder, "space": space, "dim": dim, "kind": kind}
        try:
            collection = self.client.get_or_create_collection(
                name,
                embedding_function=None,
                metadata=wanted,
                configuration={"hnsw": {"space": "cosine"}},
            )
        except Exception as exc:
            raise _chroma_error(exc, f"opening collection {name}") from None
        found = collection.metadata or {}
        if found.get("embedder") != embedder or int(found.get("dim", -1)) != dim:
            raise MemoryStoreError(
                f"collection {name} holds vectors of embedder {found.get('embedder')!r} "
                f"(dimension {found.get('dim')}), not {embedder!r} (dimension {dim}); "
                "its vectors cannot be mixed with these: remove it or use another memory folder"
            )
        return collection

    def all_collections(self) -> list[Any]:
        """Every heron collection in the store, of any embedder."""
        self.flush()
        try:
            listed = self.client.list_collections()
            names = [c if isinstance(c, str) else c.name for c in listed]
            return [
                self.client.get_collection(n, embedding_function=None)
                for n in names
                if n.startswith(PREFIX)
            ]
        except Exception as exc:
            raise _chroma_error(exc, "listing collections") from None

    # remembering

    def thumbnail(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        scale = self.thumbnail_side / max(h, w)
        if scale >= 1:
            return image
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def _embed_images(
        self, images: list[np.ndarray], hashes: list[str], *, keep: bool = True
    ) -> np.ndarray:
        def compute(batch: list[np.ndarray]) -> np.ndarray:
            t0 = time.perf_counter()
            try:
                return self.image_embedder.embed_images(batch)
            finally:
                self.embed_seconds += time.perf_counter() - t0

        return self.cache.embed(self.image_embedder.name, images, hashes, compute, disk=keep)

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self.text_embedder.embed_texts(texts)
        finally:
            self.embed_seconds += time.perf_counter() - t0

    def remember_frames(
        self,
        frames: Sequence[FrameInput],
        *,
        dedupe: bool = True,
        wait: bool = True,
        on_stored: Callable[[list[Remembered]], None] | None = None,
    ) -> list[Remembered]:
        """Store pictures (thumbnail, vector, text, labels, time); near-duplicates once.

        With ``dedupe`` a frame as similar as the embedder's ``duplicate`` threshold
        to one already stored (or earlier in the batch) is not stored again: the
        stored one's ``t_last`` moves to the new time instead.

        With ``wait=False`` the batch is written to Chroma on a writer thread while
        the caller prepares the next one (Chroma spends much of a write waiting on
        the disk): the next call waits for that write, every search waits for it,
        and :meth:`flush` waits on purpose. ``on_stored`` runs once it is written.
        """
        if not frames:
            return []
        from .embedders import to_bgr

        thumbs = [self.thumbnail(to_bgr(f.image)) for f in frames]
        hashes = [content_hash(t) for t in thumbs]
        ids = [f.id or f"{f.kind}-{h}" for f, h in zip(frames, hashes, strict=True)]
        vectors = self._embed_images(thumbs, hashes)
        duplicate_of: list[str | None] = [None] * len(frames)
        with self._lock:
            if dedupe:
                try:
                    self._find_duplicates(vectors, ids, frames, duplicate_of)
                except Exception as exc:
                    raise _chroma_error(exc, "looking for near-duplicates") from None
            first_of: dict[str, int] = {}
            for i, id_ in enumerate(ids):  # the same picture twice in one batch: stored once
                if duplicate_of[i] is None and first_of.setdefault(id_, i) != i:
                    duplicate_of[i] = id_
            keep = [i for i, d in enumerate(duplicate_of) if d is None]
            metadatas = [self._frame_metadata(frames[i], ids[i], hashes[i]) for i in keep]
            worded = self._prepare_texts(
                [
                    TextInput(
                        text=" ".join([frames[i].text, *frames[i].labels]).strip(),
                        kind="frame_text",
                        t=frames[i].t,
                        session=frames[i].session,
                        frame_id=ids[i],
                        id=f"text-{ids[i]}",
                    )
                    for i in keep
                    if frames[i].text or frames[i].labels
                ]
            )
            results = [Remembered(ids[i], d is None, d) for i, d in enumerate(duplicate_of)]
            kept_ids, kept_vectors = [ids[i] for i in keep], vectors[keep]
            kept_thumbs = [thumbs[i] for i in keep]

            def write() -> None:
                # JPEG encoding releases the GIL: thumbnails are encoded while Chroma stores
                jpegs = [self._io.submit(_jpeg, t) for t in kept_thumbs]
                try:
                    if kept_ids:
                        # ids are content hashes: an id already stored is the same picture,
                        # which add (cheaper than upsert) leaves as it is
                        store = self.frames.add if dedupe else self.frames.upsert
                        store(ids=kept_ids, embeddings=kept_vectors, metadatas=metadatas)
                    self._upsert_texts(*worded)
                except Exception as exc:
                    raise _chroma_error(exc, "storing frames") from None
                self.pictures.put_many(
                    [(i, j.result()) for i, j in zip(kept_ids, jpegs, strict=True)]
                )
                if on_stored is not None:
                    on_stored(results)

            self.flush()
            self._pending = (kept_ids, kept_vectors)
            self._inflight = self._writer.submit(write)
        if wait:
            self.flush()
        return results

    def flush(self) -> None:
        """Wait for the frames being written; raise MemoryStoreError if that failed."""
        inflight = self._inflight
        if inflight is None:
            return
        try:
            inflight.result()
        finally:
            if self._inflight is inflight:
                self._inflight, self._pending = None, None

    def _frame_metadata(self, f: FrameInput, id_: str, digest: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "kind": f.kind,
            "t": float(f.t),
            "t_last": float(f.t),
            "session": f.session,
            "hash": digest,
            "source": f.source,
        }
        if f.labels:
            meta["labels"] = ",".join(f.labels)
        if f.text:
            meta["text"] = f.text[:2000]
        return meta

    def _find_duplicates(
        self,
        vectors: np.ndarray,
        ids: list[str],
        frames: Sequence[FrameInput],
        duplicate_of: list[str | None],
    ) -> None:
        limit = self.image_embedder.duplicate
        n = len(ids)
        # one query for the whole batch (on an empty collection it finds no neighbours)
        found = self.frames.query(
            query_embeddings=vectors, n_results=1, include=["distances", "metadatas"]
        )
        seen_again: dict[str, dict[str, Any]] = {}
        for i in range(n):
            if found["ids"][i] and 1.0 - found["distances"][i][0] >= limit:
                kept = duplicate_of[i] = found["ids"][i][0]
                meta = seen_again.get(kept) or dict(found["metadatas"][i][0])
                meta["t_last"] = max(float(meta.get("t_last", 0.0)), float(frames[i].t))
                seen_again[kept] = meta
        if seen_again:  # one call: each call to Chroma costs milliseconds on its own
            self.frames.update(ids=list(seen_again), metadatas=list(seen_again.values()))
        pending = self._pending
        if pending is not None and len(pending[0]):  # the batch still being written
            against = vectors @ pending[1].T
            for i in range(n):
                j = int(np.argmax(against[i]))
                if duplicate_of[i] is None and against[i, j] >= limit:
                    duplicate_of[i] = pending[0][j]
        sims = vectors @ vectors.T
        for i in range(n):
            if duplicate_of[i] is not None:
                continue
            for j in range(i):
                if duplicate_of[j] is None and (ids[j] == ids[i] or sims[i, j] >= limit):
                    duplicate_of[i] = ids[j]
                    break

    def remember_texts(self, items: Sequence[TextInput]) -> list[str]:
        """Store notes, turns or the text of pictures; returns their ids."""
        prepared = self._prepare_texts(items)
        try:
            self._upsert_texts(*prepared)
        except Exception as exc:
            raise _chroma_error(exc, "storing texts") from None
        return prepared[0]

    def _prepare_texts(
        self, items: Sequence[TextInput]
    ) -> tuple[list[str], np.ndarray, list[dict[str, Any]], list[str]]:
        items = [item for item in items if item.text.strip()]
        if not items:
            return [], np.zeros((0, 0), np.float32), [], []
        vectors = self._embed_texts([item.text for item in items])
        ids = [item.id or f"{item.kind}-{uuid.uuid4().hex[:16]}" for item in items]
        metadatas = []
        for item in items:
            meta: dict[str, Any] = {
                "kind": item.kind,
                "t": float(item.t),
                "t_last": float(item.t),
                "session": item.session,
            }
            if item.frame_id:
                meta["frame_id"] = item.frame_id
            metadatas.append(meta)
        return ids, vectors, metadatas, [item.text for item in items]

    def _upsert_texts(
        self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]], docs: list[str]
    ) -> None:
        if ids:
            self.texts.upsert(ids=ids, embeddings=vectors, metadatas=metadatas, documents=docs)

    # recalling

    @staticmethod
    def _where(when: TimeRange, kinds: Sequence[str] | None, field: str = "t_last") -> Any:
        """Chroma's filter for a time range (on ``field``) and kinds, or None."""
        clauses: list[dict[str, Any]] = []
        if when.since is not None:
            clauses.append({field: {"$gte": float(when.since)}})
        if when.until is not None:
            clauses.append({field: {"$lt": float(when.until)}})
        if kinds:
            clauses.append({"kind": {"$in": list(kinds)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    @staticmethod
    def _matches(meta: dict[str, Any], when: TimeRange, kinds: Sequence[str] | None) -> bool:
        t = float(meta.get("t_last", meta.get("t", 0.0)))
        if when.since is not None and t < when.since:
            return False
        if when.until is not None and t >= when.until:
            return False
        return not kinds or meta.get("kind") in kinds

    def _search(
        self,
        collection: Any,
        vector: np.ndarray,
        limit: int,
        floor: float,
        when: TimeRange,
        kinds: Sequence[str] | None,
    ) -> list[Hit]:
        """The best ``limit`` items scoring at least ``floor`` that pass the filters.

        Chroma's own filtered search evaluates the filter on every item (tens of ms
        at 100,000), so the nearest neighbours are fetched unfiltered, a few times
        more than needed, and filtered here. The answer is complete once the last
        neighbour fetched scores below ``floor``; only when it is not, after a
        wider fetch, does Chroma filter.
        """
        self.flush()
        if limit <= 0:
            return []
        # (no count() first: at 100,000 items Chroma's count costs more than the search)
        try:
            if not (when or kinds):
                return [h for h in self._nearest(collection, vector, limit, None) if h[1] >= floor]
            for n in (limit * 10, limit * 80):
                # documents are fetched only for the hits kept: they are the costly part
                hits = self._nearest(collection, vector, n, None, documents=False)
                kept = [h for h in hits if h[1] >= floor and self._matches(h[2], when, kinds)]
                if len(kept) >= limit or len(hits) < n or hits[-1][1] < floor:
                    return self._with_documents(collection, kept[:limit])  # nothing else passes
            hits = self._nearest(collection, vector, limit, self._where(when, kinds))
        except Exception as exc:
            raise _chroma_error(exc, "searching") from None
        return [h for h in hits if h[1] >= floor]

    @staticmethod
    def _nearest(
        collection: Any, vector: np.ndarray, n: int, where: Any, *, documents: bool = True
    ) -> list[Hit]:
        found = collection.query(
            query_embeddings=vector[None, :],
            n_results=n,
            where=where,
            include=["distances", "metadatas", *(["documents"] if documents else [])],
        )
        docs = found.get("documents") or [[None] * len(found["ids"][0])]
        return [
            (i, 1.0 - float(d), dict(m or {}), doc)
            for i, d, m, doc in zip(
                found["ids"][0], found["distances"][0], found["metadatas"][0], docs[0], strict=True
            )
        ]

    @staticmethod
    def _with_documents(collection: Any, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        got = collection.get(ids=[h[0] for h in hits], include=["documents"])
        docs = dict(zip(got["ids"], got.get("documents") or [], strict=False))
        return [(i, score, meta, docs.get(i)) for i, score, meta, _ in hits]

    def _picture(self, id_: str) -> str | None:
        if not id_.startswith(("frame-", "photo-")):
            return None
        path = self.pictures.path(id_)
        return str(path) if path else None

    def _memory(self, id_: str, score: float, meta: dict[str, Any], doc: str | None) -> Memory:
        labels = [x for x in str(meta.get("labels", "")).split(",") if x]
        t = float(meta.get("t_last", meta.get("t", 0.0)))
        return Memory(
            id=id_,
            kind=str(meta.get("kind", "")),
            score=round(score, 4),
            time=iso_time(t),
            t=t,
            text=doc or str(meta.get("text", "")),
            session=str(meta.get("session", "")),
            thumbnail=self._picture(meta.get("frame_id") or id_),
            source=meta.get("source"),
            labels=labels,
        )

    def recall_text(
        self,
        query: str,
        *,
        when: TimeRange = ANY_TIME,
        kinds: Sequence[str] | None = None,
        limit: int = 5,
        min_score: float | None = None,
    ) -> list[Memory]:
        """Memories relevant to ``query``: texts, and pictures when text and images share a space.

        Each hit must reach its embedder's threshold (text→text or text→image; the
        two scales differ), and hits are ranked by how far above it they are.
        """
        vector = self._embed_texts([query])[0]
        text_min = self.text_embedder.text_match if min_score is None else min_score
        scored: list[tuple[float, Memory]] = []
        for id_, score, meta, doc in self._search(
            self.texts, vector, limit * 2, text_min, when, kinds
        ):
            memory = self._memory(id_, score, meta, doc)  # with its picture, if it has one
            scored.append((score - text_min, memory))
        if self.text_embedder.space == self.image_embedder.space:
            cross_min = self.text_embedder.cross_match if min_score is None else min_score
            hits = self._search(self.frames, vector, limit, cross_min, when, kinds)
            scored += [(h[1] - cross_min, self._memory(*h)) for h in hits]
        scored.sort(key=lambda pair: -pair[0])
        seen: set[str] = set()
        out = []
        for _, memory in scored:
            # a picture and the text read in it are one memory; notes and turns stay apart
            key = memory.id.removeprefix("text-") if memory.kind == "frame_text" else memory.id
            if key not in seen:
                seen.add(key)
                out.append(memory)
        return out[:limit]

    def recall_image(
        self,
        image: np.ndarray,
        *,
        when: TimeRange = ANY_TIME,
        kinds: Sequence[str] | None = None,
        limit: int = 5,
        min_score: float | None = None,
    ) -> list[Memory]:
        """Stored pictures most like ``image``, from the embedder's match threshold."""
        from .embedders import to_bgr

        thumb = self.thumbnail(to_bgr(image))
        vector = self._embed_images([thumb], [content_hash(thumb)], keep=False)[0]
        floor = self.image_embedder.image_match if min_score is None else min_score
        hits = self._search(self.frames, vector, limit, floor, when, kinds)
        return [self._memory(*h) for h in hits]

    # forgetting

    def forget(
        self,
        *,
        ids: Sequence[str] | None = None,
        when: TimeRange | None = None,
        everything: bool = False,
    ) -> int:
        """Remove memories (vectors in every collection, thumbnails, cached vectors).

        Exactly one of ``ids``, ``when`` or ``everything``. Returns how many were removed.
        """
        if sum(x is not None and x is not False for x in (ids, when, everything or None)) != 1:
            raise ValueError("forget takes exactly one of ids, when or everything")
        if when is not None and not when:
            raise MemoryStoreError("a time range to forget needs a start or an end")
        with self._lock:
            if everything:
                return self._forget_everything()
            removed: set[str] = set()
            hashes: set[str] = set()
            for collection in self.all_collections():
                try:
                    if ids is not None:
                        found = collection.get(ids=list(ids), include=["metadatas"])
                        # the text read in a forgotten picture goes with it; notes stay
                        linked = collection.get(
                            where={
                                "$and": [
                                    {"frame_id": {"$in": list(ids)}},
                                    {"kind": "frame_text"},
                                ]
                            },
                            include=["metadatas"],
                        )
                        found["ids"] += linked["ids"]
                        found["metadatas"] += linked["metadatas"]
                    else:
                        assert when is not None  # first or last seen in the range
                        where = {"$or": [self._where(when, None, f) for f in ("t", "t_last")]}
                        found = collection.get(where=where, include=["metadatas"])
                    if found["ids"]:
                        collection.delete(ids=list(dict.fromkeys(found["ids"])))
                except Exception as exc:
                    raise _chroma_error(exc, "forgetting") from None
                removed.update(i for i in found["ids"] if not i.startswith("text-"))
                for meta in found["metadatas"]:
                    if meta and meta.get("hash"):
                        hashes.add(str(meta["hash"]))
            self.pictures.forget(removed)
            self.cache.forget(hashes)
            self.files.forget(removed)
            return len(removed)

    def _forget_everything(self) -> int:
        count = 0
        for collection in self.all_collections():
            try:
                count += (
                    collection.count()
                    if "frames" in collection.name
                    else sum(
                        1 for i in collection.get(include=[])["ids"] if not i.startswith("text-")
                    )
                )
                self.client.delete_collection(collection.name)
            except Exception as exc:
                raise _chroma_error(exc, "forgetting everything") from None
        self.pictures.forget(None)
        self.cache.forget(None)
        self.files.forget(None)
        self.frames = self._collection(
            "frames", self.image_embedder.name, self.image_embedder.space, self.image_embedder.dim
        )
        self.texts = self._collection(
            "texts", self.text_embedder.name, self.text_embedder.space, self.text_embedder.dim
        )
        return count

    # housekeeping

    def stats(self) -> dict[str, Any]:
        """Counts per collection (every embedder), by kind, and the folder's size on disk."""
        collections = {}
        for collection in self.all_collections():
            meta = collection.metadata or {}
            collections[collection.name] = {
                "items": collection.count(),
                "embedder": meta.get("embedder"),
                "dim": meta.get("dim"),
                "active": collection.name in (self.frames.name, self.texts.name),
            }
        kinds: dict[str, int] = {}
        for collection in (self.frames, self.texts):
            for meta in collection.get(include=["metadatas"])["metadatas"]:
                kind = str((meta or {}).get("kind", "?"))
                kinds[kind] = kinds.get(kind, 0) + 1
        pictures, picture_bytes = self.pictures.totals()
        return {
            "store": self.server_url or str(self.folder / "chroma"),
            "image_embedder": self.image_embedder.name,
            "text_embedder": self.text_embedder.name,
            "kinds": kinds,
            "collections": collections,
            "thumbnails": pictures,
            "thumbnail_bytes": picture_bytes,
        }

    def pending_reindex(self) -> dict[str, int]:
        """Items in other embedders' collections that the active ones lack, by collection."""
        pending = {}
        for collection in self.all_collections():
            if collection.name in (self.frames.name, self.texts.name):
                continue
            target = self.frames if "-frames-" in collection.name else self.texts
            ids = collection.get(include=[])["ids"]
            have = set(target.get(ids=ids, include=[])["ids"]) if ids else set()
            if len(ids) > len(have):
                pending[collection.name] = len(ids) - len(have)
        return pending

    def reindex(self, progress: Progress | None = None, batch: int = 64) -> int:
        """Embed what other embedders' collections hold into the active ones.

        Pictures are embedded again from their thumbnails, texts from their words;
        items already present are skipped, so an interrupted re-index resumes.
        Returns how many items were added.
        """
        added = 0
        for collection in self.all_collections():
            if collection.name in (self.frames.name, self.texts.name):
                continue
            pictures = "-frames-" in collection.name
            target = self.frames if pictures else self.texts
            got = collection.get(include=["metadatas", "documents"])
            ids = got["ids"]
            have = set(target.get(ids=ids, include=[])["ids"]) if ids else set()
            todo = [k for k, i in enumerate(ids) if i not in have]
            starts: Sequence[int] = range(0, len(todo), batch)
            if progress is not None and todo:
                starts = progress(list(starts), f"re-indexing {collection.name}")
            for start in starts:
                chunk = todo[start : start + batch]
                if pictures:
                    added += self._reindex_pictures(chunk, ids, got["metadatas"])
                else:
                    self.texts.upsert(
                        ids=[ids[k] for k in chunk],
                        embeddings=self._embed_texts([got["documents"][k] or "" for k in chunk]),
                        metadatas=[got["metadatas"][k] for k in chunk],
                        documents=[got["documents"][k] or "" for k in chunk],
                    )
                    added += len(chunk)
        return added

    def _reindex_pictures(self, chunk: list[int], ids: list[str], metas: list[Any]) -> int:
        images, keep = [], []
        for k in chunk:
            data = self.pictures.get(ids[k])
            image = None if data is None else cv2.imdecode(np.frombuffer(data, np.uint8), 1)
            if image is None:
                log.warning("cannot re-index %s: its thumbnail is missing", ids[k])
                continue
            images.append(image)
            keep.append(k)
        if not keep:
            return 0
        vectors = self._embed_images(images, [str(metas[k]["hash"]) for k in keep])
        self.frames.upsert(
            ids=[ids[k] for k in keep], embeddings=vectors, metadatas=[metas[k] for k in keep]
        )
        return len(keep)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._writer.shutdown(wait=True)
            self._io.shutdown(wait=True)
        self.db.close()
