"""Scripted sessions: a scenario file instead of a camera and a microphone.

A scenario names what the camera sees over time (images from given times, or a
video) and what the user says and when (audio files, transcribed by the real
speech-to-text, or text). ``heron run SCENARIO`` plays it through the same session
and graph as ``heron live`` and writes the transcript, the replies' audio and the
session log. Example (TOML; paths are relative to the scenario file)::

    name = "Reading a sign"

    [camera]
    images = [{ at = 0.0, path = "sign.png" }]   # or: video = "walk.mp4"

    [[turns]]
    at = 1.0
    audio = "question.wav"

    [[turns]]
    at = 6.0
    text = "What else can you see?"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import CameraError, ScenarioError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimedImage(_Strict):
    at: float = Field(0.0, ge=0, description="Seconds from the start")
    path: Path


class ScenarioCamera(_Strict):
    images: list[TimedImage] = Field(default_factory=list)
    video: Path | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ScenarioCamera:
        if self.images and self.video:
            raise ValueError("give either images or a video, not both")
        return self


class ScenarioTurn(_Strict):
    at: float = Field(ge=0, description="Seconds from the start at which the user speaks")
    audio: Path | None = None
    text: str | None = None
    expect: list[str] = Field(
        default_factory=list, description="Words the reply should contain (checked by tests)"
    )

    @model_validator(mode="after")
    def _audio_or_text(self) -> ScenarioTurn:
        if (self.audio is None) == (self.text is None):
            raise ValueError("each turn needs exactly one of 'audio' or 'text'")
        if self.text is not None and not self.text.strip():
            raise ValueError("'text' is empty")
        return self


class Scenario(_Strict):
    name: str
    description: str = ""
    camera: ScenarioCamera = ScenarioCamera()
    turns: list[ScenarioTurn] = Field(min_length=1)
    folder: Path = Path(".")

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.folder / path

    @property
    def ordered_turns(self) -> list[ScenarioTurn]:
        return sorted(self.turns, key=lambda turn: turn.at)


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every named file must exist."""
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from None
    try:
        scenario = Scenario.model_validate({**data, "folder": path.resolve().parent})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ScenarioError(f"{path}: {problems}") from None
    named = [image.path for image in scenario.camera.images]
    named += [scenario.camera.video] if scenario.camera.video else []
    named += [turn.audio for turn in scenario.turns if turn.audio is not None]
    missing = [str(p) for p in named if not scenario.resolve(p).is_file()]
    if missing:
        raise ScenarioError(f"{path}: files not found: {', '.join(missing)}")
    return scenario


class ScriptedFrames:
    """The camera of a scenario: the frame visible at a given scenario time."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        self._images: list[tuple[float, np.ndarray]] = []
        for timed in sorted(scenario.camera.images, key=lambda image: image.at):
            path = scenario.resolve(timed.path)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise CameraError(f"cannot read the image {path} (corrupt or not an image)")
            self._images.append((timed.at, image))
        self._video: cv2.VideoCapture | None = None
        if scenario.camera.video is not None:
            path = scenario.resolve(scenario.camera.video)
            self._video = cv2.VideoCapture(str(path))
            if not self._video.isOpened():
                raise CameraError(f"cannot open the video {path}")

    def at(self, t: float) -> np.ndarray | None:
        if self._video is not None:
            self._video.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
            ok, frame = self._video.read()
            return frame if ok else None
        visible = [image for at, image in self._images if at <= t]
        return visible[-1] if visible else None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
