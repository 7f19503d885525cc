"""Per-turn latency trace: when each stage of a turn happened.

Marks are monotonic seconds; :meth:`TurnTrace.summary` gives milliseconds after
the end of the user's speech, the figure a person feels as the reply's delay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TurnTrace:
    turn: int
    marks: dict[str, float] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, name: str, t: float | None = None, *, first: bool = True) -> None:
        """Record a stage; with ``first`` an existing mark is kept (first token, first audio)."""
        if first and name in self.marks:
            return
        self.marks[name] = time.monotonic() if t is None else t

    def tool(self, name: str, t_start: float, t_end: float, ok: bool) -> None:
        self.tools.append({"name": name, "t_start": t_start, "t_end": t_end, "ok": ok})

    def summary(self) -> dict[str, Any]:
        """Milliseconds of each mark after the speech end (or after the turn's start)."""
        origin = self.marks.get("speech_end", self.marks.get("turn_start", 0.0))
        out: dict[str, Any] = {
            name: round((t - origin) * 1000, 1)
            for name, t in sorted(self.marks.items(), key=lambda kv: kv[1])
        }
        out["tools"] = [
            {
                "name": tool["name"],
                "start_ms": round((tool["t_start"] - origin) * 1000, 1),
                "ms": round((tool["t_end"] - tool["t_start"]) * 1000, 1),
                "ok": tool["ok"],
            }
            for tool in self.tools
        ]
        return out
