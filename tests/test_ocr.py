"""The OCR tool on real images: rendered signs and labels, and a scanned page.

No mocks: every test runs the bundled RapidOCR models. Text is compared after
dropping case, spaces and punctuation, because the recogniser often merges
words set in Hershey fonts ("OPENSAT") and that is not what these tests check.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from heron.agent.errors import ToolError
from heron.agent.events import ToolCall, ToolResult, VideoFrame
from heron.tools.base import ToolContext, ToolRegistry
from heron.tools.ocr import ReadTextTool, TextReader, TextReading, _reading_order
from tests.support.render import render_text_image

SIGN = "LIBRARY OPENS AT 9 AM"
LABEL = ["ORGANIC OAT MILK", "USE BY 12 MAY"]


def norm(text: str) -> str:
    """Upper case, letters and digits only."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


@pytest.fixture(scope="module")
def reader() -> TextReader:
    reader = TextReader()
    reader.warmup()
    return reader


def frame(image: np.ndarray) -> VideoFrame:
    return VideoFrame(image=image, t_capture=time.monotonic(), wall_time=time.time(), index=0)


def call_tool(arguments: str, image: np.ndarray | None, reader: TextReader) -> ToolResult:
    registry = ToolRegistry([ReadTextTool(reader)])
    ctx = ToolContext(frame=frame(image) if image is not None else None)
    return asyncio.run(registry.call(ToolCall("call-1", "read_text", arguments), ctx))


@pytest.mark.parametrize(
    ("font", "scale", "thickness", "fg", "bg"),
    [
        (cv2.FONT_HERSHEY_SIMPLEX, 0.8, 1, (0, 0, 0), (255, 255, 255)),
        (cv2.FONT_HERSHEY_SIMPLEX, 1.4, 2, (0, 0, 0), (255, 255, 255)),
        (cv2.FONT_HERSHEY_DUPLEX, 1.0, 2, (255, 255, 255), (30, 30, 30)),
        (cv2.FONT_HERSHEY_DUPLEX, 1.4, 2, (255, 255, 255), (60, 40, 20)),
    ],
)
def test_reads_a_sign(
    reader: TextReader,
    font: int,
    scale: float,
    thickness: int,
    fg: tuple[int, int, int],
    bg: tuple[int, int, int],
) -> None:
    image = render_text_image([SIGN], font=font, scale=scale, thickness=thickness, fg=fg, bg=bg)
    reading = reader.read(image)
    assert norm(SIGN) in norm(reading.text)
    assert reading.image_size == (640, 480)
    assert len(reading.lines) == 1
    line = reading.lines[0]
    assert 0.5 <= line.confidence <= 1.0
    assert len(line.box) == 4
    assert all(0 <= x <= 640 and 0 <= y <= 480 for x, y in line.box)
    assert line.center == pytest.approx((0.5, 0.5), abs=0.05)


def test_two_lines_come_top_to_bottom(reader: TextReader) -> None:
    image = render_text_image(LABEL, font=cv2.FONT_HERSHEY_DUPLEX, scale=1.0)
    reading = reader.read(image)
    assert [norm(line.text) for line in reading.lines] == [norm(t) for t in LABEL]
    assert reading.lines[0].center[1] < reading.lines[1].center[1]
    assert reading.text.count("\n") == 1


def test_two_columns_come_left_to_right(reader: TextReader) -> None:
    left = render_text_image(["EXIT"], size=(320, 480))
    right = render_text_image(["TOILETS"], size=(320, 480))
    reading = reader.read(np.hstack([left, right]))
    assert [norm(line.text) for line in reading.lines] == ["EXIT", "TOILETS"]
    assert reading.lines[0].center[0] < 0.5 < reading.lines[1].center[0]


def test_reading_order_groups_rows_by_overlap() -> None:
    def box(x: float, y: float, w: float = 80, h: float = 20) -> np.ndarray:
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=float)

    # Three rows, the middle one tilted (its boxes' tops differ by 8 px), shuffled.
    grid = [box(10, 10), box(200, 14), box(10, 56), box(200, 48), box(10, 100), box(200, 100)]
    order = [4, 1, 5, 2, 0, 3]
    shuffled = [grid[i] for i in order]
    assert [order[i] for i in _reading_order(shuffled)] == [0, 1, 2, 3, 4, 5]
    assert _reading_order([]) == []


@pytest.mark.parametrize("alpha", [0, 255])
def test_greyscale_and_bgra_input(reader: TextReader, alpha: int) -> None:
    bgr = render_text_image(["GREY SCALE"])
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    assert norm(reader.read(grey).text) == "GREYSCALE"
    assert norm(reader.read(grey[:, :, None]).text) == "GREYSCALE"
    bgra = cv2.cvtColor(render_text_image(["WITH ALPHA"]), cv2.COLOR_BGR2BGRA)
    bgra[:, :, 3] = alpha
    assert norm(reader.read(bgra).text) == "WITHALPHA"


def test_float_image_in_unit_range(reader: TextReader) -> None:
    image = render_text_image(["FLOAT PIXELS"]).astype(np.float32) / 255.0
    assert norm(reader.read(image).text) == "FLOATPIXELS"


def test_rotated_text(reader: TextReader) -> None:
    assert norm(reader.read(render_text_image(["PUSH TO OPEN"], angle=10)).text) == "PUSHTOOPEN"
    # Upside down: the orientation classifier turns the crop before recognition.
    upside_down = render_text_image(["PULL HANDLE"], angle=180)
    assert norm(reader.read(upside_down).text) == "PULLHANDLE"


@pytest.mark.parametrize("kind", ["blank", "noise", "gradient"])
def test_no_text_gives_an_empty_reading(reader: TextReader, kind: str) -> None:
    if kind == "blank":
        image = np.full((480, 640, 3), 255, np.uint8)
    elif kind == "noise":
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    else:
        image = np.tile(np.linspace(0, 255, 640).astype(np.uint8), (480, 1))
    reading = reader.read(image)
    assert reading.lines == []
    assert reading.text == ""


@pytest.mark.parametrize("shape", [(1, 1, 3), (0, 0, 3), (5, 300), (300, 7, 3)])
def test_too_small_images_are_refused(reader: TextReader, shape: tuple[int, ...]) -> None:
    with pytest.raises(ToolError, match="the image is too small to read"):
        reader.read(np.zeros(shape, np.uint8))


def test_confidence_threshold(reader: TextReader) -> None:
    image = render_text_image(LABEL)
    for line in reader.read(image, min_confidence=0.99).lines:
        assert line.confidence >= 0.99
    assert len(reader.read(image, min_confidence=0.0).lines) == 2


@pytest.mark.slow
def test_huge_image_is_downscaled_and_still_read(reader: TextReader) -> None:
    text = "HUGE POSTER TEXT"
    image = render_text_image([text], size=(8000, 8000), scale=12, thickness=24)
    (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 12, 24)
    t0 = time.perf_counter()
    reading = reader.read(image)
    elapsed = time.perf_counter() - t0
    assert norm(reading.text) == "HUGEPOSTERTEXT"
    assert reading.image_size == (8000, 8000)
    xs = [x for x, _ in reading.lines[0].box]
    # Boxes are in the original 8000 px frame, not the 2048 px copy the models saw.
    assert max(xs) - min(xs) == pytest.approx(text_width, rel=0.15)
    assert reading.lines[0].center == pytest.approx((0.5, 0.5), abs=0.05)
    assert elapsed < 30, f"reading an 8000x8000 image took {elapsed:.1f} s"


def test_concurrent_reads_agree(reader: TextReader) -> None:
    images = [render_text_image([SIGN]), render_text_image(LABEL)] * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(lambda im: norm(reader.read(im).text), images))
    assert texts == [norm(SIGN), norm("".join(LABEL))] * 3


def test_scanned_page(reader: TextReader) -> None:
    from skimage import data

    reading = reader.read(data.page())
    text = norm(reading.text)
    for word in ("SEGMENTATION", "MARKERS", "COINS", "BACKGROUND", "PIXELS", "HISTOGRAM"):
        assert word in text, f"{word} not in {reading.text!r}"
    assert norm(reading.lines[0].text).startswith("REGIONBASED")
    centers_y = [line.center[1] for line in reading.lines]
    assert centers_y == sorted(centers_y)


def test_tool_reads_the_frame(reader: TextReader) -> None:
    result = call_tool('{"min_confidence": 0.3}', render_text_image([SIGN]), reader)
    assert result.ok, result.error
    assert result.name == "read_text"
    content = json.loads(result.content)
    assert norm(SIGN) in norm(content["text"])
    assert content["lines"][0]["confidence"] >= 0.3
    assert TextReading.model_validate(content).image_size == (640, 480)


def test_tool_center_region(reader: TextReader) -> None:
    image = render_text_image(["OAT MILK"], scale=1.2)
    cv2.putText(image, "CORNER", (10, 50), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    full = json.loads(call_tool("{}", image, reader).content)
    assert "CORNER" in norm(full["text"])
    result = call_tool('{"region": "center"}', image, reader)
    assert result.ok, result.error
    center = json.loads(result.content)
    assert norm(center["text"]) == "OATMILK"
    # Positions stay relative to the whole frame.
    assert center["lines"][0]["center"] == pytest.approx([0.5, 0.5], abs=0.05)
    assert center["image_size"] == [640, 480]


def test_tool_with_blank_frame_says_no_text(reader: TextReader) -> None:
    result = call_tool("", np.full((480, 640, 3), 255, np.uint8), reader)
    assert result.ok
    assert json.loads(result.content)["text"] == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"min_confidence": "high"}', "invalid arguments for read_text: min_confidence"),
        ('{"min_confidence": 1.5}', "less than or equal to 1"),
        ('{"region": "left"}', "region"),
        ('{"colour": true}', "colour"),
        ("not json", "not valid JSON"),
    ],
)
def test_tool_rejects_bad_arguments(reader: TextReader, arguments: str, message: str) -> None:
    result = call_tool(arguments, render_text_image([SIGN]), reader)
    assert not result.ok
    assert result.error is not None and message in result.error
    assert json.loads(result.content)["error"] == result.error


def test_tool_without_a_frame(reader: TextReader) -> None:
    result = call_tool("{}", None, reader)
    assert not result.ok
    assert result.error is not None and "no camera frame" in result.error


def test_tool_too_small_frame(reader: TextReader) -> None:
    result = call_tool("{}", np.zeros((1, 1, 3), np.uint8), reader)
    assert not result.ok
    assert result.error == "the image is too small to read"


def test_tool_schema() -> None:
    tool = ReadTextTool()
    schema = tool.schema()["function"]
    assert schema["name"] == "read_text"
    assert "camera frame" in schema["description"]
    props = schema["parameters"]["properties"]
    assert props["region"]["enum"] == ["full", "center"]
    assert props["min_confidence"]["maximum"] == 1.0
    assert not tool.reader.loaded
