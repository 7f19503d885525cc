"""Keyframes and the short-text channel: what seeing costs, and how fast new text is said.

Three figures, on 640x480 frames:

1. **analysis** — per-frame analysis (difference hash, sharpness, focus, brightness,
   block grid) on one core (``sched_setaffinity`` to one CPU, OpenCV with one
   thread), over real photographs (scikit-image) with camera noise; frames/s,
   median of the runs. Target: at least 60 frames/s.
2. **images sent** — a 5-minute scene at 15 fps with 10 questions (simulated clock:
   frames are analysed for real, their timestamps are virtual), through a real
   :class:`~heron.agent.session.Session` and the real ``openai`` client against the
   scripted OpenAI-compatible server on loopback; counts the images the model got
   and their estimated image tokens, beside fixed 1 fps sampling (300 images).
   Three scenes: static on a tripod, static held in a hand (±2 px jitter), and one
   that changes once halfway. Target (static): at most 11 images.
3. **short-text latency** — an MJPEG camera on loopback (a real
   :class:`~heron.agent.camera.VideoSource` over HTTP), new text put in view, to the
   first audio of its speech (espeak-ng synthesis; the clock stops when the first
   block reaches the output, a WAV file by default, PulseAudio with ``--device
   pulse``); median and p90 over the trials. Target: median at most 1.0 s.

    python bench/keyframes.py            # about a minute
    python bench/keyframes.py --trials 20 --device pulse

Prints the machine, each figure, medians and ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage import data

from heron.agent.camera import VideoSource
from heron.agent.config import CameraConfig, KeyframeConfig, TTSConfig, load_settings
from heron.agent.describer import Announcer, SceneDescriber, build_channels
from heron.agent.describer_channels import Say
from heron.agent.events import VideoFrame
from heron.agent.keyframes import (
    AnalysedFrame,
    FrameRing,
    Keyframe,
    KeyframeSelector,
    analyse,
)
from heron.agent.playback import AudioSink, WavFileSink
from heron.agent.session import Session
from heron.agent.tts import Synthesizer
from heron.memory.session_log import read_session_log
from heron.tools.ocr import TextReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test support code
from machine_info import describe_machine

from tests.support.mjpeg import MJPEGServer
from tests.support.render import render_text_image
from tests.support.vlm_server import ScriptedVLM, Step

POOL = 40
"""Distinct noisy views generated per scene (making 4500 takes longer than analysing them)."""

SIGNS = [
    ["Platform 4"],
    ["Fresh milk"],
    ["Coffee shop"],
    ["Way out"],
    ["Pharmacy"],
    ["Toilets", "Second floor"],
    ["Bus stop"],
    ["Keep left"],
    ["Opening hours"],
    ["Mind the step"],
    ["Ticket office"],
    ["Lift out of order"],
]


def machine() -> str:
    return describe_machine(f"OpenCV {cv2.__version__}")


def photos() -> list[np.ndarray]:
    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "page", "text"):
        rgb = getattr(data, name)()
        if rgb.ndim == 2:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
        out.append(cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (640, 480)))
    return out


def camera_noise(image: np.ndarray, rng: np.random.Generator, shift: int = 0) -> np.ndarray:
    """A camera's view of ``image``: sensor noise, an optional hand tremor, JPEG."""
    if shift:
        dx, dy = rng.integers(-shift, shift + 1, size=2)
        matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        image = cv2.warpAffine(image, matrix, (640, 480), borderMode=cv2.BORDER_REFLECT)
    noisy = np.clip(image.astype(np.int16) + rng.normal(0, 3, image.shape), 0, 255)
    ok, jpeg = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded)


# -- 1. analysis speed -----------------------------------------------------------------


def bench_analysis(runs: int, frames_per_run: int) -> dict[str, float]:
    rng = np.random.default_rng(1)
    frames = [camera_noise(p, rng) for p in photos() for _ in range(5)]
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    threads = cv2.getNumThreads()
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
    cv2.setNumThreads(1)
    try:
        for frame in frames:  # warm caches
            analyse(frame)
        rates = []
        for _ in range(runs):
            t0 = time.perf_counter()
            for i in range(frames_per_run):
                analyse(frames[i % len(frames)])
            rates.append(frames_per_run / (time.perf_counter() - t0))
    finally:
        cv2.setNumThreads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)
    return {"median_fps": statistics.median(rates), "min_fps": min(rates)}


# -- 2. images sent over a 5-minute scene -----------------------------------------------


async def scene_session(
    scenes: list[np.ndarray], shift: int, base_url: str, data_dir: Path
) -> dict[str, Any]:
    """5 minutes at 15 fps, 10 questions; returns images sent and their tokens."""
    fps, minutes, questions = 15.0, 5.0, 10
    clock_t = {"t": 0.0}
    config = KeyframeConfig()
    ring = FrameRing(config)
    selector = KeyframeSelector(ring, config, clock=lambda: clock_t["t"])
    rng = np.random.default_rng(7)
    settings = load_settings(
        vlm={"base_url": base_url, "model": "scripted", "max_retries": 0},
        data_dir=data_dir,
    )
    total = int(minutes * 60 * fps)
    asked_at = [int((k + 0.5) * total / questions) for k in range(questions)]

    async def get_keyframe(t_question: float | None) -> Keyframe:
        return await asyncio.to_thread(selector.select, t_question)

    # a pool of noisy views per scene, drawn at random: every frame is still analysed
    pools = [[camera_noise(scene, rng, shift) for _ in range(POOL)] for scene in scenes]
    analysis_s = 0.0
    async with Session(settings, get_keyframe=get_keyframe) as session:
        for n in range(total):
            t = n / fps
            pool = pools[min(len(scenes) - 1, n * len(scenes) // total)]
            image = pool[int(rng.integers(POOL))]
            t0 = time.perf_counter()
            ring.add(AnalysedFrame(VideoFrame(image, t, 0.0, n, "bench"), analyse(image)))
            analysis_s += time.perf_counter() - t0
            if n in asked_at:
                # the question began 2 s ago; its frame comes from after that
                clock_t["t"] = t
                await session.turn("What is in front of me?", t_question=t - 2.0)
        session_id = session.id
    log = list(read_session_log(data_dir / "sessions" / session_id / "log.jsonl"))
    frames = [r for r in log if r["kind"] == "frame"]
    sent = [r for r in frames if not r.get("reused")]
    tokens_per_request = [r.get("image_tokens", 0) for r in log if r["kind"] == "think"]
    return {
        "questions": len(frames),
        "images": len(sent),
        "new_image_tokens": sum(r["image_tokens"] for r in sent),
        "request_image_tokens": tokens_per_request,
        "frames": total,
        "analysis_fps": total / analysis_s,
    }


def bench_images(data_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    astronaut, cat = photos()[0], photos()[2]
    cases = [
        ("static, tripod", [astronaut], 0),
        ("static, hand-held (±2 px)", [astronaut], 2),
        ("one change halfway", [astronaut, cat], 0),
    ]
    results = []
    with ScriptedVLM(default=Step(text="A person in a spacesuit.")) as vlm:
        for index, (name, scenes, shift) in enumerate(cases):
            folder = data_dir / f"case{index}"
            results.append((name, asyncio.run(scene_session(scenes, shift, vlm.base_url, folder))))
    return results


# -- 3. short-text latency ---------------------------------------------------------------


def bench_short_text(trials: int, device: str) -> dict[str, Any]:
    shown = {"image": render_text_image([])}
    blank = shown["image"]
    config = KeyframeConfig()
    reader = TextReader()
    reader.warmup()
    latencies: list[float] = []
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, MJPEGServer(lambda: shown["image"], fps=15) as srv:
        camera = VideoSource(CameraConfig(source=srv.url))
        sink: AudioSink
        if device == "pulse":
            from heron.agent.config import SpeakerConfig
            from heron.agent.playback import SpeakerSink
            from tests.support.pulse import ensure_virtual_audio

            audio = ensure_virtual_audio()  # a null sink (HERON_TEST_SINK names it)
            if isinstance(audio, str):
                raise SystemExit(f"--device pulse: {audio}")
            sink = SpeakerSink(SpeakerConfig(device=audio.device), keep_alive_s=math.inf)
        else:
            sink = WavFileSink(Path(tmp) / "said.wav")
        from heron.agent.keyframes import KeyframeTracker

        with camera, Synthesizer(TTSConfig()) as synth:
            warm = synth.synthesize("ready")
            sink.play(warm.samples[:2000], warm.sample_rate)  # opens the device, as a session does
            announcer = Announcer(synth, sink)
            tracker = KeyframeTracker(camera, config).start()
            describer = SceneDescriber(tracker, build_channels(config, reader=reader), announcer)
            describer.start()
            try:
                camera.wait_for_frame(timeout=10)
                for trial in range(trials):
                    lines = SIGNS[trial % len(SIGNS)]
                    shown["image"] = blank
                    time.sleep(1.2)
                    announcer.wait_idle(10)
                    before = len(announcer.history)
                    t_shown = time.monotonic()
                    shown["image"] = render_text_image(lines, scale=2.0, thickness=3)
                    deadline = t_shown + 5.0
                    found = None
                    while time.monotonic() < deadline and found is None:
                        for spoken in announcer.history[before:]:
                            if isinstance(spoken.output, Say) and spoken.output.text == lines[0]:
                                found = spoken
                        time.sleep(0.01)
                    if found is None or found.t_first_audio is None:
                        missed.append(lines[0])
                        continue
                    latencies.append(found.t_first_audio - t_shown)
            finally:
                describer.stop()
                tracker.stop()
                announcer.close()
                sink.close()
            read, analysed = camera.frames_read, tracker.ring.analysed
    ordered = sorted(latencies)
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)] if ordered else float("nan")
    return {
        "latencies": latencies,
        "median": statistics.median(latencies) if latencies else float("nan"),
        "p90": p90,
        "missed": missed,
        "frames_read": read,
        "frames_analysed": analysed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=2000, help="frames per analysis run")
    parser.add_argument("--trials", type=int, default=12, help="short-text trials")
    parser.add_argument(
        "--device",
        choices=("wav", "pulse"),
        default="wav",
        help="speech to a WAV file, or to a PulseAudio null sink (set HERON_TEST_SINK)",
    )
    args = parser.parse_args()

    print(f"machine: {machine()}")
    print(f"affinity: {len(os.sched_getaffinity(0))} CPUs available to this process\n")

    speed = bench_analysis(args.runs, args.frames)
    print("1. per-frame analysis, 640x480, one core, one OpenCV thread")
    print(
        f"   median {speed['median_fps']:.0f} frames/s (slowest run {speed['min_fps']:.0f}); "
        f"target >= 60: {speed['median_fps'] / 60:.1f}x the target\n"
    )

    with tempfile.TemporaryDirectory() as tmp:
        cases = bench_images(Path(tmp))
    print("2. 5-minute scene at 15 fps, 10 questions, through Session + openai client")
    print("   fixed 1 fps sampling would send 300 images")
    for name, result in cases:
        tokens = result["request_image_tokens"]
        print(
            f"   {name:28s}: {result['images']:2d} images sent for {result['questions']} "
            f"questions ({300 / max(1, result['images']):.0f}x fewer than 1 fps); "
            f"{result['new_image_tokens']} new image tokens; per request "
            f"median {statistics.median(tokens) if tokens else 0:.0f} image tokens; "
            f"analysis {result['analysis_fps']:.0f} frames/s"
        )
    print("   target (static): <= 11 images\n")

    latency = bench_short_text(args.trials, args.device)
    print(
        f"3. short text, MJPEG camera on loopback at 15 fps, speech to "
        f"{'PulseAudio' if args.device == 'pulse' else 'a WAV file'}"
    )
    shown = ", ".join(f"{x:.2f}" for x in latency["latencies"])
    print(f"   new text in view -> first audio, s: {shown}")
    print(
        f"   median {latency['median']:.2f} s, p90 {latency['p90']:.2f} s over "
        f"{len(latency['latencies'])} trials; missed: {latency['missed'] or 'none'}; "
        f"target median <= 1.0 s: {latency['median'] / 1.0:.2f} of the target"
    )
    read, analysed = latency["frames_read"], latency["frames_analysed"]
    print(
        f"   camera read {read} frames; the analysis thread took {analysed} of them "
        f"({analysed / max(1, read):.0%}; it skips to the newest when behind)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
