"""``heron describe IMAGE_OR_VIDEO``: say what is in a picture or a video.

heron describe photo.jpg            print a short description
heron describe clip.mp4 --speak     describe each scene of a video, and say it aloud
heron describe photo.jpg --json     the description and every tool's findings, as JSON

The local tools (text, codes, people, colours, light) look first; with a model
endpoint configured the vision model writes the description grounded in their
findings, otherwise the findings are spoken as they are. For a video, the frames
are split into scenes where the picture changes, and the sharpest frame of each
scene is described.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import Settings
from ..errors import HeronError

HELP = "describe an image or a video (printed, and spoken with --speak)"

MAX_SCENES = 5
"""A long video is described by at most this many scenes (the first ones)."""

MAX_SAMPLES = 600
"""Frames looked at in a video; longer videos are sampled evenly."""

SCENE_CHANGE = 28.0
"""Mean absolute difference (0..255) of 32×24 thumbnails that starts a new scene."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "describe",
        help=HELP,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("media", type=Path, metavar="IMAGE_OR_VIDEO")
    parser.add_argument("--speak", action="store_true", help="say the description aloud")
    parser.add_argument("--wav", type=Path, help="also write the spoken description to a WAV")
    parser.add_argument("--json", action="store_true", help="print JSON with every finding")
    group = parser.add_argument_group("model")
    group.add_argument("--base-url", help="OpenAI-compatible endpoint (HERON_VLM_BASE_URL)")
    group.add_argument("--model", help="model name at that endpoint (HERON_VLM_MODEL)")
    group.add_argument("--offline", action="store_true", help="local tools only")


@dataclass
class Shot:
    """One frame chosen to describe: the image and where it is in the video (seconds)."""

    image: np.ndarray
    at_s: float | None


def _thumbnail(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    return cv2.resize(grey, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


def _sharpness(image: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = min(1.0, 320 / max(grey.shape[:2]))
    if scale < 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def video_shots(path: Path) -> list[Shot]:
    """The sharpest frame of each scene of the video at ``path`` (up to MAX_SCENES)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise HeronError(f"cannot open {path} as an image or a video")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = max(1, total // MAX_SAMPLES) if total > 0 else 1
        scenes: list[tuple[float, Shot]] = []
        previous: np.ndarray | None = None
        index = 0
        while len(scenes) <= MAX_SCENES:
            ok, frame = cap.read()
            if not ok or frame is None:
                break  # the end of the video, or a frame that cannot be decoded
            if index % step == 0:
                thumb = _thumbnail(frame)
                changed = previous is None or float(np.abs(thumb - previous).mean()) > SCENE_CHANGE
                score = _sharpness(frame)
                shot = Shot(frame, round(index / fps, 2))
                if changed:
                    scenes.append((score, shot))
                elif score > scenes[-1][0]:
                    scenes[-1] = (score, shot)
                previous = thumb
            index += 1
    finally:
        cap.release()
    if not scenes:
        raise HeronError(f"{path} has no frames that can be read")
    return [shot for _, shot in scenes[:MAX_SCENES]]


def load_shots(path: Path) -> list[Shot]:
    """The frames to describe: the image itself, or the scenes of a video."""
    if not path.is_file():
        raise HeronError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise HeronError(f"{path} is empty")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is not None:
        return [Shot(image, None)]
    return video_shots(path)


def _speak(settings: Settings, text: str, *, speaker: bool, wav: Path | None) -> None:
    from ..playback import Speaker, SpeakerSink, WavFileSink
    from ..tts import Synthesizer

    synthesizer = Synthesizer(settings.tts)
    try:
        if wav is not None:
            sink = WavFileSink(wav)
            try:
                Speaker(synthesizer, sink).say(text)
            finally:
                sink.close()
        if speaker:
            out = SpeakerSink(settings.speaker)
            try:
                Speaker(synthesizer, out).say(text)
            finally:
                out.close()
    finally:
        synthesizer.close()


def run(settings: Settings, args: argparse.Namespace) -> int:
    from heron.tools.scene import DescribeSceneTool

    from ..vlm import VLMClient

    overrides = {k: v for k, v in (("base_url", args.base_url), ("model", args.model)) if v}
    if overrides:
        settings = settings.model_copy(update={"vlm": settings.vlm.model_copy(update=overrides)})
    if args.offline:
        settings = settings.without_model()
    shots = load_shots(args.media)
    tool = DescribeSceneTool()
    vlm = VLMClient(settings.vlm) if settings.vlm.enabled else None
    described = [tool.describe(shot.image, vlm=vlm) for shot in shots]
    spoken: list[str] = []
    for shot, scene in zip(shots, described, strict=True):
        prefix = "" if shot.at_s is None or len(shots) == 1 else f"At {_clock(shot.at_s)}: "
        spoken.append(prefix + scene.description)
        if scene.note:
            print(f"heron: {scene.note}; described with the local tools", file=sys.stderr)
    if args.json:
        items = [
            {"at_s": shot.at_s, **scene.model_dump(mode="json")}
            for shot, scene in zip(shots, described, strict=True)
        ]
        print(json.dumps(items[0] if len(items) == 1 else items, indent=2))
    else:
        print("\n".join(spoken))
    if args.speak or args.wav:
        _speak(settings, " ".join(spoken), speaker=args.speak, wav=args.wav)
    return 0


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"
