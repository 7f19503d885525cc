"""Describing a view: offline from the tools' findings, or by the model grounded in them.

The model is the scripted OpenAI-compatible server on loopback, reached with the
real ``openai`` client; every local tool runs for real.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from heron.agent.cli import main
from heron.agent.config import VLMConfig
from heron.agent.describe import compose_description, spoken_result
from heron.agent.vlm import VLMClient
from heron.tools.observation import Perceiver
from heron.tools.scene import DescribeSceneTool
from tests.support.render import render_text_image
from tests.support.vlm_server import ScriptedVLM, Step

SIGN = ["LIBRARY OPENS AT 9 AM"]


@pytest.fixture(scope="module")
def tool() -> DescribeSceneTool:
    scene = DescribeSceneTool(Perceiver())
    scene.warmup()
    return scene


def astronaut() -> np.ndarray:
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def sign() -> np.ndarray:
    return render_text_image(SIGN, fg=(255, 255, 255), bg=(110, 30, 20))  # on dark blue


def test_offline_description_says_what_the_tools_found(tool: DescribeSceneTool) -> None:
    scene = tool.describe(sign())
    assert scene.source == "offline"
    said = scene.description
    assert said.startswith("Text: LIBRARY OPENS AT 9 AM.")
    assert "Mostly dark blue." in said
    assert "It's dim." in said  # a dark blue sign: the light tool says so
    # nothing the tools did not report
    assert not re.search(r"person|people|code|barcode|blur", said, re.IGNORECASE)
    assert scene.observation.people is not None and scene.observation.people.people == 0


def test_offline_description_of_a_person_and_of_the_dark(tool: DescribeSceneTool) -> None:
    said = tool.describe(astronaut()).description
    assert said.startswith("One person facing the camera, centre, near.")
    assert "Text" not in said
    dark = tool.describe((astronaut() * 0.08).astype(np.uint8)).description
    assert dark == "It's too dark to see much; more light would help."


def test_findings_that_failed_are_not_spoken() -> None:
    perceiver = Perceiver()
    observation = perceiver.observe(np.full((480, 640, 3), 128, np.uint8))
    observation.people = None
    observation.errors["people"] = "the face detector is broken"
    said = compose_description(observation)
    assert "person" not in said and "broken" not in said
    assert "Mostly grey." in said
    assert "move closer" in spoken_result("light", observation.light.model_dump_json())  # type: ignore[union-attr]


def test_describe_scene_grounds_the_model_in_the_findings(tool: DescribeSceneTool) -> None:
    steps = [Step(text="A dark blue library sign on a wall.", require_image=True)]
    with ScriptedVLM(steps) as vlm:
        client = VLMClient(VLMConfig(base_url=vlm.base_url, model="scripted", max_retries=0))
        scene = tool.describe(sign(), vlm=client, focus="what is this sign?")
        request = vlm.requests[-1]
        assert len(vlm.images_in(-1)) == 1
    assert scene.source == "vlm"
    assert scene.description == "A dark blue library sign on a wall."
    system = request["messages"][0]["content"]
    assert "LIBRARY OPENS AT 9 AM" in system  # the OCR text reached the model
    assert "Faces turned to the camera: 0" in system
    assert "dark blue" in system
    assert request["messages"][1]["content"][0]["text"] == "what is this sign?"


def test_describe_scene_called_inside_an_event_loop(tool: DescribeSceneTool) -> None:
    with ScriptedVLM([Step(text="A sign.")]) as vlm:
        client = VLMClient(VLMConfig(base_url=vlm.base_url, model="scripted", max_retries=0))

        async def from_async_code() -> str:
            scene = tool.describe(sign(), vlm=client)
            return f"{scene.source}: {scene.description}"

        assert asyncio.run(from_async_code()) == "vlm: A sign."


def test_describe_scene_falls_back_when_the_model_fails(tool: DescribeSceneTool) -> None:
    with ScriptedVLM([Step(status=500)], default=Step(status=500)) as vlm:
        client = VLMClient(VLMConfig(base_url=vlm.base_url, model="scripted", max_retries=0))
        scene = tool.describe(sign(), vlm=client)
    assert scene.source == "offline"
    assert "500" in scene.note
    assert scene.description.startswith("Text: LIBRARY OPENS AT 9 AM.")


# --- heron describe -----------------------------------------------------------------------


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["describe", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_describes_an_image(
    heron_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sign.png"
    cv2.imwrite(str(path), sign())
    code, out, _ = run_cli([str(path)], capsys)
    assert code == 0
    assert out.startswith("Text: LIBRARY OPENS AT 9 AM.")
    code, out, _ = run_cli([str(path), "--json"], capsys)
    found = json.loads(out)
    assert found["source"] == "offline"
    assert found["observation"]["text"]["lines"][0]["text"] == "LIBRARY OPENS AT 9 AM"


def test_cli_describes_each_scene_of_a_video(
    heron_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    person = np.full((480, 640, 3), 255, np.uint8)
    person[:, 80:560] = cv2.resize(astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    frames = [sign()] * 8 + [cv2.GaussianBlur(person, (0, 0), 4)] * 3 + [person] * 5
    for frame in frames:
        writer.write(frame)
    writer.release()
    code, out, _ = run_cli([str(path)], capsys)
    assert code == 0
    first, second = out.strip().split("\n")
    assert first.startswith("At 0:00: Text: LIBRARY OPENS AT 9 AM.")
    # the sharp frame of the second scene, not the blurred one it starts with
    assert second.startswith("At 0:01: One person facing the camera")
    assert "blurred" not in second


def test_cli_on_a_video_cut_off_mid_file(
    heron_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for _ in range(10):
        writer.write(sign())
    writer.release()
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the recording ends abruptly
    code, out, err = run_cli([str(path)], capsys)
    assert "Traceback" not in err
    if code == 0:
        assert out.startswith("Text: LIBRARY OPENS AT 9 AM.")
    else:
        assert code == 2 and err.startswith("heron: ")


def test_cli_with_the_model(
    heron_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut())
    with ScriptedVLM([Step(text="An astronaut in a white suit before a flag.")]) as vlm:
        code, out, _ = run_cli([str(path), "--base-url", vlm.base_url, "--model", "m"], capsys)
        system = vlm.requests[-1]["messages"][0]["content"]
    assert code == 0
    assert out.strip() == "An astronaut in a white suit before a flag."
    assert "Faces turned to the camera: 1 (centre near)" in system


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff\xe0 not really a jpeg", None])
def test_cli_refuses_bad_files(
    heron_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run_cli([str(path)], capsys)
    assert code == 2
    assert err.startswith("heron: ")
    assert any(w in err for w in ("empty", "no such file", "cannot open", "no frames"))


def test_cli_speaks_into_a_wav(
    heron_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
        from tests.conftest import need

        need("espeak-ng is not installed")
    image, wav = tmp_path / "sign.png", tmp_path / "said.wav"
    cv2.imwrite(str(image), sign())
    t0 = time.perf_counter()
    code, out, _ = run_cli([str(image), "--wav", str(wav)], capsys)
    assert code == 0 and out.startswith("Text:")
    import soundfile as sf

    audio, rate = sf.read(str(wav))
    assert len(audio) / rate > 1.0  # a sentence of speech, not silence
    assert np.abs(audio).max() > 0.05
    assert time.perf_counter() - t0 < 30


# --- through a session's turn graph --------------------------------------------------------


def session_turns(settings: Any, image: np.ndarray, texts: list[str]) -> list[str]:
    from heron.agent.events import VideoFrame
    from heron.agent.session import Session

    async def get_frame() -> VideoFrame:
        return VideoFrame(image, time.monotonic(), time.time(), 1, "test")

    async def main() -> list[str]:
        async with Session(settings, get_frame=get_frame) as session:
            return [(await session.turn(text)).reply for text in texts]

    return asyncio.run(main())


def test_offline_session_answers_perception_requests(heron_env: Path) -> None:
    from heron.agent.config import load_settings

    replies = session_turns(
        load_settings(),
        astronaut(),
        ["how many people are here", "what do you see", "what colour is it", "how's the light"],
    )
    assert replies[0] == "One person facing the camera, centre, near."
    assert replies[1].startswith("One person facing the camera, centre, near. Mostly")
    assert replies[2].startswith("Mostly light grey")
    assert replies[3] == "The light is good. The view is sharp."


def test_the_model_calls_describe_scene_which_asks_the_model_grounded(heron_env: Path) -> None:
    from heron.agent.config import load_settings

    steps = [
        Step(tool_calls=[{"name": "describe_scene", "arguments": '{"focus": "the sign"}'}]),
        Step(text="A blue sign that says the library opens at nine."),
        Step(text="It's a library sign: it opens at 9 AM."),
    ]
    with ScriptedVLM(steps) as vlm:
        settings = load_settings(vlm={"base_url": vlm.base_url, "model": "m", "max_retries": 0})
        (reply,) = session_turns(settings, sign(), ["what's that sign?"])
        requests = list(vlm.requests)
    assert reply == "It's a library sign: it opens at 9 AM."
    assert len(requests) == 3
    scene_request = requests[1]  # the tool's own request, between the two turns' thinks
    assert "LIBRARY OPENS AT 9 AM" in scene_request["messages"][0]["content"]
    assert scene_request["messages"][1]["content"][0]["text"] == "the sign"
    tool_message = [m for m in requests[2]["messages"] if m["role"] == "tool"][-1]
    # the tool's JSON result goes back to the model (fenced as data from the world)
    assert (
        '"description":"A blue sign that says the library opens at nine."'
        in (tool_message["content"])
    )
    assert '"source":"vlm"' in tool_message["content"]
