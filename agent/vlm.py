"""The vision-language model: any OpenAI-compatible chat-completions endpoint.

OpenAI, Ollama, vLLM, llama.cpp's server and LM Studio all speak this protocol, so
one client built on the official ``openai`` package reaches them all. Replies are
streamed so the first token's time is known (and, later, speech can start early);
tool calls arrive as deltas and are assembled here. Connection failures and time-outs
become :class:`VLMUnavailable` (retryable), other failures :class:`VLMResponseError`.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import openai

from .config import VLMConfig
from .errors import VLMResponseError, VLMUnavailable
from .events import ToolCall

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VLMReply:
    """One assistant message: its text, the tools it wants called, and timings."""

    content: str
    tool_calls: list[ToolCall]
    t_request: float
    t_first_token: float | None
    t_done: float
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)

    def as_message(self) -> dict[str, Any]:
        """The assistant message in OpenAI's format, for the conversation history."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        return message


def encode_frame(image: np.ndarray, *, max_side: int, jpeg_quality: int) -> bytes:
    """Resize so the longest side is at most ``max_side`` and encode as JPEG."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise ValueError("the frame could not be encoded as JPEG")
    return buf.tobytes()


def image_data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def estimate_image_tokens(width: int, height: int) -> int:
    """OpenAI's published cost of a high-detail image: 85 + 170 per 512-px tile."""
    fit = min(1.0, 2048 / max(width, height))
    w, h = width * fit, height * fit
    shrink = min(1.0, 768 / min(w, h))
    tiles = math.ceil(w * shrink / 512) * math.ceil(h * shrink / 512)
    return 85 + 170 * tiles


class VLMClient:
    """Streams chat completions with tools from one OpenAI-compatible endpoint."""

    def __init__(self, config: VLMConfig) -> None:
        self.config = config
        api_key = config.api_key.get_secret_value() if config.api_key else "not-needed"
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )

    @property
    def endpoint(self) -> str:
        return str(self._client.base_url)

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        on_text: Callable[[str], None] | None = None,
    ) -> VLMReply:
        """Send the conversation; return the assembled reply.

        ``on_text`` receives each text delta as it streams in.
        """
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "max_tokens": self.config.max_tokens,
        }
        if tools:
            request["tools"] = tools
        if self.config.temperature is not None:
            request["temperature"] = self.config.temperature
        t_request = time.monotonic()
        try:
            stream = await self._client.chat.completions.create(**request)
            return await self._assemble(stream, t_request, on_text)
        except openai.APITimeoutError as exc:
            raise VLMUnavailable(
                f"the model endpoint {self.endpoint} did not answer within "
                f"{self.config.timeout_s:g} s"
            ) from exc
        except openai.APIConnectionError as exc:
            raise VLMUnavailable(
                f"cannot reach the model endpoint {self.endpoint}: {exc.__cause__ or exc}"
            ) from exc
        except openai.APIStatusError as exc:
            retryable = exc.status_code == 429 or exc.status_code >= 500
            raise VLMResponseError(
                f"the model endpoint answered {exc.status_code}: {_short(exc.message)}",
                retryable=retryable,
            ) from exc
        except openai.OpenAIError as exc:
            raise VLMResponseError(f"the model endpoint failed: {_short(str(exc))}") from exc

    async def _assemble(
        self, stream: Any, t_request: float, on_text: Callable[[str], None] | None
    ) -> VLMReply:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        t_first: float | None = None
        finish: str | None = None
        usage: dict[str, int] = {}
        async for chunk in stream:
            if getattr(chunk, "usage", None):
                usage = {k: v for k, v in chunk.usage.model_dump().items() if isinstance(v, int)}
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            finish = choice.finish_reason or finish
            delta = choice.delta
            if delta is None:
                continue
            if delta.content:
                t_first = t_first or time.monotonic()
                text.append(delta.content)
                if on_text is not None:
                    on_text(delta.content)
            for part in delta.tool_calls or []:
                t_first = t_first or time.monotonic()
                slot = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                if part.id:
                    slot["id"] = part.id
                if part.function is not None:
                    slot["name"] += part.function.name or ""
                    slot["arguments"] += part.function.arguments or ""
        tool_calls = [
            ToolCall(
                id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["arguments"]
            )
            for index, slot in sorted(calls.items())
        ]
        return VLMReply(
            content="".join(text).strip(),
            tool_calls=tool_calls,
            t_request=t_request,
            t_first_token=t_first,
            t_done=time.monotonic(),
            finish_reason=finish,
            usage=usage,
        )

    async def close(self) -> None:
        await self._client.close()


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
