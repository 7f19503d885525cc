"""A scripted heron session driven from Python: files instead of devices.

    python examples/scripted_session.py                 # offline: OCR reads the text
    python examples/scripted_session.py --base-url http://localhost:11434/v1 --model llava

The scenario (examples/scripted_session/scenario.toml) shows a platform sign, then
a milk carton, and asks about them with recorded speech and typed text. heron
transcribes the speech with Whisper, looks at the frame of that moment, answers
(offline with its local tools, or with the model you name) and speaks the answer
into WAV files. The scenario lists words each answer should contain, so the same
script is a regression test: it exits with 1 when an answer misses them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from heron.agent.config import load_settings
from heron.agent.runner import run_scenario
from heron.agent.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parent / "scripted_session" / "scenario.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint; offline without")
    parser.add_argument("--model", help="the model name at that endpoint")
    parser.add_argument("--out", type=Path, help="where the transcript and audio go")
    args = parser.parse_args(argv)

    vlm = {"base_url": args.base_url} if args.base_url else {}
    if args.model:
        vlm["model"] = args.model
    settings = load_settings(**({"vlm": vlm} if vlm else {}))
    report = asyncio.run(run_scenario(load_scenario(SCENARIO), settings, args.out, on_line=print))
    print(f"\ntranscript: {report.transcript}\nreplies:    {report.replies_wav}")
    for problem in report.errors + report.unmet:
        print(f"problem: {problem}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
