"""Keyframes: per-frame analysis on real photographs, the selection rules with a
controlled clock, the camera path on a real video file, and the turn graph sending a
frame once per scene to the scripted model server through the real openai client."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from heron.agent.camera import VideoSource
from heron.agent.config import CameraConfig, KeyframeConfig, load_settings
from heron.agent.errors import CameraError
from heron.agent.events import VideoFrame
from heron.agent.frame_budget import MIN_QUALITY, encode_within_budget
from heron.agent.keyframes import (
    AnalysedFrame,
    FrameRing,
    Keyframe,
    KeyframeSelector,
    KeyframeTracker,
    analyse,
    hash_distance,
    is_blurred,
    same_scene,
)
from heron.agent.session import Session
from heron.memory.session_log import read_session_log
from tests.support.vlm_server import ScriptedVLM, Step


def photo(name: str) -> np.ndarray:
    rgb = getattr(data, name)()
    if rgb.ndim == 2:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (640, 480))


ASTRONAUT = photo("astronaut")
CAT = photo("chelsea")
COFFEE = photo("coffee")
CONFIG = KeyframeConfig()


def camera_noise(image: np.ndarray, seed: int) -> np.ndarray:
    """The same view as a real camera sends it again: sensor noise, then JPEG."""
    rng = np.random.default_rng(seed)
    noisy = np.clip(image.astype(np.int16) + rng.normal(0, 3, image.shape), 0, 255)
    ok, jpeg = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert decoded is not None
    return np.asarray(decoded)


class Clock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def item(image: np.ndarray, t: float, index: int = 0) -> AnalysedFrame:
    frame = VideoFrame(image, t_capture=t, wall_time=0.0, index=index, source="test")
    return AnalysedFrame(frame, analyse(image))


# -- analysis -------------------------------------------------------------------------


def test_sharp_photo_scores_sharper_than_its_blurred_copy() -> None:
    sharp = analyse(ASTRONAUT)
    soft = analyse(cv2.GaussianBlur(ASTRONAUT, (0, 0), 2))
    blurred = analyse(cv2.GaussianBlur(ASTRONAUT, (0, 0), 5))
    assert sharp.sharpness > 2 * soft.sharpness > 4 * blurred.sharpness
    assert not is_blurred(sharp, CONFIG)
    assert is_blurred(blurred, CONFIG)
    # blurring keeps the layout: the same scene by hash
    assert hash_distance(sharp, blurred) < CONFIG.change_bits


def test_dark_and_bright_views() -> None:
    dark = analyse((COFFEE * 0.15).astype(np.uint8))
    normal = analyse(COFFEE)
    bright = analyse(np.clip(COFFEE.astype(np.int16) + 120, 0, 255).astype(np.uint8))
    assert dark.brightness < 0.12 < normal.brightness < bright.brightness
    assert bright.brightness > 0.75
    # a dim but sharp view is not called blurred
    assert not is_blurred(dark, CONFIG)
    assert not same_scene(normal, dark, CONFIG)


def test_same_view_again_is_the_same_scene_and_another_photo_is_not() -> None:
    a, b = analyse(camera_noise(ASTRONAUT, 1)), analyse(camera_noise(ASTRONAUT, 2))
    assert same_scene(a, b, CONFIG)
    assert not same_scene(a, analyse(CAT), CONFIG)
    # new text on an otherwise unchanged sign is a change even when the hash misses it
    sign = np.full((480, 640, 3), 255, np.uint8)
    exit_sign, open_sign = sign.copy(), sign.copy()
    cv2.putText(exit_sign, "EXIT", (200, 260), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 0), 8)
    cv2.putText(open_sign, "OPEN", (200, 260), cv2.FONT_HERSHEY_SIMPLEX, 3, (0, 0, 0), 8)
    assert not same_scene(analyse(exit_sign), analyse(open_sign), CONFIG)


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((1, 1, 3), np.uint8),
        cv2.cvtColor(ASTRONAUT, cv2.COLOR_BGR2GRAY),
        cv2.cvtColor(ASTRONAUT, cv2.COLOR_BGR2BGRA),
        ASTRONAUT.astype(np.float32) / 255.0,
        np.zeros((480, 640, 1), np.uint8),
    ],
    ids=["1x1", "grey", "rgba", "float", "one-channel"],
)
def test_odd_images_are_analysed(image: np.ndarray) -> None:
    result = analyse(image)
    assert 0.0 <= result.brightness <= 1.0
    assert result.sharpness >= 0.0


def test_grey_and_rgba_copies_match_the_colour_frame() -> None:
    colour = analyse(ASTRONAUT)
    for copy in (
        cv2.cvtColor(ASTRONAUT, cv2.COLOR_BGR2GRAY),
        cv2.cvtColor(ASTRONAUT, cv2.COLOR_BGR2BGRA),
    ):
        assert same_scene(colour, analyse(copy), CONFIG)


def test_huge_frame_is_analysed_like_its_small_copy() -> None:
    huge = cv2.resize(ASTRONAUT, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    assert same_scene(analyse(huge), analyse(cv2.resize(ASTRONAUT, (480, 480))), CONFIG)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 5), np.uint8), np.zeros(7), "frame"],
    ids=["empty", "five-channels", "1-d", "not-an-array"],
)
def test_what_is_not_an_image_is_a_camera_error(bad: Any) -> None:
    with pytest.raises(CameraError, match="not a camera frame"):
        analyse(bad)


# -- selection with a controlled clock ------------------------------------------------


def test_frame_is_the_sharpest_captured_after_the_question_began() -> None:
    clock = Clock(110.0)
    ring = FrameRing(CONFIG)
    blurred = cv2.GaussianBlur(ASTRONAUT, (0, 0), 4)
    # the sharpest frame of all comes before the question: it must not be chosen
    ring.add(item(ASTRONAUT, 100.0, 0))
    ring.add(item(blurred, 101.0, 1))
    ring.add(item(ASTRONAUT, 102.0, 2))  # sharp, after the question
    ring.add(item(blurred, 103.0, 3))  # newest, but blurred
    selector = KeyframeSelector(ring, clock=clock)
    chosen = selector.select(t_question=100.5)
    assert chosen.frame is not None and chosen.frame.index == 2
    assert chosen.frame.t_capture >= 100.5
    assert not chosen.unchanged and chosen.waited_s == 0.0


def test_no_frame_older_than_the_question_even_if_none_comes() -> None:
    clock = Clock(200.0)
    ring = FrameRing(CONFIG.model_copy(update={"wait_s": 0.2}))
    ring.add(item(ASTRONAUT, 199.0))
    selector = KeyframeSelector(ring, clock=clock)
    t0 = time.monotonic()
    chosen = selector.select()  # the question begins now (200.0): the frame is older
    assert chosen.frame is None
    assert 0.15 <= time.monotonic() - t0 < 2.0  # it waited, briefly


def test_selector_waits_for_a_frame_newer_than_the_question() -> None:
    clock = Clock(300.0)
    ring = FrameRing(CONFIG)
    ring.add(item(ASTRONAUT, 299.0, 0))
    selector = KeyframeSelector(ring, clock=clock)

    def late_frame() -> None:
        time.sleep(0.1)
        clock.t = 300.2
        ring.add(item(CAT, 300.1, 1))

    threading.Thread(target=late_frame).start()
    chosen = selector.select(t_question=300.0)
    assert chosen.frame is not None and chosen.frame.index == 1
    assert chosen.waited_s == pytest.approx(0.2)


def test_unchanged_scene_is_not_sent_again() -> None:
    clock = Clock(0.0)
    ring = FrameRing(CONFIG)
    selector = KeyframeSelector(ring, clock=clock)
    answers: list[Keyframe] = []
    for question in range(4):
        t = 10.0 * question
        clock.t = t
        ring.add(item(camera_noise(ASTRONAUT, question), t + 0.05, question))
        answers.append(selector.select(t_question=t))
    assert [a.unchanged for a in answers] == [False, True, True, True]
    # the frame is still handed over (tools read the freshest view), just not re-sent
    assert all(a.frame is not None for a in answers)
    clock.t = 50.0
    ring.add(item(CAT, 50.05, 9))
    moved = selector.select(t_question=50.0)
    assert not moved.unchanged
    assert selector.images_sent == 2 and selector.questions == 5
    selector.forget()
    ring.add(item(CAT, 50.1, 10))
    assert not selector.select(t_question=50.0).unchanged


def test_ring_keeps_the_sharpest_frame_of_each_slot_within_its_history() -> None:
    config = CONFIG.model_copy(update={"slot_s": 1.0, "history_s": 5.0})
    ring = FrameRing(config)
    blurred = cv2.GaussianBlur(ASTRONAUT, (0, 0), 4)
    for i in range(40):
        ring.add(item(ASTRONAUT if i % 4 == 1 else blurred, i * 0.25, i))
    kept = ring.since(0.0)
    # about history_s / slot_s frames, each the sharp one of its second, plus the newest
    assert 5 <= len(kept) <= 7
    assert all(k.frame.index % 4 == 1 for k in kept[:-1])
    assert kept[-1].frame.index == 39


# -- the camera path --------------------------------------------------------------------


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_tracker_analyses_a_video_until_it_ends(tmp_path: Path) -> None:
    frames = [ASTRONAUT] * 10 + [CAT] * 10
    video = write_video(tmp_path / "two-scenes.avi", frames, fps=20.0)
    camera = VideoSource(CameraConfig(source=str(video)))
    seen: list[AnalysedFrame] = []
    with camera, KeyframeTracker(camera, CONFIG, on_frame=seen.append) as tracker:
        deadline = time.monotonic() + 10
        while not tracker.ended and time.monotonic() < deadline:
            time.sleep(0.05)
        assert tracker.ended, "the tracker did not notice the video ended"
        # paced at 20 fps, analysis keeps up with every frame
        assert len(seen) >= 18 and tracker.skipped_bad == 0
        assert not same_scene(seen[0].analysis, seen[-1].analysis, CONFIG)
        # after the end, a question gets no stale frame, and does not wait long
        selector = KeyframeSelector(tracker.ring)
        t0 = time.monotonic()
        assert selector.select().frame is None
        assert time.monotonic() - t0 < 0.5
        # but a question asked while the video played gets a frame from after it
        t_q = seen[12].t_capture
        chosen = selector.select(t_question=t_q)
        assert chosen.frame is not None and chosen.frame.t_capture >= t_q


def test_tracker_skips_frames_that_are_not_images() -> None:
    class Feed:
        status = "live"

        def __init__(self) -> None:
            self.frames = [np.zeros((0, 0, 3), np.uint8), ASTRONAUT]

        def wait_for_frame(self, after: float | None = None, timeout: float = 5.0) -> Any:
            if not self.frames:
                self.status = "ended"
                return None
            return VideoFrame(self.frames.pop(0), time.monotonic(), 0.0, 0)

    tracker = KeyframeTracker(Feed(), CONFIG).start()
    deadline = time.monotonic() + 5
    while not tracker.ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tracker.ended and tracker.skipped_bad == 1 and tracker.ring.analysed == 1


# -- the frame budget ----------------------------------------------------------------------


def test_frame_budget_fits_bytes_by_quality_then_size() -> None:
    page = photo("page")
    free = encode_within_budget(page, max_side=768, quality=90)
    assert (free.width, free.height) == (640, 480) and free.quality == 90
    tight = encode_within_budget(page, max_side=768, quality=90, max_bytes=free_bytes(free) // 2)
    assert len(tight.jpeg) <= free_bytes(free) // 2 and not tight.over_budget
    # quality gives way first: the resolution text needs is kept while it can be
    assert (tight.width, tight.height) == (640, 480) and MIN_QUALITY <= tight.quality < 90
    tiny = encode_within_budget(page, max_side=768, quality=90, max_bytes=6_000)
    assert len(tiny.jpeg) <= 6_000 and not tiny.over_budget
    assert tiny.width < 640 and tiny.image_tokens < free.image_tokens
    impossible = encode_within_budget(page, max_side=768, quality=90, max_bytes=100)
    assert impossible.over_budget and max(impossible.width, impossible.height) <= 64
    huge = encode_within_budget(np.zeros((8000, 8000, 4), np.uint8), max_side=512, quality=80)
    assert (huge.width, huge.height) == (512, 512)
    decoded = cv2.imdecode(np.frombuffer(huge.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (512, 512, 3)


def free_bytes(encoded: Any) -> int:
    return len(encoded.jpeg)


# -- the turn graph --------------------------------------------------------------------------


def test_session_sends_one_frame_per_scene(heron_env: Path) -> None:
    clock = Clock(1000.0)
    ring = FrameRing(CONFIG)
    selector = KeyframeSelector(ring, clock=clock)
    scenes = [ASTRONAUT, ASTRONAUT, ASTRONAUT, CAT]

    async def get_keyframe(t_question: float | None) -> Keyframe:
        return await asyncio.to_thread(selector.select, t_question)

    async def main(base_url: str) -> str:
        settings = load_settings(
            vlm={
                "base_url": base_url,
                "model": "scripted",
                "max_retries": 0,
                "image_max_bytes": 20_000,
            }
        )
        async with Session(settings, get_keyframe=get_keyframe) as session:
            for number, scene in enumerate(scenes):
                t = 1000.0 + 10 * number
                ring.add(item(camera_noise(scene, number), t + 0.1, number))
                await session.turn(f"question {number}", t_question=t)
            return session.id

    with ScriptedVLM(default=Step(text="An answer.")) as vlm:
        session_id = asyncio.run(main(vlm.base_url))
        requests = vlm.requests
        images = [vlm.images_in(i) for i in range(len(requests))]
    log = list(read_session_log(heron_env / "heron-data" / "sessions" / session_id / "log.jsonl"))
    frames = [r for r in log if r["kind"] == "frame"]
    assert [bool(f.get("reused")) for f in frames] == [False, True, True, False]
    assert all(f["bytes"] <= 20_000 for f in frames if not f.get("reused"))
    assert all(f["image_tokens"] > 0 for f in frames if not f.get("reused"))
    # every request shows the model the current scene exactly once...
    assert [len(i) for i in images] == [1, 1, 1, 1]
    assert images[0] == images[1] == images[2] != images[3]
    # ...and while it is unchanged, on the message that first carried it: the new
    # question is text only, and the request's start is what the model saw before
    second = requests[1]["messages"]
    users = [m for m in second if m["role"] == "user"]
    assert isinstance(users[0]["content"], list) and users[-1]["content"] == "question 1"
    assert second[: len(requests[0]["messages"])] == requests[0]["messages"]


def test_live_camera_path_on_an_mjpeg_stream(heron_env: Path) -> None:
    """As ``heron live`` wires it: stream → VideoSource → CameraKeyframes → Session."""
    from heron.agent.keyframes import CameraKeyframes
    from tests.support.mjpeg import MJPEGServer

    shown = {"image": ASTRONAUT}

    async def main(base_url: str, url: str) -> tuple[str, list[float]]:
        settings = load_settings(vlm={"base_url": base_url, "model": "scripted", "max_retries": 0})
        camera = VideoSource(CameraConfig(source=url))
        keyframes = CameraKeyframes(camera, settings.keyframes)
        ages: list[float] = []
        with camera:
            keyframes.start()
            try:
                async with Session(settings, get_keyframe=keyframes.get) as session:
                    for number in range(3):
                        t_question = time.monotonic()
                        if number == 2:
                            shown["image"] = CAT  # the user turned to something else
                        await asyncio.sleep(0.3)  # speaking the question
                        result = await session.turn(f"question {number}", t_question=t_question)
                        frame = session.components.current_frame
                        assert frame is not None and frame.t_capture >= t_question, result
                        ages.append(frame.t_capture - t_question)
                    return session.id, ages
            finally:
                keyframes.stop()

    with (
        MJPEGServer(lambda: shown["image"], fps=15) as server,
        ScriptedVLM(default=Step(text="An answer.")) as vlm,
    ):
        session_id, ages = asyncio.run(main(vlm.base_url, server.url))
        images = [vlm.images_in(i) for i in range(len(vlm.requests))]
    log = list(read_session_log(heron_env / "heron-data" / "sessions" / session_id / "log.jsonl"))
    reused = [bool(r.get("reused")) for r in log if r["kind"] == "frame"]
    assert reused == [False, True, False]
    assert images[0] == images[1] != images[2]
    assert all(age >= 0 for age in ages)
