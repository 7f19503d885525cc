"""The session log: everything that happened in a session, on disk as it happens.

One JSON object per line (JSON Lines), appended and flushed at once, so a crash
loses nothing written before it and the file stays readable by ``jq``, pandas or
a text editor. Each record has ``seq`` (order), ``t`` (wall clock, ISO 8601),
``mono`` (monotonic seconds, for latencies) and ``kind``; the rest depends on the
kind: ``session.start``, ``utterance``, ``frame``, ``vlm.request``, ``tool.call``,
``tool.result``, ``reply``, ``speech``, ``turn.timing``, ``error``, ``status``,
``session.end``. Frames are referenced by file name, never inlined; audio and
API keys are never written.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


class SessionLog:
    """Append-only JSON Lines log; thread-safe; each record flushed when written."""

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._lock = threading.Lock()
        self._seq = self._last_seq()
        self.continued = self._seq > 0
        """True when the file already held records: a resumed session."""
        self._file: TextIO | None = self.path.open("a", encoding="utf-8")

    def _last_seq(self) -> int:
        """Continue numbering when a session is resumed into the same file."""
        last = 0
        for record in read_session_log(self.path):
            last = max(last, int(record.get("seq", 0)))
        return last

    def write(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one record and flush it to the operating system before returning."""
        with self._lock:
            self._seq += 1
            record = {
                "seq": self._seq,
                "t": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "mono": round(time.monotonic(), 4),
                "kind": kind,
                **fields,
            }
            if self._file is None:
                raise ValueError(f"session log {self.path} is closed")
            self._file.write(json.dumps(record, default=_jsonable, ensure_ascii=False) + "\n")
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return repr(value)


def read_session_log(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a log; a line cut short by a crash is skipped, not fatal."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
