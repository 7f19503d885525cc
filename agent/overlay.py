"""What a live window shows: the camera image with the session's state drawn over it.

Pure functions, so a window, a headless run and a test all draw the same picture:
:func:`apply_event` folds a :mod:`~heron.agent.live_events` event into a
:class:`ViewState`, and :func:`render_overlay` draws a frame and a view state into a
new BGR image: a coloured state badge (top left), the last turn's latency (top
right), and the captions, what the user said (or is saying) and the reply, wrapped
over a dark band at the bottom so they read on any picture. OpenCV's Hershey fonts
draw ASCII only, so captions are transliterated first (:func:`to_ascii`).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from .live_events import (
    LiveEvent,
    LiveState,
    Notice,
    PartialTranscript,
    ReplyText,
    StateChanged,
    TurnLatency,
    UserTurn,
)

Color = tuple[int, int, int]

STATE_COLORS: dict[str, Color] = {  # BGR
    "starting": (128, 128, 128),
    "listening": (60, 170, 40),
    "hearing": (200, 140, 0),
    "thinking": (0, 150, 235),
    "speaking": (170, 60, 170),
    "stopped": (80, 80, 80),
}
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE: Color = (255, 255, 255)
GREY: Color = (190, 190, 190)
YELLOW: Color = (80, 220, 255)
NO_CAMERA_SIZE = (640, 480)
MAX_WIDTH = 960
"""Wider frames are scaled down to this; narrower ones are shown as they are."""
NOTICE_S = 6.0
"""A notice stays on screen this long."""
REPLY_LINES = 4
"""The reply's latest lines shown; a long reply scrolls."""
BACKDROP_ALPHA = 0.7

_ASCII = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "→": "->", "·": "-"}
)


@dataclass(frozen=True)
class ViewState:
    """Everything the window shows besides the camera image."""

    state: LiveState = "starting"
    mode: str = "always listening"
    talk_key: str | None = None
    """Shown as a hint in push-to-talk mode ("space")."""
    talk_pressed: bool = False
    partial: str = ""
    heard: str = ""
    reply: str = ""
    reply_interrupted: bool = False
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    notice: str = ""
    notice_at: float = 0.0
    assistant_name: str = "heron"
    no_picture: str = "no camera"
    """Shown when there is no frame."""


def apply_event(view: ViewState, event: LiveEvent, now: float = 0.0) -> ViewState:
    """The view after ``event`` (``now``: monotonic seconds, to time notices out)."""
    if isinstance(event, StateChanged):
        return dataclasses.replace(view, state=event.state)
    if isinstance(event, PartialTranscript):
        return dataclasses.replace(view, partial=event.text)
    if isinstance(event, UserTurn):
        return dataclasses.replace(
            view, heard=event.text, partial="", reply="", reply_interrupted=False
        )
    if isinstance(event, ReplyText):
        return dataclasses.replace(view, reply=event.text, reply_interrupted=event.interrupted)
    if isinstance(event, TurnLatency):
        return dataclasses.replace(view, latency_ms=dict(event.stages_ms))
    if isinstance(event, Notice):
        return dataclasses.replace(view, notice=event.text, notice_at=now)
    return view


def latency_caption(stages_ms: Mapping[str, float]) -> str:
    """The figure a person feels first: "end of speech -> first audio 380 ms"."""
    if "first_audio" in stages_ms:
        return f"end of speech -> first audio {stages_ms['first_audio']:.0f} ms"
    if "reply_ready" in stages_ms:
        return f"end of speech -> reply {stages_ms['reply_ready']:.0f} ms"
    return ""


def latency_details(stages_ms: Mapping[str, float]) -> str:
    """Where the wait went: "endpoint 210, transcript 260, first token 300 ms"."""
    parts = [
        f"{label} {stages_ms[key]:.0f}"
        for key, label in (
            ("endpoint", "endpoint"),
            ("transcript", "transcript"),
            ("first_token", "first token"),
        )
        if key in stages_ms
    ]
    return ", ".join(parts) + " ms" if parts else ""


def to_ascii(text: str) -> str:
    """What Hershey fonts can draw: typographic quotes and dashes as ASCII, accents dropped."""
    plain = unicodedata.normalize("NFKD", text.translate(_ASCII))
    kept = "".join(c for c in plain if not unicodedata.combining(c))
    return kept.encode("ascii", "replace").decode("ascii").replace("\n", " ")


def wrap_text(text: str, max_width: int, scale: float, thickness: int = 1) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels; a word longer than a line is cut."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if _text_width(candidate, scale, thickness) <= max_width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while _text_width(word, scale, thickness) > max_width and len(word) > 1:
            cut = max(1, int(len(word) * max_width / _text_width(word, scale, thickness)))
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines


def render_overlay(frame: np.ndarray | None, view: ViewState, now: float = 0.0) -> np.ndarray:
    """A new BGR image: ``frame`` (or a "no camera" card) with ``view`` drawn over it."""
    canvas = _canvas(frame, view.no_picture)
    width = canvas.shape[1]
    scale = min(1.2, max(0.6, width / 900))
    pad = round(12 * scale)
    badge_bottom = _draw_badge(canvas, view, scale, pad)
    _draw_mode(canvas, view, scale, pad, badge_bottom)
    latency = [latency_caption(view.latency_ms), latency_details(view.latency_ms)]
    if latency[0]:
        _draw_corner(canvas, [line for line in latency if line], scale * 0.8, pad)
    _draw_captions(canvas, view, now, scale, pad)
    return canvas


def _canvas(frame: np.ndarray | None, text: str) -> np.ndarray:
    if frame is None or frame.size == 0:
        width, height = NO_CAMERA_SIZE
        canvas = np.full((height, width, 3), 40, np.uint8)
        text = to_ascii(text)
        w = _text_width(text, 1.0, 2)
        cv2.putText(canvas, text, ((width - w) // 2, height // 3), FONT, 1.0, GREY, 2, cv2.LINE_AA)
        return canvas
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    height, width = frame.shape[:2]
    if width > MAX_WIDTH:
        size = (MAX_WIDTH, round(height * MAX_WIDTH / width))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame.copy()


def _text_width(text: str, scale: float, thickness: int) -> int:
    (width, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    return int(width)


def _line_height(scale: float, thickness: int) -> int:
    (_, height), baseline = cv2.getTextSize("Ag", FONT, scale, thickness)
    return int(height + baseline)


def _darken(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """A translucent dark box: text over it reads on bright and busy pictures alike."""
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(canvas.shape[1], x1), min(canvas.shape[0], y1)
    if x1 > x0 and y1 > y0:
        region = canvas[y0:y1, x0:x1]
        region[:] = (region * (1 - BACKDROP_ALPHA)).astype(np.uint8)


def _draw_badge(canvas: np.ndarray, view: ViewState, scale: float, pad: int) -> int:
    text = view.state.upper()
    thickness = 2
    width = _text_width(text, scale, thickness)
    height = _line_height(scale, thickness)
    x0, y0 = pad, pad
    x1, y1 = x0 + width + 2 * pad, y0 + height + pad
    cv2.rectangle(canvas, (x0, y0), (x1, y1), STATE_COLORS.get(view.state, GREY), cv2.FILLED)
    baseline_y = y0 + pad // 2 + height - height // 4
    cv2.putText(canvas, text, (x0 + pad, baseline_y), FONT, scale, WHITE, thickness, cv2.LINE_AA)
    return y1


def _draw_mode(canvas: np.ndarray, view: ViewState, scale: float, pad: int, top: int) -> None:
    text = view.mode
    color = GREY
    if view.talk_key is not None:
        text = (
            f"talking - {view.talk_key} to stop"
            if view.talk_pressed
            else (f"press {view.talk_key} to talk")
        )
        color = YELLOW if view.talk_pressed else GREY
    small = scale * 0.8
    height = _line_height(small, 1)
    y = top + pad // 2
    _darken(canvas, pad, y, pad + _text_width(text, small, 1) + pad, y + height + pad // 2)
    cv2.putText(canvas, text, (pad + pad // 2, y + height), FONT, small, color, 1, cv2.LINE_AA)


def _draw_corner(canvas: np.ndarray, lines: list[str], scale: float, pad: int) -> None:
    """Right-aligned lines in one dark box at the top right."""
    sizes = [cv2.getTextSize(line, FONT, scale, 1) for line in lines]
    width = max(w for (w, _), _ in sizes)
    pitch = max(h + base for (_, h), base in sizes) + pad // 3
    x1 = canvas.shape[1] - pad
    _darken(canvas, x1 - width - pad, pad, x1, pad + pitch * len(lines) + pad // 2)
    for i, (line, ((w, h), _)) in enumerate(zip(lines, sizes, strict=True)):
        y = pad + pad // 2 + h + pitch * i
        cv2.putText(canvas, line, (x1 - w - pad // 2, y), FONT, scale, WHITE, 1, cv2.LINE_AA)


def _draw_captions(canvas: np.ndarray, view: ViewState, now: float, scale: float, pad: int) -> None:
    height, width = canvas.shape[:2]
    text_width = width - 4 * pad
    lines: list[tuple[str, Color]] = []
    if view.notice and now - view.notice_at <= NOTICE_S:
        lines += [(line, YELLOW) for line in wrap_text(to_ascii(view.notice), text_width, scale)]
    said, said_color = (view.partial, GREY) if view.partial else (view.heard, WHITE)
    if said:
        lines += [
            (line, said_color) for line in wrap_text(f"you: {to_ascii(said)}", text_width, scale)
        ]
    if view.reply:
        reply = to_ascii(view.reply) + (" [interrupted]" if view.reply_interrupted else "")
        wrapped = wrap_text(f"{view.assistant_name}: {reply}", text_width, scale)
        lines += [(line, WHITE) for line in wrapped[-REPLY_LINES:]]
    if not lines:
        return
    pitch = round(_line_height(scale, 1) * 1.35)
    top = height - pad - pitch * len(lines) - pad
    _darken(canvas, pad, top, width - pad, height - pad)
    for i, (line, color) in enumerate(lines):
        y = top + pad + pitch * (i + 1) - pitch // 4
        cv2.putText(canvas, line, (2 * pad, y), FONT, scale, color, 1, cv2.LINE_AA)
