"""PulseAudio virtual devices for tests: a null sink is the speaker, its monitor the mic.

Audio the test plays into the sink with ``paplay`` is what heron "hears"; what heron
plays to the default output can be recorded back from the monitor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SINK = os.environ.get("HERON_TEST_SINK", "heron")
"""Name of the null sink; separate names keep concurrent test runs from hearing each other."""


@dataclass(frozen=True)
class VirtualAudio:
    sink: str
    monitor: str
    device: str = "pulse"
    """The ALSA/PortAudio device name that routes to PulseAudio's defaults."""

    def play(self, path: str | Path) -> subprocess.Popen[bytes]:
        """Start playing a sound file into the virtual speaker (the mic hears it)."""
        return subprocess.Popen(["paplay", f"--device={self.sink}", str(path)])

    def record(self, path: str | Path) -> subprocess.Popen[bytes]:
        """Start recording the virtual speaker's monitor to a 16 kHz mono WAV."""
        return subprocess.Popen(
            [
                "parecord",
                f"--device={self.monitor}",
                "--rate=16000",
                "--channels=1",
                "--format=s16le",
                "--file-format=wav",
                str(path),
            ]
        )


def _pactl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)


def ensure_virtual_audio() -> VirtualAudio | str:
    """Start (or reuse) PulseAudio with the null sink; returns devices or why not."""
    for tool in ("pulseaudio", "pactl", "paplay", "parecord"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install pulseaudio pulseaudio-utils)"
    if _pactl("info").returncode != 0:
        subprocess.run(
            [
                "pulseaudio",
                "-D",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-native-protocol-unix",
                "--load=module-always-sink",
            ],
            capture_output=True,
            timeout=20,
            env={**os.environ},
        )
        deadline = time.monotonic() + 10
        while _pactl("info").returncode != 0:
            if time.monotonic() > deadline:
                return "pulseaudio did not start"
            time.sleep(0.1)
    sinks = _pactl("list", "short", "sinks").stdout
    if SINK not in sinks.split():
        loaded = _pactl("load-module", "module-null-sink", f"sink_name={SINK}")
        if loaded.returncode != 0:
            return f"could not create the null sink: {loaded.stderr.strip()}"
    # libpulse (and so PortAudio's "pulse" device) reads these when a stream opens:
    # this process and its children play into the sink and record from its monitor.
    os.environ["PULSE_SINK"] = SINK
    os.environ["PULSE_SOURCE"] = f"{SINK}.monitor"
    return VirtualAudio(sink=SINK, monitor=f"{SINK}.monitor")
