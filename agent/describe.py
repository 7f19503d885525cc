"""Spoken descriptions made only of what the local tools found.

With no vision-language model, "describe" is answered by :func:`compose_description`:
a few short sentences built from an :class:`~heron.tools.observation.Observation`
(text read, codes, faces, colours, light). Nothing is added that a tool did not
report: no guessed objects, no guessed identities. :func:`grounding_facts` states
the same findings for the model's prompt, and :func:`spoken_result` turns one
tool's JSON result into the sentence the offline mode speaks.
"""

from __future__ import annotations

import json
import re
from typing import Any

from heron.tools.codes import CodeScan
from heron.tools.colours import ColourReport
from heron.tools.light import LightReport
from heron.tools.observation import Observation
from heron.tools.ocr import TextReading
from heron.tools.people import PeopleCount
from heron.tools.perception import count_words

MAX_SPOKEN_WORDS = 30
"""Longer text (a page) is cut here in a description; "read this" reads all of it."""

KIND_NAMES = {"qr": "QR code", "matrix": "code", "product": "product barcode", "linear": "barcode"}


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ".!?:" else text + "."


def say_text(reading: TextReading, *, max_words: int | None = MAX_SPOKEN_WORDS) -> str:
    # A page read in document mode comes in paragraphs; signs and labels in lines.
    parts = reading.paragraphs or [line.text for line in reading.lines]
    lines = [part.strip().rstrip(".:;,") for part in parts if part.strip()]
    if not lines:
        return ""
    words = " . ".join(lines).split()
    if max_words is not None and len(words) > max_words:
        return "Text, starting: " + " ".join(words[:max_words]).replace(" . ", ". ") + "…"
    return "Text: " + ". ".join(lines) + "."


def say_codes(scan: CodeScan) -> str:
    if not scan.codes:
        return ""
    parts = [f"{KIND_NAMES[code.kind]} {code.value}" for code in scan.codes]
    if len(parts) == 1:
        return f"A {parts[0]}."
    return f"{count_words(len(parts), 'code').capitalize()}: " + "; ".join(parts) + "."


def say_people(count: PeopleCount, *, none: str = "") -> str:
    if not count.faces:
        return none
    where = [f"{face.place}, {face.distance}" for face in count.faces]
    if len(where) == 1:
        return f"One person facing the camera, {where[0]}."
    described = "; ".join(f"one {w}" for w in where)
    number = count_words(len(where), "person", "people").capitalize()
    return f"{number} facing the camera: {described}."


def say_colours(report: ColourReport) -> str:
    names = [c.name for c in report.colours]
    if not names:
        return ""
    if report.colours[0].share >= 0.8 or len(names) == 1:
        return f"Mostly {names[0]}."
    main = [c.name for c in report.colours[:3] if c.share >= 0.15] or names[:1]
    if len(main) == 1:
        return f"Mostly {main[0]}."
    return "Mostly " + ", ".join(main[:-1]) + f" and {main[-1]}."


def say_light(report: LightReport, *, always: bool = False) -> str:
    """The light in a sentence; in a description only when it is worth mentioning."""
    if always:
        return report.summary
    said = {"too dark": report.summary, "dim": "It's dim.", "too bright": report.summary}
    parts = [said.get(report.level, "")]
    if report.blurred:
        parts.append("The view is blurred; hold steady.")
    return " ".join(p for p in parts if p)


def compose_description(observation: Observation) -> str:
    """A short spoken description that says only what the tools found."""
    parts: list[str] = []
    light = observation.light
    if light is not None and light.too_dark:
        # In the dark the other tools see nothing trustworthy; say so and stop.
        return light.summary
    if observation.text is not None:
        parts.append(say_text(observation.text))
    if observation.codes is not None:
        parts.append(say_codes(observation.codes))
    if observation.people is not None:
        parts.append(say_people(observation.people))
    if observation.colours is not None:
        parts.append(say_colours(observation.colours))
    if light is not None:
        parts.append(say_light(light))
    said = " ".join(p for p in parts if p)
    if not said:
        if observation.errors:
            reasons = "; ".join(sorted(set(observation.errors.values())))
            return f"I couldn't look at the view: {reasons}."
        return "I can't make out anything in particular."
    if observation.text is not None and not observation.text.lines and light and light.blurred:
        said += " If there is text, it is too blurred to read."
    return said


def grounding_facts(observation: Observation) -> str:
    """The findings as plain statements for the model's prompt, one per line."""
    facts: list[str] = []
    text = observation.text
    if text is not None:
        if text.lines:
            quoted = " | ".join(line.text for line in text.lines)
            facts.append(f"Text read by OCR, exact, in reading order: {quoted}")
        else:
            facts.append("Text read by OCR: none readable.")
    codes = observation.codes
    if codes is not None:
        if codes.codes:
            listed = "; ".join(f"{c.format} {c.value!r} ({c.place})" for c in codes.codes)
            facts.append(f"Codes decoded: {listed}")
        else:
            facts.append("Codes decoded: none.")
    people = observation.people
    if people is not None:
        where = ", ".join(f"{f.place} {f.distance}" for f in people.faces)
        facts.append(
            f"Faces turned to the camera: {people.people}" + (f" ({where})" if where else "")
        )
    colours = observation.colours
    if colours is not None and colours.colours:
        shares = ", ".join(f"{c.name} {round(c.share * 100)}%" for c in colours.colours)
        facts.append(f"Main colours: {shares}")
    light = observation.light
    if light is not None:
        state = light.level + (", blurred" if light.blurred else "")
        facts.append(f"Light: {state} (brightness {light.brightness:.2f})")
    for tool, error in observation.errors.items():
        facts.append(f"{tool} failed: {error}")
    return "\n".join(facts)


WHOLE_VIEW = re.compile(r"\b(?:room|around|everything|scene|view|here|there)\b", re.IGNORECASE)


def tool_arguments(tool: str, request: str) -> str:
    """Arguments for a perception tool called offline, from the user's words (JSON).

    "What colour is this shirt / the sign / it" asks about the thing in the middle of
    the view (something held up or pointed at); "what colours are around me" about
    the whole view.
    """
    if tool == "colours" and not WHOLE_VIEW.search(request):
        return json.dumps({"region": "center"})
    if tool == "describe_scene":
        return json.dumps({"focus": request[:300]})
    return "{}"


def _load(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return {"error": "the result could not be read"}
    return value if isinstance(value, dict) else {"error": "the result could not be read"}


def spoken_result(tool: str, content: str) -> str | None:
    """The sentence for one perception tool's JSON result, or None for other tools."""
    result = _load(content)
    if "error" in result:
        what = {"scan_codes": "scan for codes", "people": "look for people"}.get(tool, "look")
        return f"I couldn't {what}: {result['error']}."
    if tool == "scan_codes":
        return say_codes(CodeScan.model_validate(result)) or (
            "I don't see a QR code or barcode. Hold it closer and steady, fully in view."
        )
    if tool == "people":
        nobody = "I don't see anyone facing the camera."
        return say_people(PeopleCount.model_validate(result), none=nobody)
    if tool == "colours":
        return say_colours(ColourReport.model_validate(result)) or "I can't tell the colours."
    if tool == "light":
        report = LightReport.model_validate(result)
        return say_light(report, always=True)
    if tool == "describe_scene":
        return _sentence(str(result.get("description") or "I can't describe the view."))
    return None
