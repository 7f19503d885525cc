"""The ``heron`` command.

heron                 live if a camera and a microphone are present, else the demo
heron live            talk to heron while it watches the camera
heron run SCENARIO    a scripted session from files (demos, regression tests)
heron demo            the built-in scripted session, offline
heron transcribe F    speech to text of an audio file
heron devices         the cameras and audio devices heron can use
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from .config import Settings, load_settings
from .errors import HeronError

DESCRIPTION = """\
heron watches a camera, listens to a microphone, thinks with a vision-language
model and answers out loud. Without a model endpoint it runs offline and still
reads text aloud ("read this", "what does it say").

Point it at a model with HERON_VLM_BASE_URL / HERON_VLM_MODEL (or OPENAI_API_KEY
for OpenAI). Every setting can come from HERON_* variables or heron.toml:
see the README."""

EPILOG = """\
examples:
  heron                                   the main job: live, or the demo without devices
  heron live --camera 0                   webcam 0, default microphone and speaker
  heron live --camera http://phone:8080/video --base-url http://localhost:11434/v1 --model llava
  heron live --resume 20261122-101500-ab12   continue an earlier session
  heron run examples/scripted_session/scenario.toml
  heron transcribe meeting.flac
  heron devices
"""


def demo_scenario_path() -> Path:
    return Path(str(resources.files("heron.agent") / "data" / "demo" / "scenario.toml"))


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--base-url", help="OpenAI-compatible endpoint (HERON_VLM_BASE_URL)")
    group.add_argument("--model", help="model name at that endpoint (HERON_VLM_MODEL)")
    group.add_argument(
        "--offline", action="store_true", help="ignore any configured endpoint; local tools only"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heron",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv)")
    parser.add_argument("--config", metavar="FILE", help="settings file (default ./heron.toml)")
    parser.add_argument("--data-dir", help="where sessions and checkpoints go (HERON_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    live = sub.add_parser("live", help="talk to heron while it watches the camera")
    live.add_argument(
        "--camera", help="device index, video file, image or URL (HERON_CAMERA_SOURCE)"
    )
    live.add_argument("--no-camera", action="store_true", help="listen and answer without a camera")
    live.add_argument("--mic", help="input device name or index (HERON_MICROPHONE_DEVICE)")
    live.add_argument("--speaker", help="output device name or index (HERON_SPEAKER_DEVICE)")
    live.add_argument("--resume", metavar="ID", help="continue the session with this id")
    live.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    live.add_argument("--max-turns", type=int, metavar="N", help="stop after N turns")
    live.add_argument(
        "--mode",
        dest="listen_mode",
        choices=["always", "push_to_talk", "wake_phrase"],
        help="when speech is a turn (HERON_LISTEN_MODE)",
    )
    live.add_argument("--wake-phrase", help="the name said first (HERON_LISTEN_WAKE_PHRASE)")
    _add_model_options(live)

    run = sub.add_parser("run", help="play a scripted session (a scenario file)")
    run.add_argument("scenario", type=Path, help="scenario .toml file")
    run.add_argument("--out", type=Path, help="output folder (default: <data dir>/runs/<session>)")
    run.add_argument("--realtime", action="store_true", help="wait for each turn's time")
    _add_model_options(run)

    demo = sub.add_parser("demo", help="the built-in scripted session (offline)")
    demo.add_argument("--out", type=Path, help="output folder")

    transcribe = sub.add_parser("transcribe", help="print the words spoken in an audio file")
    transcribe.add_argument("audio", type=Path)
    transcribe.add_argument("--stt-model", help="tiny.en (bundled), a model name or a folder")

    sub.add_parser("devices", help="list cameras and audio devices")
    for module in _command_modules():
        module.add_parser(sub)
    return parser


COMMAND_MODULES = [
    # each module has ``add_parser(subparsers)`` and ``run(settings, args) -> int``,
    # and registers one command under the name of its module
    "memory",
    "describe",
    "check",
]


def _command_modules() -> list[Any]:
    return [importlib.import_module(f"heron.agent.commands.{name}") for name in COMMAND_MODULES]


def _device(value: str) -> str | int:
    return int(value) if value.isdigit() else value


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with the command line's options on top of every other source."""
    if args.config:
        if not Path(args.config).is_file():
            raise HeronError(f"settings file not found: {args.config}")
        os.environ["HERON_CONFIG"] = args.config
    options = {
        ("data_dir", None): args.data_dir,
        ("vlm", "base_url"): getattr(args, "base_url", None),
        ("vlm", "model"): getattr(args, "model", None),
        ("camera", "source"): getattr(args, "camera", None),
        ("microphone", "device"): _device(args.mic) if getattr(args, "mic", None) else None,
        ("speaker", "device"): _device(args.speaker) if getattr(args, "speaker", None) else None,
        ("stt", "model"): getattr(args, "stt_model", None),
        ("listen", "mode"): getattr(args, "listen_mode", None),
        ("listen", "wake_phrase"): getattr(args, "wake_phrase", None),
    }
    overrides: dict[str, Any] = {}
    for (section, key), value in options.items():
        if value is None:
            continue
        if key is None:
            overrides[section] = value
        else:
            overrides.setdefault(section, {})[key] = value
    if getattr(args, "no_camera", False):
        overrides.setdefault("camera", {})["source"] = None
    settings = load_settings(**overrides)
    return settings.without_model() if getattr(args, "offline", False) else settings


def _run_scenario(settings: Settings, path: Path, out: Path | None, realtime: bool) -> int:
    from .runner import run_scenario
    from .scenario import load_scenario

    scenario = load_scenario(path)
    report = asyncio.run(run_scenario(scenario, settings, out, realtime=realtime, on_line=print))
    print(f"\ntranscript: {report.transcript}")
    print(f"reply audio: {report.replies_wav}")
    print(f"session log: {report.session_dir / 'log.jsonl'}")
    for problem in report.errors + report.unmet:
        print(f"problem: {problem}", file=sys.stderr)
    return 0 if report.ok else 1


def _devices_present(settings: Settings) -> tuple[bool, bool]:
    from .audio_source import list_audio_devices
    from .camera import describe_source, list_cameras

    source = settings.camera.source
    camera = source is not None and (describe_source(source) != "device" or bool(list_cameras()))
    try:
        microphone = any(d["max_input_channels"] > 0 for d in list_audio_devices())
    except HeronError:
        microphone = False
    return camera, microphone


def _main_job(settings: Settings) -> int:
    camera, microphone = _devices_present(settings)
    if camera and microphone:
        return _live(settings, argparse.Namespace(resume=None, duration=None, max_turns=None))
    missing = [
        name for name, present in (("camera", camera), ("microphone", microphone)) if not present
    ]
    model = "a model endpoint" if settings.vlm.enabled else "no model endpoint"
    print(
        f"No {' or '.join(missing)} found ({model} configured): running the built-in "
        "scripted session offline instead. Use `heron live` once a camera and a microphone "
        "are connected."
    )
    return _run_scenario(settings.without_model(), demo_scenario_path(), None, realtime=False)


def _live(settings: Settings, args: argparse.Namespace) -> int:
    from .live import LiveOptions, run_live

    options = LiveOptions(resume=args.resume, duration_s=args.duration, max_turns=args.max_turns)
    try:
        return asyncio.run(run_live(settings, options))
    except KeyboardInterrupt:
        return 130


def _transcribe(settings: Settings, audio: Path) -> int:
    from .stt import Transcriber

    transcript = Transcriber(settings.stt).transcribe_file(audio)
    print(transcript.text)
    return 0


def _devices() -> int:
    from .audio_source import list_audio_devices
    from .camera import list_cameras

    cameras = list_cameras()
    print("cameras:", ", ".join(str(i) for i in cameras) if cameras else "none found")
    print("audio devices:")
    for device in list_audio_devices():
        roles = [role for role in ("default_input", "default_output") if device[role]]
        marks = f"  [{', '.join(r.replace('_', ' ') for r in roles)}]" if roles else ""
        print(
            f"  {device['index']:>3}  {device['name']}  "
            f"(in {device['max_input_channels']}, out {device['max_output_channels']}, "
            f"{device['default_samplerate']:.0f} Hz){marks}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format=("%(asctime)s " if args.verbose else "") + "%(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = _settings(args)
        if args.command is None:
            return _main_job(settings)
        if args.command == "live":
            return _live(settings, args)
        if args.command == "run":
            return _run_scenario(settings, args.scenario, args.out, args.realtime)
        if args.command == "demo":
            return _run_scenario(
                settings.without_model(), demo_scenario_path(), args.out, realtime=False
            )
        if args.command == "transcribe":
            return _transcribe(settings, args.audio)
        if args.command == "devices":
            return _devices()
        if args.command in COMMAND_MODULES:
            module = importlib.import_module(f"heron.agent.commands.{args.command}")
            return int(module.run(settings, args))
    except HeronError as exc:
        print(f"heron: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
