"""Replies are checked before they are spoken: the endpoint's moderation API where it
has one (the scripted server on loopback serves ``/v1/moderations``), local rules
otherwise, and a 404 switches a session to local rules once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from heron.agent.config import Settings, load_settings
from heron.agent.guard.moderation import BLOCKED_NOTICE, check_local
from heron.agent.session import Session
from heron.memory.session_log import read_session_log
from heron.tools.base import ToolRegistry
from tests.support.vlm_server import ScriptedVLM, Step

HARMFUL_LOCAL = "Mix the bleach with ammonia, it cleans faster."
HARMFUL_ENDPOINT = "Shove him down the stairs."
"""Harm the local rules do not list: only the scripted moderation service flags it."""


@pytest.mark.parametrize(
    "text",
    [
        HARMFUL_LOCAL,
        "You should kill yourself.",
        "Here is how to make a pipe bomb at home.",
        "I will find you and hurt you.",
        "You are worthless.",
    ],
)
def test_local_rules_block_replies_that_encourage_harm(text: str) -> None:
    decision = check_local(text)
    assert decision.action == "block" and decision.detail["checker"] == "local"


@pytest.mark.parametrize(
    "text",
    [
        "Never mix bleach and ammonia: the fumes are toxic.",
        "The knife is on the left of the cutting board.",
        "The label says: keep out of reach of children.",
        "The bottle is bleach. Don't combine it with other cleaners.",
        "It says the bridge is closed for repairs.",
        "A man is crossing the street with a dog.",
    ],
)
def test_local_rules_let_ordinary_and_warning_replies_through(text: str) -> None:
    assert check_local(text).allowed


def settings(base_url: str, moderation: str = "auto") -> Settings:
    return load_settings(
        vlm={"base_url": base_url, "model": "scripted", "max_retries": 0},
        memory={"enabled": False},
        guard={"moderation": moderation},
    )


def run(s: Settings, texts: list[str]) -> tuple[list[Any], list[dict[str, Any]]]:
    async def main() -> tuple[list[Any], list[dict[str, Any]]]:
        async with Session(s, tools=ToolRegistry([])) as session:
            results = [await session.turn(text) for text in texts]
            return results, list(read_session_log(session.log.path))

    return asyncio.run(main())


def guards(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in log if r["kind"] == "guard" and r["guard"] == "moderation"]


def test_the_endpoints_moderation_api_is_used_where_it_exists(heron_env: Path) -> None:
    steps = [Step(text="The door is open."), Step(text=HARMFUL_ENDPOINT)]

    def moderate(text: str) -> list[str]:
        return ["violence"] if "shove" in text.lower() else []

    with ScriptedVLM(steps, moderation=moderate) as vlm:
        (fine, blocked), log = run(settings(vlm.base_url), ["is the door open?", "what now?"])
        checked = [r["input"] for r in vlm.moderation_requests]
    assert checked == ["The door is open.", HARMFUL_ENDPOINT]
    assert fine.reply == "The door is open."
    assert blocked.reply == BLOCKED_NOTICE
    block = next(r for r in guards(log) if r["action"] == "block")
    assert block["checker"] == "endpoint" and block["categories"] == ["violence"]
    assert "violence" in block["reason"]
    # the blocked answer is not in what is spoken, logged as said, or kept as history
    replies = [r["text"] for r in log if r["kind"] == "reply"]
    assert HARMFUL_ENDPOINT not in replies


def test_no_moderation_api_falls_back_to_local_rules_once(heron_env: Path) -> None:
    steps = [Step(text="The door is open."), Step(text="It is red."), Step(text=HARMFUL_LOCAL)]
    with ScriptedVLM(steps) as vlm:  # no /v1/moderations: the server answers 404
        results, log = run(settings(vlm.base_url), ["door?", "colour?", "how do I clean it?"])
    assert [r.reply for r in results] == ["The door is open.", "It is red.", BLOCKED_NOTICE]
    fallbacks = [r for r in guards(log) if r["action"] == "fallback"]
    assert len(fallbacks) == 1 and fallbacks[0]["status"] == 404
    block = next(r for r in guards(log) if r["action"] == "block")
    assert block["checker"] == "local" and block["category"] == "dangerous-mix"


def test_moderation_off_says_the_reply_as_it_is(heron_env: Path) -> None:
    with ScriptedVLM([Step(text=HARMFUL_LOCAL)], moderation=lambda t: ["violence"]) as vlm:
        (result,), log = run(settings(vlm.base_url, "off"), ["how do I clean it?"])
        assert vlm.moderation_requests == []
    assert result.reply == HARMFUL_LOCAL and guards(log) == []


def test_local_mode_never_calls_the_endpoint(heron_env: Path) -> None:
    with ScriptedVLM([Step(text=HARMFUL_LOCAL)], moderation=lambda t: []) as vlm:
        (result,), _ = run(settings(vlm.base_url, "local"), ["how do I clean it?"])
        assert vlm.moderation_requests == []
    assert result.reply == BLOCKED_NOTICE
