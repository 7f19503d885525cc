"""The scene describer's channels: what each one says about the frames it is shown.

A channel gets every analysed camera frame (:class:`~heron.agent.keyframes.AnalysedFrame`)
and answers with things to say (:class:`Say`) or tones to play (:class:`Tone`). It does
no audio itself, so it can be tested frame by frame with a controlled clock.

- short text (:class:`ShortTextChannel`) reads what comes into view and says each
  piece of text once while it stays in view; it tells the user when text runs off
  the frame's edge ("text continues to the left; move the camera left") or when the
  view is too blurred to read ("hold steady");
- light (:class:`LightChannel`) plays a tone whose pitch follows the brightness;
- the others (:class:`ToolChannel`: document, codes, people, colour, scene) run a
  perception tool when the scene has changed and the view is steady, and say its
  result when it differs from what was said last.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from .config import KeyframeConfig
from .errors import HeronError
from .keyframes import AnalysedFrame, FrameAnalysis, is_blurred, same_scene

if TYPE_CHECKING:
    from heron.tools.ocr import TextLine, TextReading

log = logging.getLogger(__name__)

ChannelName = Literal["text", "document", "codes", "people", "colour", "light", "scene"]
CHANNELS: tuple[ChannelName, ...] = (
    "text",
    "document",
    "codes",
    "people",
    "colour",
    "light",
    "scene",
)
Verbosity = Literal["brief", "normal", "detailed"]

TEXT_DETAIL = 0.04
"""The short-text channel reads again when any block of the view changes this much."""

EDGE_MARGIN = 0.015
"""A text box this close (fraction of the frame) to an edge is taken to be cut off."""

EDGE_STRIP = 0.08
"""Up to this far (fraction of the frame) from an edge, ink beyond a box is cut-off text."""

INK_STD = 20.0
"""Grey-level spread above which a strip holds marks rather than plain background."""

SIMILAR_TEXT = 0.75
"""Two readings this similar (difflib ratio) are the same text read twice."""


@dataclass(frozen=True, slots=True)
class Say:
    """Something to speak; ``guidance`` marks advice rather than content."""

    text: str
    guidance: bool = False


@dataclass(frozen=True, slots=True)
class Tone:
    """A short tone (the light channel)."""

    frequency: float
    duration_s: float = 0.15


Output = Say | Tone


class Channel(Protocol):
    name: ChannelName

    def reset(self) -> None:
        """Forget what was said: the channel was just chosen."""
        ...

    def on_frame(self, item: AnalysedFrame) -> list[Output]: ...


# -- text ---------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """Lower case letters and digits, single spaces: what OCR flicker does not change."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def readable(text: str) -> bool:
    """At least two letters or digits in a row: not a stray mark read as text."""
    return re.search(r"[A-Za-z0-9]{2}", text) is not None


class SeenText:
    """The text in view, so each piece is said once while it stays in view.

    A line is new when it resembles nothing in view. A line leaves the view after
    ``misses`` readings in a row without it, or ``forget_s`` seconds unseen; if it
    comes back after that, it is said again.
    """

    def __init__(self, *, misses: int = 2, forget_s: float = 6.0) -> None:
        self.misses = misses
        self.forget_s = forget_s
        self._in_view: dict[str, tuple[float, int]] = {}
        """normalised text → (last seen, readings in a row without it)"""

    def clear(self) -> None:
        self._in_view.clear()

    def _match(self, key: str) -> str | None:
        for known in self._in_view:
            if known == key or difflib.SequenceMatcher(None, known, key).ratio() >= SIMILAR_TEXT:
                return known
        return None

    def update(self, texts: list[str], now: float) -> list[str]:
        """Record one reading; returns the texts that were not in view, in order."""
        fresh: list[str] = []
        matched: set[str] = set()
        for text in texts:
            key = normalise_text(text)
            if not key:
                continue
            known = self._match(key)
            if known is None:
                fresh.append(text)
                known = key
            matched.add(known)
            self._in_view[known] = (now, 0)
        for key, (seen, missed) in list(self._in_view.items()):
            if key in matched:
                continue
            missed += 1
            if missed >= self.misses or now - seen > self.forget_s:
                del self._in_view[key]
            else:
                self._in_view[key] = (seen, missed)
        return fresh


def edge_guidance(line: TextLine, image: np.ndarray) -> str | None:
    """Where ``line`` runs off the frame, as advice on moving the camera; None if it does not.

    A line runs off when its box touches an edge, or when the narrow strip between
    the box and the edge holds ink: OCR drops the letters cut in half, so the box
    often stops a few pixels short of the edge.
    """
    height, width = image.shape[:2]
    grey = image if image.ndim == 2 else image[:, :, :3].mean(axis=2)
    xs = [x for x, _ in line.box]
    ys = [y for _, y in line.box]
    x0, x1 = max(0, min(xs)), min(width, max(xs))
    y0, y1 = max(0, min(ys)), min(height, max(ys))
    reach_x, reach_y = EDGE_STRIP * width, EDGE_STRIP * height

    def inked(strip: np.ndarray, gap: float, reach: float) -> bool:
        return gap <= EDGE_MARGIN * reach / EDGE_STRIP or (
            gap <= reach and strip.size > 0 and float(strip.std()) > INK_STD
        )

    if inked(grey[y0:y1, :x0], x0, reach_x):
        return "Text continues to the left; move the camera left."
    if inked(grey[y0:y1, x1:], width - x1, reach_x):
        return "Text continues to the right; move the camera right."
    if inked(grey[:y0, x0:x1], y0, reach_y):
        return "Text continues above; move the camera up."
    if inked(grey[y1:, x0:x1], height - y1, reach_y):
        return "Text continues below; move the camera down."
    return None


class TextReader(Protocol):
    def read(self, image: np.ndarray, *, min_confidence: float = 0.5) -> TextReading: ...


@dataclass
class ShortTextChannel:
    """Speaks new text as soon as it is readable; never repeats text still in view."""

    reader: TextReader
    config: KeyframeConfig = field(default_factory=KeyframeConfig)
    verbosity: Verbosity = "normal"
    clock: Callable[[], float] = time.monotonic
    recheck_s: float = 1.5
    """An unchanged view is read again this often (OCR can miss text on one frame)."""
    min_confidence: float = 0.6
    guidance_every_s: float = 4.0
    steady_after_s: float = 0.6
    """Blur lasting this long gets "hold steady"."""
    name: ChannelName = "text"
    seen: SeenText = field(default_factory=SeenText)
    _last: FrameAnalysis | None = None
    _t_read: float = -1e9
    _said_guidance: dict[str, float] = field(default_factory=dict)
    _t_blur: float | None = None

    def reset(self) -> None:
        self.seen.clear()
        self._last, self._t_blur = None, None
        self._said_guidance.clear()

    def _guide(self, text: str, now: float) -> list[Output]:
        if self.verbosity == "brief" and "steady" not in text:
            return []
        if now - self._said_guidance.get(text, -1e9) < self.guidance_every_s:
            return []
        self._said_guidance[text] = now
        return [Say(text, guidance=True)]

    def on_frame(self, item: AnalysedFrame) -> list[Output]:
        now = self.clock()
        analysis = item.analysis
        if is_blurred(analysis, self.config):
            # OCR of a smeared view reads garbage with confidence: wait for a sharp one,
            # and ask for stillness when the blur goes on
            if self._t_blur is None:
                self._t_blur = now
            if now - self._t_blur >= self.steady_after_s:
                return self._guide("Hold steady.", now)
            return []
        self._t_blur = None
        if (
            self._last is not None
            and same_scene(self._last, analysis, self.config, detail=TEXT_DETAIL)
            and now - self._t_read < self.recheck_s
        ):
            return []
        self._last, self._t_read = analysis, now
        try:
            reading = self.reader.read(item.frame.image, min_confidence=self.min_confidence)
        except HeronError as exc:  # a frame too small to read, or the OCR engine failed
            log.debug("short text: %s", exc)
            return []
        sure = [line for line in reading.lines if readable(line.text)]
        out: list[Output] = []
        fresh = set(self.seen.update([line.text for line in sure], now))
        for line in sure:
            if line.text not in fresh:
                continue
            out.append(Say(line.text))
            hint = edge_guidance(line, item.frame.image)
            if hint is not None:
                out += self._guide(hint, now)
        return out


# -- light --------------------------------------------------------------------------

LOW_HZ = 220.0
OCTAVES = 3.0
"""Brightness 0..1 maps to 220..1760 Hz on a log scale: equal steps sound equal."""


def light_pitch(brightness: float) -> float:
    return LOW_HZ * 2.0 ** (OCTAVES * min(1.0, max(0.0, brightness)))


def tone_samples(frequency: float, duration_s: float, sample_rate: int = 22_050) -> np.ndarray:
    """A sine tone with 10 ms fades (no clicks), mono float32 at half scale."""
    n = max(1, round(duration_s * sample_rate))
    t = np.arange(n, dtype=np.float32) / sample_rate
    tone = 0.5 * np.sin(2 * np.pi * frequency * t).astype(np.float32)
    fade = min(n // 2, round(0.01 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        tone[:fade] *= ramp
        tone[-fade:] *= ramp[::-1]
    return tone


@dataclass
class LightChannel:
    """A tone every ``period_s`` whose pitch rises with the view's brightness."""

    clock: Callable[[], float] = time.monotonic
    period_s: float = 0.3
    name: ChannelName = "light"
    _t_last: float = -1e9

    def reset(self) -> None:
        self._t_last = -1e9

    def on_frame(self, item: AnalysedFrame) -> list[Output]:
        now = self.clock()
        if now - self._t_last < self.period_s:
            return []
        self._t_last = now
        return [Tone(light_pitch(item.analysis.brightness), duration_s=self.period_s / 2)]


# -- tools --------------------------------------------------------------------------


@dataclass
class ToolChannel:
    """Runs ``run(image)`` when the view settles on a new scene; says a changed result.

    ``phrase`` turns the result into a sentence ("" for nothing to say). Blurred
    frames are skipped (the answer would be a guess) and produce "hold steady".
    """

    name: ChannelName
    run: Callable[[np.ndarray], Any]
    phrase: Callable[[Any], str]
    config: KeyframeConfig = field(default_factory=KeyframeConfig)
    clock: Callable[[], float] = time.monotonic
    empty: str = ""
    """Said once when the tool finds nothing (e.g. "No code in view.")."""
    _last: FrameAnalysis | None = None
    _said: str | None = None
    _t_blur: float = -1e9

    def reset(self) -> None:
        self._last, self._said = None, None

    def on_frame(self, item: AnalysedFrame) -> list[Output]:
        analysis = item.analysis
        if self._last is not None and same_scene(self._last, analysis, self.config):
            return []
        if is_blurred(analysis, self.config):
            now = self.clock()
            if now - self._t_blur > 4.0:
                self._t_blur = now
                return [Say("Hold steady.", guidance=True)]
            return []
        self._last = analysis
        try:
            result = self.run(item.frame.image)
        except Exception as exc:  # a failing tool is said once, not fatal to the describer
            log.warning("%s channel: %s", self.name, exc)
            text = f"{self.name} is not available: {exc}"
        else:
            text = self.phrase(result) or self.empty
        if not text or text == self._said:
            return []
        self._said = text
        return [Say(text)]


# -- commands -----------------------------------------------------------------------

_CHANNEL_WORDS: dict[ChannelName, tuple[str, ...]] = {
    "text": ("short text", "text", "read"),
    "document": ("document", "page", "letter"),
    "codes": ("barcode", "bar code", "qr", "code", "product"),
    "people": ("people", "person", "faces", "face", "who"),
    "colour": ("colour", "color", "colours", "colors"),
    "light": ("light", "brightness", "bright", "dark"),
    "scene": ("scene", "describe", "around", "what do you see"),
}
KEYS: dict[str, ChannelName] = {str(i + 1): name for i, name in enumerate(CHANNELS)}

Command = tuple[Literal["channel"], ChannelName] | tuple[Literal["setting"], str]


def parse_command(text: str) -> Command | None:
    """A key ("1".."7", "+", "-", "v", "q") or spoken words → what to do; None if unknown."""
    said = text.strip().lower()
    if said in KEYS:
        return ("channel", KEYS[said])
    simple = {"+": "faster", "-": "slower", "v": "verbosity", "q": "quit", "s": "stop"}
    if said in simple:
        return ("setting", simple[said])
    words = normalise_text(said)
    for setting, cues in (
        ("faster", ("faster", "speed up")),
        ("slower", ("slower", "slow down")),
        ("more", ("more detail", "more verbose", "tell me more")),
        ("less", ("less detail", "less verbose", "shorter")),
        ("stop", ("stop", "quiet", "be quiet", "silence")),
        ("quit", ("quit", "exit describer", "goodbye")),
    ):
        if any(re.search(rf"\b{cue}\b", words) for cue in cues):
            return ("setting", setting)
    # "read the document" is the document channel: the general "read" cue comes last
    for name in ("document", "codes", "people", "colour", "light", "scene", "text"):
        if any(re.search(rf"\b{cue}\b", words) for cue in _CHANNEL_WORDS[name]):
            return ("channel", name)
    return None
