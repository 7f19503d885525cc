"""Describing the whole view: the ``describe_scene`` tool.

The local tools look first (:class:`~heron.tools.observation.Perceiver`): text,
codes, faces, colours, light. With a vision-language model, their findings go
into the prompt as facts beside the frame, so the description quotes the text
the OCR read and the number of people the detector counted instead of inventing
them. Without a model (offline, or the model failed) the description is composed
from the findings alone by :func:`~heron.agent.describe.compose_description`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from heron.agent.describe import compose_description, grounding_facts
from heron.agent.errors import VLMError
from heron.agent.vlm import VLMClient, encode_frame, image_data_url
from heron.tools.base import Tool, ToolArgs, ToolContext
from heron.tools.observation import Observation, Perceiver

log = logging.getLogger(__name__)

SCENE_PROMPT = """\
You describe a camera view for someone who cannot see it. Your words are spoken:
two to four short sentences, plain words, most important first, no lists or markdown.
Local detectors have already examined this exact frame. Their findings are facts:
quote text only as the OCR gives it, and use their counts. Do not add text, codes
or people they did not find; if you see something they missed, say you are unsure.
Never identify a person or guess who someone is.

Detector findings:
{facts}"""

DEFAULT_REQUEST = "Describe what is in front of the camera."


class SceneDescription(BaseModel):
    """A description of the current view and the findings it rests on."""

    description: str = Field(description="the spoken description")
    source: Literal["vlm", "offline"] = Field(
        description="vlm: written by the vision model; offline: composed from the local tools"
    )
    observation: Observation = Field(description="what the local tools found")
    note: str = Field("", description="why the model was not used, when it was not")
    elapsed_ms: float


class DescribeSceneArgs(ToolArgs):
    focus: str = Field(
        "",
        max_length=300,
        description="what the user wants to know about the view, in their words; "
        "empty for a general description",
    )


async def _ask_model(vlm: VLMClient, image: np.ndarray, facts: str, request: str) -> str:
    """One chat completion with the frame and the findings; a fresh client for this loop."""
    config = vlm.config
    jpeg = encode_frame(image, max_side=config.image_max_side, jpeg_quality=config.jpeg_quality)
    messages = [
        {"role": "system", "content": SCENE_PROMPT.format(facts=facts)},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": request},
                {"type": "image_url", "image_url": {"url": image_data_url(jpeg)}},
            ],
        },
    ]
    # The session's client belongs to the session's event loop; this call runs on a
    # worker thread with a loop of its own, so it gets its own connection pool.
    client = VLMClient(config)
    try:
        reply = await client.complete(messages)
    finally:
        await client.close()
    return reply.content


def _run_blocking(coroutine: Coroutine[Any, Any, str]) -> str:
    """Run ``coroutine`` to completion from synchronous code, even inside an event loop
    (then on a thread of its own, so the caller's loop is not re-entered)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


class DescribeSceneTool(Tool[DescribeSceneArgs]):
    """Describe the current camera view: what is there, text, people, colours, light.

    Local detectors read the text, scan codes, count the people facing the camera
    and measure colours and light first; the description is grounded in their
    findings, which come back too ("observation"). Use it for "what's in front
    of me", "describe the room", "what do you see". For exact text use read_text.
    """

    name: ClassVar[str] = "describe_scene"
    Args = DescribeSceneArgs
    timeout_s = 60.0

    def __init__(self, perceiver: Perceiver | None = None) -> None:
        self.perceiver = perceiver if perceiver is not None else Perceiver()

    def warmup(self) -> None:
        self.perceiver.warmup()

    def describe(
        self, image: np.ndarray, *, vlm: VLMClient | None = None, focus: str = ""
    ) -> SceneDescription:
        """Describe ``image``: with ``vlm`` when given and reachable, else offline."""
        t0 = time.perf_counter()
        observation = self.perceiver.observe(image)
        note = ""
        if vlm is not None:
            try:
                text = _run_blocking(
                    _ask_model(vlm, image, grounding_facts(observation), focus or DEFAULT_REQUEST)
                )
                if text:
                    return SceneDescription(
                        description=text,
                        source="vlm",
                        observation=observation,
                        elapsed_ms=round((time.perf_counter() - t0) * 1000, 1),
                    )
                note = "the vision model gave an empty answer"
            except VLMError as exc:
                log.warning("describing offline: %s", exc)
                note = f"the vision model could not be used: {exc}"
        return SceneDescription(
            description=compose_description(observation),
            source="offline",
            observation=observation,
            note=note,
            elapsed_ms=round((time.perf_counter() - t0) * 1000, 1),
        )

    def run(self, args: DescribeSceneArgs, ctx: ToolContext) -> SceneDescription:
        return self.describe(ctx.require_frame(), vlm=ctx.vlm, focus=args.focus)
