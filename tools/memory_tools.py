"""Memory tools: ``remember`` the view or a note, ``recall`` memories, ``forget`` them.

All three reach the store through a :class:`~heron.memory.session_memory.LazyMemory`,
so the store opens once, in the background, and a store that cannot be opened (a
Chroma server down) is a message for the model, not a crash.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from heron.agent.errors import ToolError
from heron.memory.records import FrameInput, Memory, MemoryStoreError, TextInput
from heron.memory.session_memory import LazyMemory
from heron.memory.store import MemoryStore
from heron.memory.timefilter import TimeRange, parse_when
from heron.tools.base import Tool, ToolArgs, ToolContext

KIND_GROUPS = {
    "pictures": ["frame", "photo", "frame_text"],
    "notes": ["note"],
    "conversations": ["turn"],
}


def _store(memory: LazyMemory) -> MemoryStore:
    try:
        return memory.get()
    except MemoryStoreError as exc:
        raise ToolError(f"memory is not available: {exc}") from exc


def _range(when: str | None, since: str | None, until: str | None) -> TimeRange:
    parts = [parse_when(when)] if when else []
    if since:
        parts.append(parse_when(f"since {since}"))
    if until:
        parts.append(parse_when(f"before {until}"))
    starts = [p.since for p in parts if p.since is not None]
    ends = [p.until for p in parts if p.until is not None]
    return TimeRange(max(starts) if starts else None, min(ends) if ends else None)


class RememberArgs(ToolArgs):
    note: str | None = Field(
        None, description="words to keep, e.g. 'my keys are on the shelf by the door'"
    )
    include_view: bool = Field(True, description="also keep the current camera view")
    labels: list[str] = Field(default_factory=list, description="short tags for the view")


class Remembered(BaseModel):
    ids: list[str]
    view: Literal["stored", "already remembered", "none"]
    note: bool


class RememberTool(Tool[RememberArgs]):
    """Remember the current camera view and/or a note the user dictates, for later recall.

    Use when the user asks to remember something ("remember this", "remember that
    my keys are on the shelf"). A view almost identical to one already remembered
    is not stored twice.
    """

    name: ClassVar[str] = "remember"
    Args = RememberArgs
    changes_state: ClassVar[bool] = True

    def __init__(self, memory: LazyMemory) -> None:
        self.memory = memory

    def warmup(self) -> None:
        self.memory.start()

    def run(self, args: RememberArgs, ctx: ToolContext) -> Remembered:
        store = _store(self.memory)
        if not args.note and not (args.include_view and ctx.frame is not None):
            raise ToolError("nothing to remember: give a note, or ask with the camera on")
        ids: list[str] = []
        view: Literal["stored", "already remembered", "none"] = "none"
        frame_id = None
        if args.include_view and ctx.frame is not None:
            (kept,) = store.remember_frames(
                [
                    FrameInput(
                        ctx.frame.image,
                        session=ctx.session_id,
                        labels=args.labels,
                    )
                ]
            )
            frame_id = kept.duplicate_of or kept.id
            view = "stored" if kept.stored else "already remembered"
            ids.append(frame_id)
        if args.note:
            ids += store.remember_texts(
                [TextInput(args.note, kind="note", session=ctx.session_id, frame_id=frame_id)]
            )
        return Remembered(ids=ids, view=view, note=bool(args.note))


class RecallArgs(ToolArgs):
    query: str | None = Field(None, description="what to look for, in words")
    use_current_view: bool = Field(
        False, description="find pictures like the current camera view ('have I seen this?')"
    )
    when: str | None = Field(
        None, description="'today', 'this morning', 'yesterday', 'last 2 hours', an ISO date"
    )
    since: str | None = Field(None, description="only after this time ('10am', ISO time)")
    until: str | None = Field(None, description="only before this time")
    kinds: list[Literal["pictures", "notes", "conversations"]] | None = Field(
        None, description="limit to these kinds of memory"
    )
    limit: int = Field(5, ge=1, le=20)

    @model_validator(mode="after")
    def _something_to_look_for(self) -> RecallArgs:
        if not (self.query and self.query.strip()) and not self.use_current_view:
            raise ValueError("give a query, or set use_current_view")
        return self


class Recalled(BaseModel):
    memories: list[Memory]
    note: str = Field("", description="what the search could and could not do")


class RecallTool(Tool[RecallArgs]):
    """Search what heron remembers: notes, past conversations and pictures it kept.

    Finds memories by words ("keys", "the letter from the bank") and, with
    use_current_view, pictures like the current view. Results are data from the
    past, each with its time and a similarity score; none found means nothing
    relevant is remembered.
    """

    name: ClassVar[str] = "recall"
    Args = RecallArgs

    def __init__(self, memory: LazyMemory) -> None:
        self.memory = memory

    def warmup(self) -> None:
        self.memory.start()

    def run(self, args: RecallArgs, ctx: ToolContext) -> Recalled:
        store = _store(self.memory)
        when = _range(args.when, args.since, args.until)
        kinds = [k for group in args.kinds or [] for k in KIND_GROUPS[group]] or None
        found: list[Memory] = []
        if args.use_current_view:
            image = ctx.require_frame()
            found += store.recall_image(image, when=when, limit=args.limit)
        if args.query and args.query.strip():
            found += store.recall_text(args.query, when=when, kinds=kinds, limit=args.limit)
        note = ""
        if store.text_embedder.space != store.image_embedder.space:
            note = (
                "words find notes, conversations and text read in pictures, not what pictures show"
            )
        found.sort(key=lambda m: -m.score)
        return Recalled(memories=found[: args.limit], note=note)


class ForgetArgs(ToolArgs):
    id: str | None = Field(None, description="the id of one memory (from recall)")
    when: str | None = Field(None, description="a period: 'today', 'this morning', 'last hour'")
    since: str | None = Field(None, description="everything after this time")
    until: str | None = Field(None, description="everything before this time")
    everything: bool = Field(False, description="forget all memories; only on a clear request")

    @model_validator(mode="after")
    def _one_choice(self) -> ForgetArgs:
        chosen = [bool(self.id), bool(self.when or self.since or self.until), self.everything]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of: id, a time (when/since/until), everything")
        return self


class Forgotten(BaseModel):
    forgotten: int


class ForgetTool(Tool[ForgetArgs]):
    """Forget memories for good (vectors and kept pictures): one by id, a period, or all.

    Only on the user's clear request; forgetting cannot be undone.
    """

    name: ClassVar[str] = "forget"
    Args = ForgetArgs
    changes_state: ClassVar[bool] = True

    def __init__(self, memory: LazyMemory) -> None:
        self.memory = memory

    def run(self, args: ForgetArgs, ctx: ToolContext) -> Forgotten:
        store = _store(self.memory)
        if args.everything:
            return Forgotten(forgotten=store.forget(everything=True))
        if args.id:
            return Forgotten(forgotten=store.forget(ids=[args.id]))
        return Forgotten(forgotten=store.forget(when=_range(args.when, args.since, args.until)))


def memory_tools(memory: LazyMemory) -> list[Tool[Any]]:
    return [RememberTool(memory), RecallTool(memory), ForgetTool(memory)]
