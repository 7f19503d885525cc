"""A scripted OpenAI-compatible chat-completions server on loopback.

It stands in for a remote vision-language model: the real ``openai`` client talks
to it over HTTP. Each request takes the next scripted step (streamed text, tool
calls, an HTTP error, a delay, a malformed tool call); every request body is kept
so tests can check what the model was sent (an image, tool results, redactions).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/instructions", "self-harm/intent", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip
"""OpenAI's moderation categories, as its API names them."""


@dataclass
class Step:
    """One scripted answer."""

    text: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    """[{"name": "read_text", "arguments": "{}"}]: arguments as raw text, may be malformed."""
    status: int = 200
    delay_s: float = 0.0
    require_image: bool = False
    """Answer with a complaint instead when the request carries no image."""
    word_delay_s: float = 0.0
    """Pause between streamed words (a model that generates slowly)."""


class ScriptedVLM:
    """``with ScriptedVLM([Step(tool_calls=[...]), Step(text="...")]) as vlm: vlm.base_url``."""

    def __init__(
        self,
        steps: list[Step] | None = None,
        *,
        default: Step | None = None,
        moderation: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.steps = list(steps or [])
        self.default = default or Step(text="I have nothing more to say.")
        self.requests: list[dict[str, Any]] = []
        self.stream_ends: list[float] = []
        """Monotonic time each streamed answer ended (its last chunk was sent)."""
        self.moderation = moderation
        """Serve ``/v1/moderations``: the categories flagged for a text (none: 404)."""
        self.moderation_requests: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def images_in(self, index: int = -1) -> list[str]:
        """Data URLs of the images in one request's messages."""
        urls = []
        for message in self.requests[index].get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                urls += [p["image_url"]["url"] for p in content if p.get("type") == "image_url"]
        return urls

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        step = self.steps.pop(0) if self.steps else self.default
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.require_image and not self.images_in(-1):
            step = Step(text="I was not shown any image.")
        if step.status != 200:
            return web.json_response(
                {"error": {"message": "scripted failure", "type": "server_error"}},
                status=step.status,
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        cid, created = "chatcmpl-" + uuid.uuid4().hex[:12], int(time.time())

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            chunk = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model", "scripted"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        for i, call in enumerate(step.tool_calls):
            await send(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": f"call_{uuid.uuid4().hex[:8]}",
                            "type": "function",
                            "function": {"name": call["name"], "arguments": call["arguments"]},
                        }
                    ]
                }
            )
        for word in step.text.split(" ") if step.text else []:
            await send({"content": word + " "})
            if step.word_delay_s:
                await asyncio.sleep(step.word_delay_s)
        await send({}, finish="tool_calls" if step.tool_calls else "stop")
        self.stream_ends.append(time.monotonic())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _moderate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.moderation_requests.append(body)
        assert self.moderation is not None
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        results = []
        for text in texts:
            flagged = set(self.moderation(text))
            results.append(
                {
                    "flagged": bool(flagged),
                    "categories": {c: c in flagged for c in MODERATION_CATEGORIES},
                    "category_scores": {c: float(c in flagged) for c in MODERATION_CATEGORIES},
                    "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
                }
            )
        return web.json_response(
            {"id": "modr-" + uuid.uuid4().hex[:8], "model": "scripted", "results": results}
        )

    def start(self) -> ScriptedVLM:
        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            if self.moderation is not None:
                app.router.add_post("/v1/moderations", self._moderate)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()
            server = site._server
            assert server is not None and server.sockets
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="scripted-vlm", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the scripted VLM server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ScriptedVLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
