"""Does heron ever answer its own voice? A conversation through the virtual devices.

``heron live`` runs as a user would run it, with PulseAudio's null sink as its
speaker and the sink's monitor as its microphone, so every word heron says comes
straight back into its microphone. A scripted model on loopback answers every
question with a long reply (about 15 s of speech). Questions are played into the
microphone every ``--every`` seconds for ``--minutes``; some of them talk over a
reply (barge-in). At the end the session log says how many turns there were, and
how many came from heron's own voice: any turn whose words are not one of the
questions played.

    python bench/self_hearing.py --minutes 2

Prints the machine, the questions played, the turns taken, barge-ins and the
own-voice turns (target 0).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test support code
from heron.memory.session_log import read_session_log
from tests.support.mjpeg import MJPEGServer
from tests.support.pulse import ensure_virtual_audio
from tests.support.render import render_text_image
from tests.support.vlm_server import ScriptedVLM, Step
from tests.support.words import word_errors, words

QUESTIONS = [
    "Please read the sign.",
    "What time does the shop open?",
    "Describe the kitchen for me.",
    "Is there anything on the table?",
]
REPLY = (
    "The kitchen has a white table with three green bottles on it. "
    "Behind the table there is a window with blue curtains. "
    "On the left there is a tall shelf full of cookbooks and jars. "
    "The floor is made of light wooden boards and there is a red rug by the door. "
    "A kettle stands on the stove next to a bowl of apples."
)


def is_own_voice(text: str) -> bool:
    """Mostly words of heron's reply that are in none of the questions."""
    heard = words(text)
    asked = {w for q in QUESTIONS for w in words(q)}
    replied = set(words(REPLY)) - asked
    return bool(heard) and sum(w in replied for w in heard) / len(heard) >= 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--every", type=float, default=11.0, help="seconds between questions")
    args = parser.parse_args()
    audio = ensure_virtual_audio()
    if isinstance(audio, str):
        print(f"cannot run: {audio}")
        return 2
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    work = Path(tempfile.mkdtemp(prefix="heron-self-hearing-"))
    wavs = []
    for index, question in enumerate(QUESTIONS):
        path = work / f"q{index}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), question], check=True)
        wavs.append(path)
    sign = render_text_image(["NO PARKING AT ANY TIME"])
    seconds = args.minutes * 60
    with MJPEGServer(lambda: sign, fps=10) as camera, ScriptedVLM(default=Step(text=REPLY)) as vlm:
        command = [
            sys.executable, "-m", "heron.agent.cli", "--data-dir", str(work / "data"), "live",
            "--camera", camera.url, "--mic", audio.device, "--speaker", audio.device,
            "--base-url", vlm.base_url, "--model", "scripted", "--duration", str(seconds + 20),
        ]  # fmt: skip
        env = {**os.environ, "HERON_MEMORY_ENABLED": "false", "HERON_VLM_MAX_RETRIES": "0"}
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("listening"):
                break
        played = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            index = len(played) % len(QUESTIONS)
            subprocess.run(["paplay", f"--device={audio.sink}", str(wavs[index])], check=True)
            played.append(QUESTIONS[index])
            time.sleep(max(0.0, args.every - 1.5))
        time.sleep(5)
        proc.send_signal(2)
        proc.communicate(timeout=60)
    (log_path,) = (work / "data" / "sessions").glob("*/log.jsonl")
    log = list(read_session_log(log_path))
    turns = [r["text"] for r in log if r["kind"] == "utterance"]
    own = [t for t in turns if is_own_voice(t)]
    garbled = [t for t in turns if t not in own and min(word_errors(q, t) for q in QUESTIONS) > 1]
    ignored = [r for r in log if r["kind"] == "ignored"]
    barge_ins = sum(1 for r in log if r["kind"] == "barge_in")
    echo = [r for r in log if r["kind"] == "echo"]
    print(f"{args.minutes:g} min through the virtual devices, a question every {args.every:g} s")
    print(f"  questions played: {len(played)}")
    print(f"  turns taken: {len(turns)} ({barge_ins} of them cut into a reply: barge-in)")
    print(f"  turns from heron's own voice (target 0): {len(own)} {own}")
    print(f"  questions heard with more than one word wrong (talking over heron): {garbled}")
    print(
        f"  utterances dropped as its own words: {sum('own voice' in r['reason'] for r in ignored)}"
    )
    if echo:
        print(f"  echo canceller: {echo[-1].get('backend')}, ERLE {echo[-1].get('erle_db')} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
