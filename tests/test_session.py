"""The turn graph through the real openai client, a loopback model server and real OCR.

The frames are rendered text; the tools run for real; the only stand-in is the
remote model, scripted on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from heron.agent.config import Settings, load_settings
from heron.agent.events import VideoFrame
from heron.agent.graph import NO_ANSWER
from heron.agent.guard.untrusted import unwrap_untrusted
from heron.agent.session import Session
from heron.memory.session_log import read_session_log
from tests.conftest import REPO
from tests.support.render import render_text_image
from tests.support.vlm_server import ScriptedVLM, Step

SIGN = render_text_image(["LIBRARY OPENS AT 9 AM"], scale=1.4, thickness=3)


def frames_of(image: np.ndarray) -> Any:
    async def get_frame() -> VideoFrame:
        return VideoFrame(image, time.monotonic(), time.time(), 1, "test")

    return get_frame


def settings_for(heron_env: Path, base_url: str | None, **vlm: Any) -> Settings:
    if base_url is None:
        return load_settings()
    return load_settings(vlm={"base_url": base_url, "model": "scripted", "max_retries": 0, **vlm})


def run_turns(settings: Settings, texts: list[str], image: np.ndarray = SIGN, **kw: Any) -> Any:
    async def main() -> tuple[list[Any], str, list[dict[str, Any]]]:
        async with Session(settings, get_frame=frames_of(image), **kw) as session:
            results = [await session.turn(text) for text in texts]
            return results, session.id, await session.history()

    return asyncio.run(main())


def log_of(settings: Settings, session_id: str) -> list[dict[str, Any]]:
    return list(read_session_log(settings.data_dir / "sessions" / session_id / "log.jsonl"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_model_gets_the_frame_calls_the_ocr_tool_and_answers(heron_env: Path) -> None:
    steps = [
        Step(tool_calls=[{"name": "read_text", "arguments": '{"min_confidence": 0.3}'}]),
        Step(text="The sign says the library opens at nine."),
    ]
    with ScriptedVLM(steps) as vlm:
        settings = settings_for(heron_env, vlm.base_url)
        (result,), session_id, history = run_turns(settings, ["What does the sign say?"])
        first, second = vlm.requests
    assert result.reply == "The sign says the library opens at nine."
    # the first request carries the frame as a JPEG data URL and offers the tool
    (url,) = vlm.images_in(0)
    jpeg = base64.b64decode(url.split(",", 1)[1])
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == SIGN.shape[:2]
    offered = [t["function"]["name"] for t in first["tools"]]
    assert offered[0] == "read_text" and len(offered) == len(set(offered))
    assert first["messages"][0]["role"] == "system"
    # the second request holds the tool's real OCR result for the model
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    reading = json.loads(unwrap_untrusted(tool_message["content"]))
    assert "LIBRARY OPENS AT 9 AM" in reading["text"].upper()
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    kinds = [r["kind"] for r in log_of(settings, session_id)]
    for kind in (
        "session.start",
        "utterance",
        "frame",
        "think",
        "tool.call",
        "tool.result",
        "reply",
        "turn.timing",
        "session.end",
    ):
        assert kind in kinds, kind


def test_malformed_tool_calls_go_back_to_the_model_and_the_turn_goes_on(
    heron_env: Path,
) -> None:
    steps = [
        Step(
            tool_calls=[
                {"name": "read_text", "arguments": '{"min_confidence": '},  # cut-off JSON
                {"name": "read_text", "arguments": '{"min_confidence": "high"}'},
                {"name": "open_door", "arguments": "{}"},
            ]
        ),
        Step(text="Sorry, my tools failed."),
    ]
    with ScriptedVLM(steps) as vlm:
        settings = settings_for(heron_env, vlm.base_url)
        (result,), session_id, _ = run_turns(settings, ["read it"])
        tool_messages = [m for m in vlm.requests[1]["messages"] if m["role"] == "tool"]
    assert result.reply == "Sorry, my tools failed."
    errors = [json.loads(unwrap_untrusted(m["content"]))["error"] for m in tool_messages]
    assert "not valid JSON" in errors[0]
    assert "min_confidence" in errors[1]
    assert "no tool named 'open_door'" in errors[2]
    results = [r for r in log_of(settings, session_id) if r["kind"] == "tool.result"]
    assert [r["ok"] for r in results] == [False, False, False]


def test_a_model_that_keeps_calling_tools_is_made_to_answer(heron_env: Path) -> None:
    loop = Step(tool_calls=[{"name": "read_text", "arguments": "{}"}])
    with ScriptedVLM([loop] * 3, default=Step(text="Done reading.")) as vlm:
        settings = settings_for(heron_env, vlm.base_url, max_tool_rounds=2)
        (result,), _, _ = run_turns(settings, ["read"])
        offered = ["tools" in request for request in vlm.requests]
    assert offered == [True, True, False]
    # the third request offered no tools; the calls it made anyway are not run or kept
    assert result.reply == NO_ANSWER
    assert len(vlm.requests) == 3


def test_an_endpoint_that_refuses_connections_falls_back_to_offline(heron_env: Path) -> None:
    settings = settings_for(heron_env, f"http://127.0.0.1:{free_port()}/v1")
    (result,), session_id, _ = run_turns(settings, ["What does it say?"])
    assert result.reply.startswith("I can't reach the vision model right now.")
    assert "LIBRARY OPENS AT 9 AM" in result.reply.upper()
    errors = [r for r in log_of(settings, session_id) if r["kind"] == "error"]
    assert errors and "cannot reach the model endpoint" in errors[0]["error"]
    assert errors[0]["retryable"] is True


def test_an_endpoint_that_times_out_or_fails_falls_back(heron_env: Path) -> None:
    steps = [Step(text="too late", delay_s=3.0), Step(status=500)]
    with ScriptedVLM(steps) as vlm:
        settings = settings_for(heron_env, vlm.base_url, timeout_s=0.5)
        results, session_id, _ = run_turns(settings, ["what colour is it", "how many people"])
    assert all(r.reply.startswith("I can't reach the vision model") for r in results)
    errors = [r["error"] for r in log_of(settings, session_id) if r["kind"] == "error"]
    assert "did not answer within 0.5 s" in errors[0]
    assert "answered 500" in errors[1]


def test_offline_reads_text_and_says_what_else_it_needs(heron_env: Path) -> None:
    settings = settings_for(heron_env, None)
    results, session_id, _ = run_turns(
        settings, ["read this", "what is the capital of Australia", "what does it say"]
    )
    assert "LIBRARY OPENS AT 9 AM" in results[0].reply.upper()
    assert "HERON_VLM_BASE_URL" in results[1].reply
    assert "LIBRARY" in results[2].reply.upper()
    log = log_of(settings, session_id)
    assert [r["thinker"] for r in log if r["kind"] == "think"] == ["offline"] * 5


def test_offline_with_no_text_in_view_says_so(heron_env: Path) -> None:
    blank = np.full((480, 640, 3), 200, np.uint8)
    (result,), _, _ = run_turns(settings_for(heron_env, None), ["read this"], image=blank)
    assert "don't see any text" in result.reply


def test_a_session_resumes_from_its_checkpoint(heron_env: Path) -> None:
    with ScriptedVLM([Step(text="First answer."), Step(text="Second answer.")]) as vlm:
        settings = settings_for(heron_env, vlm.base_url)
        _, session_id, _ = run_turns(settings, ["first question"])

        async def resume() -> tuple[bool, Any, list[dict[str, Any]]]:
            async with Session(settings, session_id=session_id) as session:
                result = await session.turn("second question")
                return session.resumed, result, await session.history()

        resumed, result, history = asyncio.run(resume())
        last_request = vlm.requests[-1]["messages"]
    assert resumed and result.turn == 2 and result.reply == "Second answer."
    assert [m["content"] for m in history if m["role"] == "user"] == [
        "first question",
        "second question",
    ]
    # the model saw the earlier turn; the earlier frame is referenced, not re-sent
    assert [m["content"] for m in last_request if m["role"] == "assistant"] == ["First answer."]
    seqs = [r["seq"] for r in log_of(settings, session_id)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_tool_that_raises_does_not_end_the_turn(heron_env: Path) -> None:
    from heron.tools.base import NoArgs, Tool, ToolContext, ToolRegistry

    class Broken(Tool[NoArgs]):
        """Always fails."""

        name = "broken"
        Args = NoArgs

        def run(self, args: NoArgs, ctx: ToolContext) -> None:
            raise RuntimeError("sensor unplugged")

    steps = [Step(tool_calls=[{"name": "broken", "arguments": ""}]), Step(text="It failed.")]
    with ScriptedVLM(steps) as vlm:
        settings = settings_for(heron_env, vlm.base_url)
        (result,), _, _ = run_turns(settings, ["go"], tools=ToolRegistry([Broken()]))
        tool_message = vlm.requests[1]["messages"][-1]
    assert result.reply == "It failed."
    assert "RuntimeError: sensor unplugged" in tool_message["content"]


def test_no_camera_frame_still_answers(heron_env: Path) -> None:
    async def no_frame() -> None:
        return None

    with ScriptedVLM([Step(text="I cannot see anything.")]) as vlm:
        settings = settings_for(heron_env, vlm.base_url)

        async def main() -> Any:
            async with Session(settings, get_frame=no_frame) as session:
                return await session.turn("what do you see")

        result = asyncio.run(main())
        assert vlm.images_in(0) == []
    assert result.reply == "I cannot see anything." and result.frame is None


CRASH = """
import asyncio, os, sys, time
from heron.agent.config import load_settings
from heron.agent.events import VideoFrame
from heron.agent.session import Session
from tests.conftest import REPO
from tests.support.render import render_text_image

image = render_text_image(["LIBRARY OPENS AT 9 AM"], scale=1.4, thickness=3)

async def frame():
    return VideoFrame(image, time.monotonic(), time.time(), 1, "test")

async def main():
    session = await Session(load_settings(), get_frame=frame).open()
    print(session.id, flush=True)
    await session.turn(sys.argv[1])
    os._exit(3)  # the process dies: nothing is closed or flushed on the way out

asyncio.run(main())
"""


@pytest.mark.parametrize("question", ["read this", "what does the label say"])
def test_the_log_survives_a_crash_mid_session(heron_env: Path, question: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CRASH, question],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    session_id = result.stdout.split()[0]
    log = log_of(load_settings(), session_id)
    kinds = [r["kind"] for r in log]
    assert kinds[:2] == ["session.start", "utterance"] and "session.end" not in kinds
    reply = next(r for r in log if r["kind"] == "reply")
    assert "LIBRARY OPENS AT 9 AM" in reply["text"].upper()
    assert "turn.timing" in kinds  # the last record before the crash is there too
