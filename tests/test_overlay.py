"""The live window's picture: events folded into a view, the view drawn over a frame."""

from __future__ import annotations

import numpy as np
import pytest

from heron.agent.live_events import (
    Notice,
    PartialTranscript,
    ReplyText,
    StateChanged,
    TurnLatency,
    UserTurn,
)
from heron.agent.overlay import (
    NOTICE_S,
    STATE_COLORS,
    ViewState,
    _text_width,
    apply_event,
    latency_caption,
    latency_details,
    render_overlay,
    to_ascii,
    wrap_text,
)
from heron.tools.ocr import TextReader
from tests.support.render import render_text_image


def test_events_fold_into_the_view() -> None:
    view = ViewState()
    events = [
        StateChanged("listening"),
        StateChanged("hearing"),
        PartialTranscript("what does"),
        PartialTranscript("what does it say"),
    ]
    for event in events:
        view = apply_event(view, event)
    assert (view.state, view.partial) == ("hearing", "what does it say")
    view = apply_event(view, ReplyText(1, "an old reply", final=True))
    view = apply_event(view, UserTurn(2, "What does it say?"))
    # a new turn: its words replace the partial ones, and the old reply goes
    assert (view.heard, view.partial, view.reply) == ("What does it say?", "", "")
    view = apply_event(view, ReplyText(2, "It says"))
    view = apply_event(view, ReplyText(2, "It says: exit.", final=True, interrupted=True))
    assert (view.reply, view.reply_interrupted) == ("It says: exit.", True)
    view = apply_event(view, TurnLatency(2, {"first_audio": 381.6, "transcript": 250.0}))
    view = apply_event(view, Notice("camera lost"), now=12.0)
    assert view.latency_ms["first_audio"] == 381.6
    assert (view.notice, view.notice_at) == ("camera lost", 12.0)


def test_latency_lines() -> None:
    stages = {"endpoint": 210.2, "transcript": 262.0, "first_token": 300.4, "first_audio": 381.6}
    assert latency_caption(stages) == "end of speech -> first audio 382 ms"
    assert latency_details(stages) == "endpoint 210, transcript 262, first token 300 ms"
    assert latency_caption({"reply_ready": 90.0}) == "end of speech -> reply 90 ms"
    assert latency_caption({}) == latency_details({}) == ""


def test_text_is_made_drawable_and_wrapped() -> None:
    assert to_ascii("“Café” — it’s 5…\nok") == '"Cafe" - it\'s 5... ok'
    assert to_ascii("日本") == "??"
    text = "It says: platform two for Oxford, trains every fifteen minutes " + "x" * 120
    lines = wrap_text(text, 300, 0.7)
    assert all(_text_width(line, 0.7, 1) <= 300 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert len(lines) >= 4
    assert wrap_text("", 300, 0.7) == []


def test_the_picture_keeps_the_frame_and_draws_over_its_edges() -> None:
    frame = np.full((480, 640, 3), 255, np.uint8)
    view = ViewState(
        state="thinking", heard="Read this.", reply="It says: exit.", latency_ms={"first_audio": 5}
    )
    picture = render_overlay(frame, view)
    assert picture.shape == frame.shape and (frame == 255).all()  # the frame is not touched
    # the middle of the picture is the camera's; the badge has its state's colour
    assert (picture[200:300, 200:440] == 255).all()
    assert tuple(int(v) for v in picture[14, 14]) == STATE_COLORS["thinking"]
    # the captions sit on a dark band at the bottom, whatever the picture
    assert picture[430:470, 20:620].mean() < 140


@pytest.mark.parametrize(
    ("frame", "size"),
    [
        (None, (480, 640)),
        (np.zeros((1080, 1920, 3), np.uint8), (540, 960)),
        (np.zeros((240, 320), np.uint8), (240, 320)),
        (np.zeros((240, 320, 4), np.uint8), (240, 320)),
    ],
)
def test_any_frame_makes_a_picture(frame: np.ndarray | None, size: tuple[int, int]) -> None:
    picture = render_overlay(frame, ViewState(reply="ok"))
    assert picture.shape == (*size, 3) and picture.dtype == np.uint8


def test_a_notice_shows_for_a_while() -> None:
    frame = np.full((480, 640, 3), 255, np.uint8)
    view = ViewState(notice="ignored: no wake phrase", notice_at=100.0)
    shown = render_overlay(frame, view, now=101.0)
    gone = render_overlay(frame, view, now=100.0 + NOTICE_S + 0.1)
    assert (gone[400:] == 255).all() and not (shown[400:] == 255).all()


def test_what_is_drawn_can_be_read_back() -> None:
    frame = render_text_image(["PLATFORM 2"], scale=1.4, thickness=3)
    view = ViewState(
        state="speaking",
        mode="push-to-talk (space)",
        talk_key="space",
        heard="What does it say?",
        reply="It says: Platform 2.",
        latency_ms={"first_audio": 381.6},
    )
    lines = [line.text for line in TextReader().read(render_overlay(frame, view)).lines]
    text = " | ".join(lines)
    # small text comes back with its spaces lost now and then
    squeezed = [line.replace(" ", "") for line in lines]
    for expected in ("SPEAKING", "pressspacetotalk", "firstaudio382ms", "PLATFORM2"):
        assert any(expected in line for line in squeezed), (expected, text)
    assert any(line.lower().startswith("you: what does it say") for line in lines), text
    assert any(line.lower().startswith("heron: it says: platform 2") for line in lines), text
