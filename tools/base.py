"""What a tool is, and how heron runs one.

A tool is a typed function the model can call: a name, a docstring the model
reads, a pydantic model for its arguments and one for its result. The registry
turns tools into the OpenAI ``tools`` schema and runs calls. A call never raises:
malformed arguments, a validation error, an exception or a timeout all come back
as a :class:`~heron.agent.events.ToolResult` with ``ok=False`` and a message the
model can act on, so a failing tool never crashes a turn.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from heron.agent.errors import ToolArgumentsError, ToolError
from heron.agent.events import ToolCall, ToolResult, VideoFrame

if TYPE_CHECKING:
    from heron.agent.vlm import VLMClient

log = logging.getLogger(__name__)

ArgsT = TypeVar("ArgsT", bound=BaseModel)


class ToolArgs(BaseModel):
    """Base for tool arguments: unknown keys are an error the model is told about."""

    model_config = ConfigDict(extra="forbid")


class NoArgs(ToolArgs):
    """For tools that take no arguments."""


@dataclass
class ToolContext:
    """What a tool may look at: the frame of the current turn and the session's state."""

    frame: VideoFrame | None = None
    session_id: str = ""
    extras: dict[str, Any] = field(default_factory=dict)
    vlm: VLMClient | None = None
    """The session's vision-language model, for tools that ask it (``describe_scene``);
    None when heron runs offline or the model failed earlier in the turn."""

    def require_frame(self) -> np.ndarray:
        if self.frame is None:
            raise ToolError("no camera frame is available yet; the camera may still be starting")
        return self.frame.image


class Tool(Generic[ArgsT]):
    """Base class: set ``name`` and ``Args``, write the docstring, implement :meth:`run`.

    ``run`` is synchronous and may block (models run on worker threads); return a
    pydantic model or a plain JSON-able value.
    """

    name: ClassVar[str]
    Args: type[ArgsT]
    timeout_s: float = 20.0
    changes_state: ClassVar[bool] = False
    """True for tools that change what heron remembers (remember, forget)."""

    @property
    def description(self) -> str:
        return inspect.cleandoc(type(self).__doc__ or self.name)

    def schema(self) -> dict[str, Any]:
        params = self.Args.model_json_schema()
        params.pop("title", None)
        params.setdefault("properties", {})
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": params},
        }

    def run(self, args: ArgsT, ctx: ToolContext) -> Any:
        raise NotImplementedError

    def warmup(self) -> None:
        """Load models ahead of the first call (a no-op for tools that have none)."""


def _to_content(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str)


class ToolRegistry:
    """The tools of a session, by name."""

    def __init__(self, tools: Iterable[Tool[Any]] = ()) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool[Any]) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(self._tools.values())

    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool[Any]:
        return self._tools[name]

    def warmup(self) -> None:
        """Warm every tool up; a tool that fails to is logged, and will fail when called."""
        for tool in self._tools.values():
            try:
                tool.warmup()
            except Exception as exc:
                log.warning("tool %s could not warm up: %s", tool.name, exc)

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self._tools.values()]

    def parse(self, call: ToolCall) -> tuple[Tool[Any], BaseModel]:
        """Find the tool and validate the arguments, or raise a message for the model."""
        tool = self._tools.get(call.name)
        if tool is None:
            known = ", ".join(self._tools) or "none"
            raise ToolArgumentsError(f"there is no tool named {call.name!r}; tools: {known}")
        raw = call.arguments.strip() or "{}"
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ToolArgumentsError(
                f"arguments for {call.name} are not valid JSON ({exc.msg} at {exc.pos})"
            ) from None
        if not isinstance(data, dict):
            raise ToolArgumentsError(f"arguments for {call.name} must be a JSON object")
        try:
            return tool, tool.Args.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ToolArgumentsError(f"invalid arguments for {call.name}: {problems}") from None

    async def call(self, call: ToolCall, ctx: ToolContext) -> ToolResult:
        """Run one call on a worker thread; every failure becomes a result, never an error."""
        t_start = time.monotonic()

        def failed(message: str) -> ToolResult:
            return ToolResult(
                call_id=call.id,
                name=call.name,
                ok=False,
                content=json.dumps({"error": message}),
                t_start=t_start,
                t_end=time.monotonic(),
                error=message,
            )

        try:
            tool, args = self.parse(call)
        except ToolArgumentsError as exc:
            return failed(str(exc))
        try:
            value = await asyncio.wait_for(
                asyncio.to_thread(tool.run, args, ctx), timeout=tool.timeout_s
            )
        except TimeoutError:
            return failed(f"{call.name} did not finish within {tool.timeout_s:.0f} s")
        except ToolError as exc:
            return failed(str(exc))
        except Exception as exc:  # a tool's bug must not end the turn
            log.exception("tool %s failed", call.name)
            return failed(f"{call.name} failed: {type(exc).__name__}: {exc}")
        return ToolResult(
            call_id=call.id,
            name=call.name,
            ok=True,
            content=_to_content(value),
            t_start=t_start,
            t_end=time.monotonic(),
        )
