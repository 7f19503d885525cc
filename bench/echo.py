"""Echo cancellation: does heron hear itself while it talks, and what does it cost?

heron speaks replies (espeak-ng) through sounddevice into a PulseAudio null sink
for ``--seconds`` (default 120) while the sink's monitor is its microphone, the
way ``heron live`` runs with barge-in: the microphone stays open while heron
speaks. (``--sink heron`` plays through heron's own low-latency sink instead of a
high-latency stream; on a loaded machine it underflows and drops audio.) Every
microphone chunk goes live through the echo canceller (the default: WebRTC AEC3,
with the linear filter's output in double talk), AEC3 alone (``keep_user_voice``
off), the built-in NLMS filter and no cancellation; Silero VAD with
heron's utterance segmenter listens to each output, its threshold following the
fallback policy.

Prints the machine, then per backend: utterances found in heron's own voice
(target 0), the echo return loss enhancement per reply (median, p10, min; ERLE =
microphone power over output power while heron speaks), and the processing cost
per 10 ms frame and per second of audio, measured live and again offline on the
same recording without other work running.

    HERON_TEST_SINK=bench-echo python bench/echo.py --seconds 120
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from heron.agent.config import EchoConfig, TTSConfig, VADConfig
from heron.agent.echo import EchoCanceller
from heron.agent.events import SAMPLE_RATE, AudioChunk
from heron.agent.tts import Synthesis, Synthesizer
from heron.agent.vad import SpeechStarted, UtteranceSegmenter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test support code
from machine_info import describe_machine

from tests.support.echo_rig import Take, speak_and_listen
from tests.support.pulse import VirtualAudio, ensure_virtual_audio

REPLIES = [
    "The kitchen is on your left, and the red kettle is next to the sink.",
    "I can see two people near the window. One of them is holding a blue umbrella.",
    "Your keys are on the table by the door, beside a small green plant.",
    "The label says: take two tablets every morning with a glass of water.",
    "It is a quarter past three, and the bus to the station leaves at four.",
    "There is a step down just ahead of you, about two metres away.",
    "The letter is from the library. Your books are due back on Friday.",
    "I remember you put the charger in the top drawer of the desk yesterday.",
    "The sky is clear and the street is quiet. A cyclist is passing on the right.",
    "That is a can of tomato soup. The price on the shelf is one euro twenty.",
]
BACKENDS = {
    "webrtc": EchoConfig(),
    "aec3-only": EchoConfig(backend="webrtc", keep_user_voice=False),
    "nlms": EchoConfig(backend="nlms"),
    "off": EchoConfig(backend="off"),
}


machine = describe_machine


def count_utterances(audio: np.ndarray, t0: float) -> int:
    segmenter = UtteranceSegmenter(VADConfig())
    found = 0
    for i in range(0, len(audio), 320):
        events = segmenter.push(AudioChunk(audio[i : i + 320], t0 + i / SAMPLE_RATE))
        found += sum(isinstance(e, SpeechStarted) for e in events)
    return found


def per_reply_erle(take: Take, name: str) -> list[float]:
    values = []
    for start, end in take.spans:
        lo, hi = max(0, take.index(start)), max(0, take.index(end + 0.3))
        raw, out = take.raw[lo:hi], take.outputs[name][lo:hi]
        if len(raw) and float(np.mean(raw**2)) > 1e-5:
            values.append(float(10 * np.log10(np.sum(raw**2) / max(float(np.sum(out**2)), 1e-12))))
    return values


def offline_cost(take: Take, config: EchoConfig, seconds: float = 20.0) -> float:
    """CPU seconds per second of audio, on the recording, alone."""
    canceller = EchoCanceller(config)
    # The reference as heron handed it over: the canceller finds the delay itself.
    end = take.t0 + seconds
    for (start, _), reply in zip(take.spans, take.replies, strict=False):
        if start < end:
            canceller.add_reference(reply.samples, reply.sample_rate, start)
    raw = take.raw[: int(seconds * SAMPLE_RATE)]
    started = time.thread_time()
    for i in range(0, len(raw), 320):
        canceller.process(raw[i : i + 320], take.t0 + i / SAMPLE_RATE)
    return (time.thread_time() - started) / (len(raw) / SAMPLE_RATE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long heron talks")
    parser.add_argument(
        "--sink",
        choices=["steady", "heron"],
        default="steady",
        help="play through a high-latency stream (steady) or heron's own low-latency sink",
    )
    args = parser.parse_args()

    devices = ensure_virtual_audio()
    if not isinstance(devices, VirtualAudio):
        print(f"no virtual audio devices: {devices}")
        return 1
    print(f"machine: {machine()}")
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        print(f"load average before: {load} (other work slows the audio device's thread)")
    except OSError:
        pass
    synth = Synthesizer(TTSConfig())
    replies: list[Synthesis] = []
    total = 0.0
    while total < args.seconds:
        reply = synth.synthesize(REPLIES[len(replies) % len(REPLIES)])
        replies.append(reply)
        total += reply.duration + 0.5
    synth.close()
    print(
        f"heron speaks {len(replies)} replies, {total:.0f} s, into sink {devices.sink!r} "
        f"through the {args.sink} player\n"
    )

    cancellers = {name: EchoCanceller(config) for name, config in BACKENDS.items()}
    take = speak_and_listen(
        devices.device,
        replies,
        cancellers,
        segmenter=UtteranceSegmenter(VADConfig()),
        gap_s=0.5,
        segment_all=True,
        steady=args.sink == "steady",
    )
    seconds = len(take.raw) / SAMPLE_RATE
    rushed = sum(
        p.t_end - p.t_start < 0.8 * r.duration
        for p, r in zip(take.played, take.replies, strict=True)
    )
    print(f"recorded {seconds:.1f} s of microphone audio; {len(take.played)} replies played,")
    print(f"{rushed} of them faster than real time (output underflows: audio dropped)\n")
    print("utterances found in heron's own voice (target 0): live, with the fallback")
    print("threshold policy, and afterwards on the same output at the base VAD threshold")
    print(
        f"{'backend':<10} {'policy':>6} {'base':>5}   ERLE per reply dB: {'median':>6} {'p10':>6}"
        f" {'min':>6}   CPU per 10 ms live / alone   CPU per s live / alone"
    )
    for name, config in BACKENDS.items():
        heard = count_utterances(take.outputs[name], take.t0)
        erle = sorted(per_reply_erle(take, name))
        stats = take.stats[name]
        live = stats.seconds_processing / max(stats.frames, 1) * 1e6
        alone = offline_cost(take, config)
        median, p10, low = statistics.median(erle), erle[len(erle) // 10], erle[0]
        print(
            f"{name:<10} {take.heard[name]:>6} {heard:>5}   {'':>17} {median:>6.1f} {p10:>6.1f}"
            f" {low:>6.1f}   {live:>7.0f} / {alone * 1e4:>4.0f} µs"
            f"   {live / 10:>9.1f} / {alone * 1e3:>4.1f} ms"
        )
    print(f"\nmeasured echo delay behind the sink's timestamps: {take.stats['webrtc'].delay_ms} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
