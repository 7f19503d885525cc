"""Guard decisions: what a guard did and why, written to the session log.

Every check that changes what heron sends, reads, runs or says records a
:class:`Decision` as a ``guard`` record in the session log
(``{"kind": "guard", "guard": ..., "action": ..., "reason": ...}``). The reasons
are plain sentences, because they are also what heron says when the user asks
"why didn't you read that?". Personal data is never put in a record: redactions
are logged as counts by kind, withheld text as its category only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heron.memory.session_log import SessionLog, read_session_log

ALLOW = "allow"


@dataclass(frozen=True)
class Decision:
    """One guard's verdict on one thing (a tool result, a call, a reply, a request)."""

    guard: str
    """Which guard: injection, state_tool, privacy, identify, moderation, local_only."""
    action: str
    """allow, withhold, refuse, redact, blur, block, offline, fallback."""
    reason: str
    """A plain sentence, spoken when the user asks why."""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.action == ALLOW


def log_decision(log: SessionLog | None, decision: Decision, turn: int | None) -> None:
    if log is None:
        return
    log.write(
        "guard",
        turn=turn,
        guard=decision.guard,
        action=decision.action,
        reason=decision.reason,
        **decision.detail,
    )


def recent_decisions(path: str | Path, *, limit: int = 3) -> list[dict[str, Any]]:
    """The latest turn's guard records that held something back (oldest first)."""
    held = [
        r for r in read_session_log(path) if r.get("kind") == "guard" and r.get("action") != ALLOW
    ]
    if not held:
        return []
    last_turn = held[-1].get("turn")
    same_turn = [r for r in held if r.get("turn") == last_turn]
    return same_turn[-limit:]
