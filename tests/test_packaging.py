"""The distribution installs as ``heron.*`` only, from a wheel as from the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def build_wheel(out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("heron-*.whl")
    return wheel


def test_the_wheel_holds_only_the_heron_namespace(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert top == {
        "heron",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    for package in ("agent", "tools", "memory"):
        assert f"heron/{package}/__init__.py" in names
    assert "heron/agent/data/demo/scenario.toml" in names
    assert "heron/agent/data/demo/sign.jpg" in names
    assert not any(name.startswith(("tests/", "examples/", "bench/")) for name in names)


def test_the_wheel_imports_the_same_way(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import heron.agent.cli, heron.tools.ocr, heron.memory.session_log, sys;"
        "from heron.agent.cli import demo_scenario_path;"
        "print(heron.agent.cli.__file__); print(demo_scenario_path().is_file())"
    )
    # -S keeps the checkout's editable install out: only the extracted wheel and the
    # dependencies' site-packages are importable
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path[:0] = [{str(site)!r}, {deps!r}]; {code}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    where, demo = result.stdout.split()
    assert where.startswith(str(site)) and demo == "True"


def test_nothing_named_agent_tools_or_memory_is_importable_at_top_level() -> None:
    code = (
        "import importlib.util as u;"
        "print([n for n in ('agent', 'tools', 'memory') if u.find_spec(n) is not None])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_no_pytorch_in_the_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "show", "torch"], capture_output=True, text=True
    )
    assert result.returncode != 0, "torch is installed: heron's dependency tree must not pull it"
