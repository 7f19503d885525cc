"""Memory in a session: the tools, the graph's recall step, turns stored, a store that is down.

The model is the scripted OpenAI-compatible server on loopback, reached with the
real ``openai`` client; the memory is Chroma on disk with the offline embedders.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skimage import data

from heron.agent.config import Settings, load_settings
from heron.agent.events import VideoFrame
from heron.agent.session import Session
from heron.memory.session_log import read_session_log
from heron.memory.session_memory import MEMORY_HEADER, shared_memory
from heron.tools.memory_tools import ForgetTool, RememberTool
from tests.support.vlm_server import ScriptedVLM, Step

VIEW = np.ascontiguousarray(data.coffee()[:, :, ::-1])


@pytest.fixture()
def memory_env(heron_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERON_MEMORY_ENABLED", "true")
    monkeypatch.setenv("HERON_MEMORY_MODEL", str(heron_env / "no-clip-here"))
    return heron_env


async def _frame() -> VideoFrame:
    return VideoFrame(VIEW, time.monotonic(), time.time(), 1, "test")


def run_turns(settings: Settings, texts: list[str]) -> tuple[list[Any], str]:
    async def main() -> tuple[list[Any], str]:
        async with Session(settings, get_frame=_frame) as session:
            results = [await session.turn(text) for text in texts]
            return results, session.id

    return asyncio.run(main())


def log_of(settings: Settings, session_id: str) -> list[dict[str, Any]]:
    return list(read_session_log(settings.data_dir / "sessions" / session_id / "log.jsonl"))


def tool_json(message: dict[str, Any]) -> Any:
    """A tool message's JSON, inside whatever marking the message wraps around it."""
    content = str(message["content"])
    return json.loads(content[content.index("{") : content.rindex("}") + 1])


def call(name: str, **arguments: Any) -> Step:
    return Step(tool_calls=[{"name": name, "arguments": json.dumps(arguments)}])


def test_remembered_notes_come_back_as_marked_memories(memory_env: Path) -> None:
    steps = [
        call("remember", note="my keys are on the shelf by the door"),
        Step(text="I will remember that."),
        Step(text="They are on the shelf by the door."),
    ]
    with ScriptedVLM(steps) as vlm:
        settings = load_settings(vlm={"base_url": vlm.base_url, "model": "m", "max_retries": 0})
        tools = [t["function"]["name"] for t in vlm_tools_after(settings)]
        assert {"remember", "recall", "forget"} <= set(tools)
        results, session_id = run_turns(
            settings, ["remember that my keys are on the shelf", "where did I leave my keys?"]
        )
        requests = vlm.requests
    assert results[1].reply == "They are on the shelf by the door."
    tool_result = tool_json(requests[1]["messages"][-1])
    assert tool_result["view"] == "stored" and tool_result["note"] is True

    # the second turn's request carries the memory, marked, before the question
    messages = requests[2]["messages"]
    memory = [m for m in messages if MEMORY_HEADER in str(m.get("content", ""))]
    assert len(memory) == 1 and memory[0]["role"] == "system"
    assert "my keys are on the shelf by the door" in memory[0]["content"]
    assert messages.index(memory[0]) == len(messages) - 2
    assert messages[-1]["role"] == "user"
    records = log_of(settings, session_id)
    recalls = [r for r in records if r["kind"] == "recall"]
    assert recalls and recalls[-1]["turn"] == 2 and recalls[-1]["memories"][0]["kind"] == "note"
    # the history keeps no memory messages: each turn gets fresh ones
    assert not any(MEMORY_HEADER in str(m.get("content")) for m in requests[2]["messages"][:-2])

    # both turns were stored, with the view they were asked in (once: same view)
    store = shared_memory(settings).get()
    turns = store.recall_text("keys shelf", kinds=["turn"])
    assert {m.id for m in turns} == {f"turn-{session_id}-1", f"turn-{session_id}-2"}
    assert store.frames.count() == 1
    assert all(m.thumbnail and Path(m.thumbnail).is_file() for m in turns)


def vlm_tools_after(settings: Settings) -> list[dict[str, Any]]:
    from heron.agent.session import default_tools

    return default_tools(settings).schemas()


def test_tools_that_change_memory_are_marked() -> None:
    assert RememberTool.changes_state and ForgetTool.changes_state


def test_recall_and_forget_tools_with_time_filters(memory_env: Path) -> None:
    steps = [
        call("remember", note="the parcel is under the desk"),
        Step(text="Noted."),
        call("recall", query="parcel", when="today"),
        Step(text="Under the desk."),
        call("recall", use_current_view=True),
        Step(text="Yes, you have seen this."),
        call("forget", when="last hour"),
        Step(text="Forgotten."),
        call("recall", query="parcel"),
        Step(text="I don't remember any parcel."),
    ]
    with ScriptedVLM(steps) as vlm:
        settings = load_settings(vlm={"base_url": vlm.base_url, "model": "m", "max_retries": 0})
        run_turns(settings, ["remember the parcel", "parcel?", "seen this?", "forget", "parcel?"])
        contents = [tool_json(r["messages"][-1]) for r in vlm.requests[1::2]]
    _, found, seen, forgotten, after = contents
    assert found["memories"][0]["text"] == "the parcel is under the desk"
    assert found["note"].startswith("words find notes")  # fallbacks: said, not hidden
    assert seen["memories"][0]["kind"] == "frame" and seen["memories"][0]["score"] > 0.99
    assert forgotten["forgotten"] >= 3  # the view, the note, the turns so far
    assert after["memories"] == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_memory_server_loses_nothing_from_the_session_log(
    memory_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERON_MEMORY_SERVER_URL", f"http://127.0.0.1:{free_port()}")
    steps = [call("remember", note="the spare key is in the plant pot"), Step(text="Sorry.")]
    with ScriptedVLM(steps, default=Step(text="Fine.")) as vlm:
        settings = load_settings(vlm={"base_url": vlm.base_url, "model": "m", "max_retries": 0})
        results, session_id = run_turns(settings, ["remember the spare key", "hello", "bye"])
        tool_reply = tool_json(vlm.requests[1]["messages"][-1])
    assert [r.reply for r in results] == ["Sorry.", "Fine.", "Fine."]
    assert "cannot reach the Chroma server" in tool_reply["error"]
    records = log_of(settings, session_id)
    kinds = [r["kind"] for r in records]
    assert kinds.count("utterance") == 3 and kinds.count("reply") == 3
    assert kinds.count("turn.timing") == 3 and kinds[-1] == "session.end"
    errors = [r for r in records if r["kind"] == "error" and r.get("where") == "memory"]
    assert len(errors) == 1 and "cannot reach the Chroma server" in errors[0]["error"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))


def test_offline_remembers_a_dictated_note_and_finds_it_again(memory_env: Path) -> None:
    """No model: "remember that …" and "where did I leave …" go to the memory tools."""
    settings = load_settings()
    results, session_id = run_turns(
        settings,
        [
            "Remember that my keys are on the shelf by the door.",
            "Where did I leave my keys?",
            "Have I seen this before?",
        ],
    )
    remembered, found, seen = (r.reply for r in results)
    assert remembered == "I'll remember that."
    assert "keys are on the shelf by the door" in found and found.startswith("Today at")
    assert seen.startswith("Yes, I saw something like this"), seen  # the turns kept the view
    calls = [r["name"] for r in log_of(settings, session_id) if r["kind"] == "tool.call"]
    assert calls == ["remember", "recall", "recall"]
