"""The ``heron`` command, run as a user runs it: a subprocess of the installed script."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO
from tests.support.words import words

HERON = [sys.executable, "-m", "heron.agent.cli"]
JFK = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def heron(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HERON, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=os.getcwd(),
    )


def transcribe(path: Path) -> str:
    from heron.agent.stt import Transcriber

    return Transcriber().transcribe_file(path).text


def test_help_explains_the_commands(heron_env: Path) -> None:
    result = heron("--help")
    assert result.returncode == 0
    for command in ("live", "run", "transcribe", "devices", "demo"):
        assert command in result.stdout
    assert "HERON_VLM_BASE_URL" in result.stdout
    live = heron("live", "--help")
    assert "--resume" in live.stdout and "--camera" in live.stdout


def test_the_console_script_is_installed() -> None:
    script = shutil.which("heron", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: heron" in result.stdout


def test_transcribe_gives_the_reference_words(heron_env: Path, data_dir: Path) -> None:
    result = heron("transcribe", str(data_dir / "jfk.flac"))
    assert result.returncode == 0, result.stderr
    assert words(result.stdout) == words(JFK)


def test_transcribe_an_empty_file_is_a_clear_error(heron_env: Path) -> None:
    empty = heron_env / "empty.wav"
    empty.write_bytes(b"")
    result = heron("transcribe", str(empty))
    assert result.returncode == 2
    assert "empty.wav" in result.stderr and "Traceback" not in result.stderr


def test_run_the_example_scenario(heron_env: Path) -> None:
    out = heron_env / "out"
    result = heron(
        "run", str(REPO / "examples" / "scripted_session" / "scenario.toml"), "--out", str(out)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = (out / "transcript.txt").read_text().splitlines()
    assert lines[0].startswith("# Station and fridge") and "offline" in lines[0]
    assert lines[1:] == [
        "[00:02.0] user: Please read the sign.",
        "[00:02.0] heron: It says: PLATFORM 2. TRAINS TO OXFORD.",
        "[00:06.0] user: What does it say?",
        "[00:06.0] heron: It says: PLATFORM 2. TRAINS TO OXFORD.",
        "[00:12.0] user: Read the label for me, please.",
        "[00:12.0] heron: It says: MILK. BEST BEFORE 28 NOV.",
    ]
    audio, rate = sf.read(out / "replies.wav", dtype="float32")
    assert len(audio) / rate > 5.0
    heard = words(transcribe(out / "reply_03.wav"))
    assert {"milk", "best", "before"} <= set(heard)
    per_turn = sorted(p.name for p in out.glob("reply_*.wav"))
    assert per_turn == ["reply_01.wav", "reply_02.wav", "reply_03.wav"]


def test_the_example_script_is_a_regression_test(heron_env: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "scripted_session.py"),
            "--out",
            str(heron_env / "example"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TRAINS TO OXFORD" in result.stdout


def test_a_scenario_whose_reply_misses_the_expected_words_fails(heron_env: Path) -> None:
    source = REPO / "examples" / "scripted_session"
    scenario = heron_env / "scenario.toml"
    scenario.write_text(
        f'name = "wrong expectation"\n[camera]\n'
        f'images = [{{ at = 0.0, path = "{source}/label.jpg" }}]\n'
        '[[turns]]\nat = 0.0\ntext = "read this"\nexpect = ["orange", "juice"]\n'
    )
    result = heron("run", str(scenario))
    assert result.returncode == 1
    assert "missing orange, juice" in result.stderr


def test_main_job_without_devices_runs_the_demo_offline_and_says_so(heron_env: Path) -> None:
    result = heron(env={"HERON_CAMERA_SOURCE": "7"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No camera" in result.stdout and "offline" in result.stdout
    assert "heron: It says: LIBRARY. OPENS AT 9 AM." in result.stdout
    assert re.search(r"heron: Mostly [a-z ]+", result.stdout)  # colours, found offline
    assert "HERON_VLM_BASE_URL" in result.stdout  # what only a model can answer


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name = 1\n", "turns"),
        ('name = "x"\n[[turns]]\nat = 1\n', "exactly one of 'audio' or 'text'"),
        ('name = "x"\n[[turns]]\nat = 1\naudio = "nowhere.wav"\n', "files not found: nowhere.wav"),
        ("name = [unclosed\n", "not valid TOML"),
    ],
)
def test_bad_scenario_files_are_clear_errors(heron_env: Path, content: str, message: str) -> None:
    scenario = heron_env / "bad.toml"
    scenario.write_text(content)
    result = heron("run", str(scenario))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_corrupt_image_in_a_scenario_is_a_clear_error(heron_env: Path) -> None:
    (heron_env / "broken.jpg").write_bytes(os.urandom(2048))
    scenario = heron_env / "s.toml"
    scenario.write_text(
        'name = "x"\n[camera]\nimages = [{ at = 0.0, path = "broken.jpg" }]\n'
        '[[turns]]\nat = 0\ntext = "read this"\n'
    )
    result = heron("run", str(scenario))
    assert result.returncode == 2
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr


def test_an_empty_audio_turn_is_reported_and_the_run_goes_on(heron_env: Path) -> None:
    source = REPO / "examples" / "scripted_session"
    (heron_env / "silent.wav").write_bytes(b"")
    sf.write(heron_env / "quiet.wav", np.zeros(16000, np.float32), 16000)
    scenario = heron_env / "s.toml"
    scenario.write_text(
        f'name = "x"\n[camera]\nimages = [{{ at = 0.0, path = "{source}/label.jpg" }}]\n'
        '[[turns]]\nat = 0\naudio = "silent.wav"\n'
        '[[turns]]\nat = 1\naudio = "quiet.wav"\n'
        '[[turns]]\nat = 2\ntext = "read this"\n'
    )
    out = heron_env / "out"
    result = heron("run", str(scenario), "--out", str(out))
    assert result.returncode == 1
    transcript = (out / "transcript.txt").read_text()
    assert "silent.wav" in transcript and "error" in transcript
    assert "user: (nothing heard)" in transcript
    assert "heron: It says: MILK" in transcript


def test_a_wrong_setting_stops_with_the_key(heron_env: Path) -> None:
    result = heron("devices", env={"HERON_TTS_RATE": "fast"})
    assert result.returncode == 2
    assert "HERON_TTS_RATE" in result.stderr and "'fast'" in result.stderr


def test_devices_lists_audio_devices(heron_env: Path) -> None:
    result = heron("devices")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cameras:")
    assert "audio devices:" in result.stdout
