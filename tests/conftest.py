"""Shared fixtures: real devices (PulseAudio), the bundled Whisper model, test data.

When something a test needs is missing the test is skipped with the reason, except
under CI (``CI=true``), where a missing part is a failure: CI installs everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pulse import VirtualAudio, ensure_virtual_audio

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
STRICT = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(reason: str) -> None:
    """Skip (locally) or fail (in CI) because a required part is missing."""
    if STRICT:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def virtual_audio() -> VirtualAudio:
    result = ensure_virtual_audio()
    if isinstance(result, str):
        need(result)
    assert isinstance(result, VirtualAudio)
    return result


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture()
def heron_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated data folder and no VLM/OpenAI settings leaking in from outside."""
    for key in list(os.environ):
        if key.startswith("HERON_") or key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HERON_DATA_DIR", str(tmp_path / "heron-data"))
    # memory is on by default; tests of other parts run without it (tests/test_memory*.py
    # turn it on), so their tool lists and timings stay what they check
    monkeypatch.setenv("HERON_MEMORY_ENABLED", "false")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
