"""The machine a benchmark ran on, in one line (every benchmark prints it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe_machine(*extra: str) -> str:
    """Host, cores and CPU model, Python, anything ``extra`` names, and the OS."""
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [
        f"Python {platform.python_version()}",
        *extra,
        f"{platform.system()} {platform.release()}",
    ]
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), " + ", ".join(parts)
