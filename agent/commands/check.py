"""``heron check FILE_OR_URL``: evidence about where an image came from.

heron check photo.jpg            content credentials, generator markers, screen-replay cues
heron check https://…/a.png      the same for an image on the web (size and time limited)
heron check photo.jpg --json     everything found, as JSON

Each finding is evidence with a strength (strong, moderate, weak), never a
verdict: most images carry no provenance at all, and metadata is easy to strip.
The exit status is 0 whenever the check ran, whatever it found.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..config import Settings

HELP = "evidence about where an image came from: C2PA credentials, AI markers, screen replay"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help=HELP,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="FILE_OR_URL", help="an image file or http(s) URL")
    parser.add_argument("--json", action="store_true", help="print everything found as JSON")


def _report(result: Any) -> str:
    lines = [result.source]
    facts = [result.media_type or "unknown type"]
    if result.size:
        facts.append(f"{result.size[0]}×{result.size[1]}")
    lines[0] += f"  ({', '.join(facts)})"
    cred = result.credentials
    if cred is not None:
        if not cred.present:
            state = "none"
        elif cred.validation_state:
            state = f"present, {cred.validation_state.lower()}"
        else:
            state = "present, unreadable"
        lines.append(f"content credentials: {state}")
    lines.append("evidence:")
    width = max((len(s.strength) for s in result.signals), default=0)
    for signal in result.signals:
        lines.append(f"  {signal.strength:<{width}}  {signal.kind}: {signal.detail}")
    for note in result.notes:
        lines.append(f"note: {note}")
    lines.append(f"summary: {result.summary}")
    return "\n".join(lines)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from heron.tools.media_check import check_media

    result = check_media(args.source, config=settings.media)
    print(result.model_dump_json(indent=2) if args.json else _report(result))
    return 0
