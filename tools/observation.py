"""Every local perception tool on one frame: an :class:`Observation`.

:class:`Perceiver` runs the text reader, the code scanner, the face finder, the
colour and the light measurements on one image and gathers their results. A tool
that fails leaves its field empty and its reason in ``errors``; the others still
report. The offline describer speaks an observation, and ``describe_scene`` puts
one into the model's prompt so that the model does not invent text or counts.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from pydantic import BaseModel, Field

from heron.agent.errors import HeronError
from heron.tools.codes import CodeScan, CodeScanner
from heron.tools.colours import ColourReport, dominant_colours
from heron.tools.light import LightReport, assess_light
from heron.tools.ocr import TextReader, TextReading
from heron.tools.people import FaceFinder, PeopleCount
from heron.tools.perception import as_bgr

log = logging.getLogger(__name__)


class Observation(BaseModel):
    """What the local tools found in one frame; ``None`` where a tool failed."""

    text: TextReading | None = None
    codes: CodeScan | None = None
    people: PeopleCount | None = None
    colours: ColourReport | None = None
    light: LightReport | None = None
    errors: dict[str, str] = Field(default_factory=dict, description="tool name → why it failed")
    elapsed_ms: float = 0.0


def _meaningful(reading: TextReading) -> TextReading:
    """Drop lone characters: on photographs the reader finds an "O" in every round shape."""
    lines = [line for line in reading.lines if sum(ch.isalnum() for ch in line.text) >= 2]
    if len(lines) == len(reading.lines):
        return reading
    kept = {line.text for line in lines}
    return reading.model_copy(
        update={
            "lines": lines,
            "text": "\n".join(line.text for line in lines),
            "paragraphs": [p for p in reading.paragraphs if p in kept or len(p.split()) > 1],
        }
    )


class Perceiver:
    """The local perception tools, sharing their loaded models with the tools themselves."""

    def __init__(
        self,
        *,
        reader: TextReader | None = None,
        scanner: CodeScanner | None = None,
        faces: FaceFinder | None = None,
        min_text_confidence: float = 0.6,
    ) -> None:
        self.reader = reader if reader is not None else TextReader()
        self.scanner = scanner if scanner is not None else CodeScanner()
        self.faces = faces if faces is not None else FaceFinder()
        self.min_text_confidence = min_text_confidence

    def warmup(self) -> None:
        self.reader.warmup()
        self.scanner.warmup()
        self.faces.warmup()

    def observe(self, image: np.ndarray) -> Observation:
        """Run every local tool on ``image``; raises only if it is not an image at all."""
        t0 = time.perf_counter()
        bgr = as_bgr(image, what="describe")
        found = Observation()
        steps = {
            "read_text": lambda: _meaningful(
                self.reader.read(bgr, min_confidence=self.min_text_confidence, mode="document")
            ),
            "scan_codes": lambda: self.scanner.scan(bgr),
            "people": lambda: self.faces.count(bgr),
            "colours": lambda: dominant_colours(bgr),
            "light": lambda: assess_light(bgr),
        }
        fields = {
            "read_text": "text",
            "scan_codes": "codes",
            "people": "people",
            "colours": "colours",
            "light": "light",
        }
        for name, step in steps.items():
            try:
                setattr(found, fields[name], step())
            except HeronError as exc:
                found.errors[name] = str(exc)
            except Exception as exc:  # one tool's bug must not silence the others
                log.exception("%s failed while describing", name)
                found.errors[name] = f"{type(exc).__name__}: {exc}"
        found.elapsed_ms = round((time.perf_counter() - t0) * 1000, 1)
        return found
