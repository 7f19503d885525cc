"""The memory store on disk (Chroma embedded) and as a server, with the offline fallbacks.

Pictures are scikit-image's photographs, variations and crops of them, and
generated scenes; queries are resized and JPEG re-encoded copies.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from heron.agent.errors import HeronError, ToolArgumentsError
from heron.memory.embedders import LexicalTextEmbedder, PerceptualImageEmbedder
from heron.memory.records import FrameInput, MemoryStoreError, TextInput
from heron.memory.store import MemoryStore
from heron.memory.timefilter import TimeRange, parse_when, split_when
from tests.conftest import need

PHOTOS = [
    "astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "moon",
    "page", "retina", "rocket", "text",
]  # fmt: skip


def photo(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)


def variations(image: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Other views of a photo: crops, flips, turns, shifted colour and light."""
    h, w = image.shape[:2]
    out = []
    for _ in range(8):
        fraction = rng.uniform(0.45, 0.8)
        ch, cw = int(h * fraction), int(w * fraction)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        out.append(image[y : y + ch, x : x + cw])
    out += [cv2.flip(image, 1), cv2.flip(image, 0), cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)]
    tint = np.array([0.7, 1.0, 1.2]) * rng.uniform(0.9, 1.1, 3)  # a warm colour cast
    out.append(np.clip(image * tint, 0, 255).astype(np.uint8))
    out.append(cv2.convertScaleAbs(image, alpha=0.5, beta=0))
    out.append(cv2.GaussianBlur(image, (0, 0), 0.06 * max(h, w)))  # out of focus
    return out


def scene(rng: np.random.Generator) -> np.ndarray:
    """A generated room-like view: a gradient wall, a floor, furniture-like boxes, a lamp."""
    h, w = 240, 320
    wall = rng.integers(60, 230, 3)
    ramp = np.linspace(0.6, 1.1, w)[None, :, None]
    image = np.clip(wall[None, None, :] * ramp * np.ones((h, w, 1)), 0, 255).astype(np.uint8)
    floor = int(rng.integers(140, 200))
    image[floor:] = rng.integers(20, 160, 3)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(40, h - 40))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.rectangle(image, (x0, y0), (x0 + int(rng.integers(20, 120)), h - 1), color, -1)
    center = (int(rng.integers(20, w - 20)), int(rng.integers(10, 80)))
    cv2.circle(image, center, int(rng.integers(6, 20)), (250, 250, 250), -1)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def reencode(image: np.ndarray, scale: float, quality: int) -> np.ndarray:
    h, w = image.shape[:2]
    small = cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def fallback_store(folder: Path, client: object = None) -> MemoryStore:
    return MemoryStore(
        folder,
        image_embedder=PerceptualImageEmbedder(),
        text_embedder=LexicalTextEmbedder(),
        client=client,
    )


@pytest.fixture(scope="module")
def library() -> dict[str, np.ndarray]:
    """About 420 pictures: 20 photos, 15 variations of each, 100 generated scenes."""
    rng = np.random.default_rng(7)
    pictures: dict[str, np.ndarray] = {}
    for name in PHOTOS:
        pictures[name] = photo(name)
        for k, variant in enumerate(variations(pictures[name], rng)):
            pictures[f"{name}~{k}"] = np.ascontiguousarray(variant)
    for k in range(100):
        pictures[f"scene{k}"] = scene(rng)
    return pictures


def test_the_perceptual_fallback_finds_the_same_photo_again(
    tmp_path: Path, library: dict[str, np.ndarray]
) -> None:
    store = fallback_store(tmp_path)
    frames = [FrameInput(img, source=name, kind="photo") for name, img in library.items()]
    kept = store.remember_frames(frames, dedupe=False)
    assert store.frames.count() == len(library) >= 400
    ids = {name: k.id for name, k in zip(library, kept, strict=True)}
    rng = np.random.default_rng(1)
    queries = [*PHOTOS, *(f"scene{k}" for k in range(0, 100, 10))]
    for name in queries:
        for scale, quality in ((0.5, 70), (0.37, 40), (1.6, 85)):
            query = reencode(library[name], scale, quality)
            hits = store.recall_image(query, limit=3)
            assert hits and hits[0].id == ids[name], (name, scale, [h.source for h in hits])
            assert hits[0].score > 0.95
    # a picture it never saw is not "found"
    unseen = scene(rng)
    assert all(h.score < 0.96 for h in store.recall_image(unseen, limit=3))
    store.close()


def test_near_duplicate_frames_are_stored_once(tmp_path: Path) -> None:
    store = fallback_store(tmp_path)
    view = photo("coffee")
    first = store.remember_frames([FrameInput(view, t=1000.0)])
    again = store.remember_frames(
        [FrameInput(reencode(view, 0.5, 60), t=2000.0), FrameInput(photo("rocket"), t=2000.0)]
    )
    assert first[0].stored and not again[0].stored and again[0].duplicate_of == first[0].id
    assert again[1].stored
    assert store.frames.count() == 2
    # the kept one now says when it was last seen
    (hit,) = store.recall_image(view, limit=1)
    assert hit.t == 2000.0
    # also while the first is still being written (pipelined ingest)
    clock = photo("clock")
    (written,) = store.remember_frames([FrameInput(clock)], wait=False)
    (again_now,) = store.remember_frames([FrameInput(reencode(clock, 0.5, 60))], wait=False)
    assert again_now.duplicate_of == written.id
    store.flush()
    assert store.frames.count() == 3
    store.close()


def test_the_lexical_fallback_finds_notes_by_their_words(tmp_path: Path) -> None:
    store = fallback_store(tmp_path)
    store.remember_texts(
        [
            TextInput("my keys are on the shelf by the door"),
            TextInput("the letter from Acme Bank says the card expires in March", kind="turn"),
            TextInput("buy milk and bread on the way home"),
            TextInput("the plant needs water every Sunday"),
        ]
    )
    (keys, *rest) = store.recall_text("where did I leave my keys?")
    assert "keys" in keys.text and all("keys" not in r.text for r in rest)
    (letter, *_) = store.recall_text("what did the bank letter say")
    assert letter.kind == "turn" and "Acme" in letter.text
    assert store.recall_text("quantum chromodynamics") == []
    store.close()


def test_time_filters(tmp_path: Path) -> None:
    now = datetime(2026, 11, 22, 15, 0).astimezone()
    morning = parse_when("this morning", now)
    assert morning.since == datetime(2026, 11, 22, 5, 0).astimezone().timestamp()
    assert morning.until == datetime(2026, 11, 22, 12, 0).astimezone().timestamp()
    assert parse_when("since 10am", now) == TimeRange(
        datetime(2026, 11, 22, 10, 0).astimezone().timestamp(), None
    )
    assert (
        parse_when("before 2026-11-20", now).until
        == datetime(2026, 11, 20).astimezone().timestamp()
    )
    assert parse_when("last 2 hours", now).since == (now - timedelta(hours=2)).timestamp()
    question, when = split_when("what was the name on that letter this morning?", now)
    assert question == "what was the name on that letter ?" and when == morning
    with pytest.raises(ToolArgumentsError, match="cannot tell the time"):
        parse_when("when pigs fly", now)

    store = fallback_store(tmp_path)
    t_morning = datetime(2026, 11, 22, 9, 0).astimezone().timestamp()
    t_yesterday = t_morning - 86400
    store.remember_texts(
        [
            TextInput("letter from the tax office", t=t_yesterday),
            TextInput("letter from grandma", t=t_morning),
        ]
    )
    found = store.recall_text("letter", when=morning)
    assert [m.text for m in found] == ["letter from grandma"]
    found = store.recall_text("letter", when=parse_when("yesterday", now))
    assert [m.text for m in found] == ["letter from the tax office"]
    store.close()


def test_forget_removes_vectors_and_files(tmp_path: Path) -> None:
    store = fallback_store(tmp_path)
    old, new = time.time() - 7200, time.time()
    a, b, c = store.remember_frames(
        [
            FrameInput(photo("astronaut"), t=old, text="NASA badge"),
            FrameInput(photo("coffee"), t=new, labels=["cup"]),
            FrameInput(photo("rocket"), t=new),
        ]
    )
    note = store.remember_texts([TextInput("remember the rocket", t=new, frame_id=c.id)])[0]
    # pictures are kept in the memory folder and written out as files when recalled
    thumbs = {k.id: Path(store.recall_image(photo(n))[0].thumbnail or "") for k, n in
              ((a, "astronaut"), (b, "coffee"), (c, "rocket"))}  # fmt: skip
    assert all(p.is_file() and p.parent == tmp_path / "thumbs" for p in thumbs.values())
    assert store.pictures.totals()[0] == 3

    assert store.forget(ids=[a.id]) == 1
    assert not thumbs[a.id].exists() and thumbs[b.id].exists()
    assert store.pictures.get(a.id) is None and store.pictures.get(b.id) is not None
    assert store.frames.get(ids=[a.id])["ids"] == []
    assert store.texts.get(where={"frame_id": a.id})["ids"] == []  # its text too
    assert store.recall_image(photo("astronaut")) == []

    assert store.forget(when=TimeRange(new - 1, None)) == 3  # coffee, rocket, the note
    assert store.frames.count() == 0 and store.texts.count() == 0
    assert not any(p.exists() for p in thumbs.values())
    assert store.pictures.totals() == (0, 0)
    assert store.texts.get(ids=[note])["ids"] == []

    store.remember_frames([FrameInput(photo("clock"))])
    assert store.recall_image(photo("clock"))[0].thumbnail  # written out
    assert store.forget(everything=True) == 1
    assert list((tmp_path / "thumbs").iterdir()) == [] and store.pictures.totals() == (0, 0)
    cached = store.db.run(lambda c: c.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
    assert cached == 0
    store.close()


CHILD = textwrap.dedent(
    """
    import sys, json
    import cv2
    from pathlib import Path
    from heron.memory.embedders import LexicalTextEmbedder, PerceptualImageEmbedder
    from heron.memory.records import FrameInput, TextInput
    from heron.memory.store import MemoryStore

    folder, step = Path(sys.argv[1]), sys.argv[2]
    store = MemoryStore(folder, image_embedder=PerceptualImageEmbedder(),
                        text_embedder=LexicalTextEmbedder())
    if step == "write":
        image = cv2.imread(sys.argv[3])
        (kept,) = store.remember_frames([FrameInput(image, source="door")])
        store.remember_texts([TextInput("my keys are on the shelf")])
        print(kept.id)
    else:
        image = cv2.imread(sys.argv[3])
        hits = store.recall_image(image)
        notes = store.recall_text("keys")
        print(json.dumps([hits[0].id, Path(hits[0].thumbnail).is_file(), notes[0].text]))
    """
)


def test_memories_persist_across_process_restarts(tmp_path: Path) -> None:
    picture = tmp_path / "door.jpg"
    cv2.imwrite(str(picture), photo("astronaut"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    run = [sys.executable, "-c", CHILD, str(tmp_path / "memory")]
    wrote = subprocess.run([*run, "write", str(picture)], capture_output=True, text=True, env=env)
    assert wrote.returncode == 0, wrote.stderr
    read = subprocess.run([*run, "read", str(picture)], capture_output=True, text=True, env=env)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == f'["{wrote.stdout.strip()}", true, "my keys are on the shelf"]'


def test_a_store_made_with_another_embedder_is_reindexed_not_mixed(tmp_path: Path) -> None:
    class Coarse(PerceptualImageEmbedder):
        """Another image embedder: a different name and dimension."""

        name = "coarse-test-v1"
        space = "coarse-test-v1"
        FREQS = 6
        dim = FREQS * FREQS - 1 + PerceptualImageEmbedder.GRID**2 * 2 + 2

    first = MemoryStore(tmp_path, image_embedder=Coarse(), text_embedder=LexicalTextEmbedder())
    first.remember_frames([FrameInput(photo(n)) for n in ("astronaut", "coffee", "rocket")])
    first.close()

    second = fallback_store(tmp_path)
    assert second.frames.count() == 0  # nothing of the other embedder's leaks in
    assert second.pending_reindex() == {"heron-frames-coarse-test-v1": 3}
    seen: list[str] = []
    added = second.reindex(progress=lambda items, what: seen.append(what) or items)
    assert added == 3 and seen == ["re-indexing heron-frames-coarse-test-v1"]
    assert second.frames.metadata["embedder"] == PerceptualImageEmbedder.name
    assert second.recall_image(photo("coffee"))[0].score > 0.99
    assert second.pending_reindex() == {}

    # a collection under our name with other vectors in it is refused, not written to
    second.client.delete_collection(second.texts.name)
    second.client.create_collection(
        second.texts.name, embedding_function=None, metadata={"embedder": "other", "dim": 3}
    )
    second.close()
    with pytest.raises(MemoryStoreError, match="holds vectors of embedder 'other'"):
        fallback_store(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if chroma is None:
        need("the `chroma` command (shipped with chromadb) is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("chroma run did not start listening within 30 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_chroma_server_behaves_like_the_embedded_store(
    tmp_path: Path, chroma_server: str
) -> None:
    from heron.memory.store import connect

    results = []
    for client in (None, connect(tmp_path, chroma_server)):
        folder = tmp_path / ("server" if client else "embedded")
        store = fallback_store(folder, client)
        kept = store.remember_frames(
            [FrameInput(photo(n), t=1000.0 + i, source=n) for i, n in enumerate(PHOTOS[:8])]
        )
        store.remember_texts([TextInput("my keys are on the shelf", t=2000.0)])
        image_hit = store.recall_image(reencode(photo("coffee"), 0.5, 60))[0]
        text_hit = store.recall_text("keys")[0]
        in_range = store.recall_text("keys", when=TimeRange(None, 1500.0))
        forgot = store.forget(ids=[kept[0].id])
        results.append(
            (image_hit.source, round(image_hit.score, 3), text_hit.text, in_range, forgot,
             store.frames.count(), store.stats()["kinds"])
        )  # fmt: skip
        store.forget(everything=True)
        store.close()
    assert results[0] == results[1]
    assert results[0][0] == "coffee"


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    from heron.memory.store import connect

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HeronError, match="cannot reach the Chroma server") as info:
        connect(tmp_path, url)
    assert isinstance(info.value, MemoryStoreError) and info.value.retryable
