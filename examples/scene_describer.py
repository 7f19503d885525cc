"""The accessibility scene describer: point a camera, hear what is there. No screen needed.

    python examples/scene_describer.py                       # camera 0, speaker, microphone
    python examples/scene_describer.py --camera http://phone.local:8080/video
    python examples/scene_describer.py --camera street.mp4 --wav said.wav --no-voice

Channels, by key (1-7) or by saying their name:
  1 text      reads short text as soon as it comes into view, once while it stays
  2 document  reads a whole page
  3 codes     QR codes and product barcodes
  4 people    how many people face the camera, and where
  5 colour    the main colours
  6 light     a tone whose pitch follows the brightness
  7 scene     a short description from the local tools
Also: + / - or "faster" / "slower" (speech rate), v or "more detail" / "less
detail" (verbosity), s or "stop" (pause), q or "quit".
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from heron.agent.config import load_settings
from heron.agent.describer_app import DescriberOptions, run_describer
from heron.agent.describer_channels import CHANNELS
from heron.agent.errors import HeronError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", help="device index, video or image file, or stream URL")
    parser.add_argument("--channel", choices=CHANNELS, default="text")
    parser.add_argument("--verbosity", choices=("brief", "normal", "detailed"), default="normal")
    parser.add_argument("--rate", type=int, help="speech rate in words per minute")
    parser.add_argument("--wav", type=Path, help="write speech to this WAV file, not the speaker")
    parser.add_argument("--no-voice", action="store_true", help="no spoken commands")
    parser.add_argument("--no-keys", action="store_true", help="do not read keys from stdin")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)

    overrides: dict[str, Any] = {}
    if args.camera is not None:
        overrides["camera"] = {"source": args.camera}
    if args.rate is not None:
        overrides["tts"] = {"rate": args.rate}
    options = DescriberOptions(
        channel=args.channel,
        verbosity=args.verbosity,
        wav=args.wav,
        voice=not args.no_voice,
        keys=not args.no_keys,
        duration_s=args.duration,
    )
    try:
        return run_describer(load_settings(**overrides), options)
    except HeronError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
