"""``heron memory``: run as a user runs it, on a folder of real photographs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from heron.agent.cli import main
from heron.agent.config import load_settings
from heron.memory.indexer import index_folder
from heron.memory.setup import open_memory

HERON = [sys.executable, "-m", "heron.agent.cli"]
NAMES = ["astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "clock", "colorwheel"]


def heron(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERON, *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


@pytest.fixture()
def photos(heron_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERON_MEMORY_ENABLED", "true")
    monkeypatch.setenv("HERON_MEMORY_MODEL", str(heron_env / "no-clip-here"))
    folder = heron_env / "photos"
    (folder / "trip").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        image = getattr(data, name)()
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.ndim == 3 else cv2.COLOR_GRAY2BGR)
        where = folder / "trip" if i % 2 else folder
        cv2.imwrite(str(where / f"{name}.{'png' if i % 3 == 0 else 'jpg'}"), bgr)
    (folder / "broken.jpg").write_bytes(os.urandom(3000))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_index_search_stats_and_forget(photos: Path, heron_env: Path) -> None:
    first = heron("memory", "index", str(photos))
    assert first.returncode == 0, first.stderr
    assert "10 images" in first.stdout and "8 added" in first.stdout
    assert "2 unreadable" in first.stdout
    assert "broken.jpg" in first.stdout and "empty.png" in first.stdout
    assert first.stderr.count("CLIP is not available") == 1  # said once, named fallbacks
    assert "perceptual-dct-v1" in first.stderr

    again = heron("memory", "index", str(photos))
    assert "0 added, 8 already indexed, 2 unreadable" in again.stdout

    query = heron_env / "query.jpg"
    chelsea = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(query), cv2.resize(chelsea, (200, 133)), [cv2.IMWRITE_JPEG_QUALITY, 50])
    found = heron("memory", "search", "--image", str(query))
    assert found.returncode == 0, found.stderr
    best = found.stdout.splitlines()[0].split()
    assert float(best[0]) > 0.95 and best[-1].endswith("chelsea.jpg")

    stats = heron("memory", "stats")
    assert "photo 8" in stats.stdout and "thumbnails: 8" in stats.stdout

    nothing = heron("memory", "search", "quantum", "physics")
    assert nothing.returncode == 1 and "nothing relevant" in nothing.stdout

    gone = heron("memory", "forget", "--all")
    assert "forgot 8 memories" in gone.stdout
    assert list((heron_env / "heron-data" / "memory" / "thumbs").iterdir()) == []
    store = open_memory(load_settings())
    assert store.stats()["kinds"] == {} and store.files.known(sorted(photos.rglob("*"))) == set()
    assert store.pictures.totals() == (0, 0)
    store.close()


def test_an_interrupted_index_resumes_where_it_stopped(photos: Path) -> None:
    for k in range(40):  # enough files for several batches
        noise = np.random.default_rng(k).integers(0, 255, (60, 80, 3), np.uint8)
        cv2.imwrite(str(photos / f"noise{k:02d}.png"), cv2.resize(noise, (320, 240)))
    store = open_memory(load_settings())
    seen: list[Path] = []

    def interrupt_after_20(files: object, total: int) -> object:
        for path in files:  # type: ignore[attr-defined]
            if len(seen) == 20:
                raise KeyboardInterrupt  # what Ctrl-C raises
            seen.append(path)
            yield path

    with pytest.raises(KeyboardInterrupt):
        index_folder(store, photos, batch=8, progress=interrupt_after_20)  # type: ignore[arg-type]
    store.flush()  # as closing the store does: the batch being written is finished
    assert store.frames.count() == 16  # two full batches were stored and marked
    report = index_folder(store, photos, batch=8)
    assert report.already == 16 and report.added == 48 - 16
    assert store.frames.count() == 48
    store.close()


def test_search_and_forget_need_sensible_arguments(
    photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["memory", "search"]) == 2
    assert "give words to search for" in capsys.readouterr().err
    assert main(["memory", "forget", "--since", "when pigs fly"]) == 2
    assert "cannot tell the time" in capsys.readouterr().err
    assert main(["memory", "index", str(photos / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_an_unreachable_server_is_a_clear_error_on_the_command_line(
    photos: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HERON_MEMORY_SERVER_URL", "http://127.0.0.1:9")
    assert main(["memory", "stats"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Chroma server at http://127.0.0.1:9" in err
    assert "Traceback" not in err
