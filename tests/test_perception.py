"""The perception tools on real photographs and on frames the tests render.

Photographs come from scikit-image's wheel (astronaut, coffee, chelsea, page);
codes are generated here (OpenCV's QR encoder, zxing-cpp's writer for EAN-13 and
Code 128) and pasted into camera-sized frames. Every model runs for real.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import cv2
import numpy as np
import pytest
import zxingcpp
from skimage import data

from heron.agent.errors import ToolError
from heron.agent.events import ToolCall, ToolResult, VideoFrame
from heron.agent.offline import OfflineThinker
from heron.agent.thinking import ThinkRequest
from heron.tools.base import ToolContext, ToolRegistry
from heron.tools.codes import CodeScanner
from heron.tools.colours import PALETTE, dominant_colours, name_colour
from heron.tools.light import assess_light
from heron.tools.ocr import TextReader
from heron.tools.people import FaceFinder
from heron.tools.perception_tools import perception_tools
from tests.support.render import render_text_image


def bgr(name: str) -> np.ndarray:
    image = getattr(data, name)()
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image


def paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    if patch.ndim == 2:
        patch = cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)
    frame[y : y + patch.shape[0], x : x + patch.shape[1]] = patch


def code_frame() -> np.ndarray:
    """A QR code on the right, an EAN-13 on the left, a Code 128 below it."""
    frame = np.full((480, 640, 3), 255, np.uint8)
    qr = cv2.QRCodeEncoder.create().encode("https://example.org/heron")
    paste(frame, cv2.resize(qr, None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST), 460, 60)
    ean = zxingcpp.create_barcode("4006381333931", zxingcpp.BarcodeFormat.EAN13)
    paste(frame, np.asarray(ean.to_image(scale=2)), 20, 40)
    code128 = zxingcpp.create_barcode("HERON-128", zxingcpp.BarcodeFormat.Code128)
    paste(frame, np.asarray(code128.to_image(scale=2)), 20, 300)
    return frame


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    tools = ToolRegistry(perception_tools())
    tools.warmup()
    return tools


def call(registry: ToolRegistry, name: str, image: np.ndarray | None, args: str = "{}") -> Any:
    frame = None if image is None else VideoFrame(image, time.monotonic(), time.time(), 0)
    result: ToolResult = asyncio.run(registry.call(ToolCall("c1", name, args), ToolContext(frame)))
    return result


# --- codes -------------------------------------------------------------------------------


def test_reads_a_qr_code_an_ean13_and_a_code128() -> None:
    scan = CodeScanner().scan(code_frame())
    found = {code.value: code for code in scan.codes}
    assert set(found) == {"https://example.org/heron", "4006381333931", "HERON-128"}
    assert (found["https://example.org/heron"].kind, found["4006381333931"].kind) == (
        "qr",
        "product",
    )
    assert found["4006381333931"].format == "EAN-13"
    assert found["HERON-128"].format == "Code 128"
    assert found["https://example.org/heron"].place == "right"
    assert found["4006381333931"].place == "left"
    assert all(code.confidence >= 0.9 for code in scan.codes)
    qr_box = np.array(found["https://example.org/heron"].box)
    assert qr_box[:, 0].min() == pytest.approx(460 + 20, abs=25)  # quiet zone of 4 modules


def test_a_barcode_turned_sideways_and_the_center_region() -> None:
    frame = code_frame()
    turned = cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE)
    values = {code.value for code in CodeScanner().scan(turned).codes}
    assert "4006381333931" in values
    centre = CodeScanner().scan(frame, region="center")
    assert centre.codes == []
    assert centre.image_size == (640, 480)


def test_no_codes_in_photographs() -> None:
    for name in ("astronaut", "coffee", "chelsea"):
        assert CodeScanner().scan(bgr(name)).codes == []


# --- people ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces() -> FaceFinder:
    finder = FaceFinder()
    finder.warmup()
    return finder


def test_the_astronaut_is_one_person_near_in_the_centre(faces: FaceFinder) -> None:
    count = faces.count(bgr("astronaut"))
    assert count.people == 1
    face = count.faces[0]
    assert (face.place, face.distance) == ("centre", "near")
    x, y, w, h = face.box
    assert 150 < x + w / 2 < 260 and 40 < y + h / 2 < 160  # her face, not the flag
    assert 0.5 < face.confidence <= 1.0


def test_two_people_side_by_side_and_none_in_other_photos(faces: FaceFinder) -> None:
    astronaut = bgr("astronaut")
    small = cv2.resize(astronaut, (300, 300), interpolation=cv2.INTER_AREA)
    pair = np.full((480, 640, 3), 255, np.uint8)
    paste(pair, small, 0, 90)
    paste(pair, small, 340, 90)
    count = faces.count(pair)
    assert count.people == 2
    assert [face.place for face in count.faces] == ["left", "right"]
    for name in ("coffee", "chelsea", "page", "rocket"):
        assert faces.count(bgr(name)).people == 0, name


# --- colours -----------------------------------------------------------------------------


def test_palette_names_are_their_own_nearest() -> None:
    for name, rgb in PALETTE.items():
        assert name_colour(rgb)[0] == name


@pytest.mark.parametrize(
    ("left", "right", "names"),
    [
        ((20, 30, 110), (245, 245, 245), {"dark blue", "white"}),
        ((210, 30, 35), (45, 160, 60), {"red", "green"}),
        ((190, 190, 190), (245, 215, 30), {"light grey", "yellow"}),
    ],
)
def test_colour_patches_get_their_names(
    left: tuple[int, int, int], right: tuple[int, int, int], names: set[str]
) -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :400] = left[::-1]  # RGB → BGR
    frame[:, 400:] = right[::-1]
    noisy = np.clip(frame + np.random.default_rng(1).normal(0, 4, frame.shape), 0, 255)
    report = dominant_colours(noisy.astype(np.uint8))
    assert {c.name for c in report.colours} == names
    assert report.colours[0].share == pytest.approx(400 / 640, abs=0.02)
    assert all(c.confidence > 0.6 for c in report.colours)


def test_center_region_sees_only_what_is_held_up() -> None:
    frame = np.full((480, 640, 3), (35, 30, 210), np.uint8)  # red (BGR)
    frame[90:390, 120:520] = (60, 160, 45)  # green, a little larger than the centre
    assert [c.name for c in dominant_colours(frame, region="center").colours] == ["green"]
    assert {c.name for c in dominant_colours(frame).colours} == {"red", "green"}


def test_photo_colours() -> None:
    assert dominant_colours(bgr("coffee")).colours[0].name == "brown"
    assert dominant_colours(bgr("chelsea"), region="center").colours[0].name == "brown"


# --- light -------------------------------------------------------------------------------


def test_light_on_photos_and_spoiled_frames() -> None:
    astronaut = bgr("astronaut")
    good = assess_light(astronaut)
    assert (good.level, good.blurred, good.advice) == ("good", False, [])
    dark = assess_light((astronaut * 0.08).astype(np.uint8))
    assert dark.too_dark and dark.advice == ["more light"]
    bright = assess_light(cv2.convertScaleAbs(astronaut, alpha=1.0, beta=200))
    assert bright.too_bright and "turn away from the light" in bright.advice
    blurred = assess_light(cv2.GaussianBlur(astronaut, (0, 0), 3))
    assert blurred.blurred and blurred.advice == ["hold steady"]
    flat = assess_light(np.full((480, 640, 3), 128, np.uint8))
    assert flat.flat and not flat.blurred and flat.advice == ["move closer"]
    assert assess_light(bgr("rocket")).level == "dim"


# --- OCR extensions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(registry: ToolRegistry) -> TextReader:
    reader: TextReader = registry.get("read_text").reader  # type: ignore[attr-defined]
    return reader


def flush_left(lines: list[str], size: tuple[int, int]) -> np.ndarray:
    """Lines set flush left from x = 16, as on a page."""
    image = np.full((size[1], size[0], 3), 255, np.uint8)
    for i, line in enumerate(lines):
        y = 60 + 44 * i
        cv2.putText(image, line, (16, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2, cv2.LINE_AA)
    return image


def test_document_mode_reads_columns_in_order(reader: TextReader) -> None:
    head = render_text_image(["THE HEADING"], size=(640, 80), scale=1.2)
    left = flush_left(["FIRST COLUMN", "LINE TWO"], (320, 300))
    right = flush_left(["SECOND COLUMN", "LAST LINE"], (320, 300))
    page = np.vstack([head, np.hstack([left, right])])
    lines = [line.text for line in reader.read(page).lines]
    assert lines == ["THE HEADING", "FIRST COLUMN", "SECOND COLUMN", "LINE TWO", "LAST LINE"]
    document = reader.read(page, mode="document")
    assert [line.text for line in document.lines] == [
        "THE HEADING",
        "FIRST COLUMN",
        "LINE TWO",
        "SECOND COLUMN",
        "LAST LINE",
    ]
    assert document.paragraphs[0] == "THE HEADING"
    assert document.paragraphs[1] == "FIRST COLUMN LINE TWO"


def test_document_mode_on_a_scanned_page(reader: TextReader) -> None:
    reading = reader.read(bgr("page"), mode="document")
    assert reading.mode == "document"
    assert reading.paragraphs and reading.paragraphs[0].startswith("Region-based")
    assert "markers are pixels" in " ".join(reading.paragraphs)


@pytest.mark.parametrize("turn", [cv2.ROTATE_90_CLOCKWISE, cv2.ROTATE_90_COUNTERCLOCKWISE])
def test_a_label_held_sideways_is_read_in_order(reader: TextReader, turn: int) -> None:
    label = render_text_image(["ORGANIC OAT MILK", "USE BY 12 MAY", "KEEP COLD"], scale=1.0)
    reading = reader.read(cv2.rotate(label, turn))
    assert [line.text for line in reading.lines] == [
        "ORGANIC OAT MILK",
        "USE BY 12 MAY",
        "KEEP COLD",
    ]
    assert reading.image_size == (480, 640)
    for line in reading.lines:  # boxes in the sideways image: taller than wide
        box = np.array(line.box)
        assert np.ptp(box[:, 1]) > np.ptp(box[:, 0])


def test_small_text_in_a_small_image(reader: TextReader) -> None:
    tiny = render_text_image(["BUS STOP 42"], size=(160, 120), scale=0.35, thickness=1)
    assert reader.read(tiny).text.replace(" ", "") == "BUSSTOP42"


# --- bad input for every tool ------------------------------------------------------------

TOOLS = ["read_text", "scan_codes", "people", "colours", "light", "describe_scene"]


@pytest.mark.parametrize("name", TOOLS)
def test_bad_frames_give_a_clear_error_or_a_result(registry: ToolRegistry, name: str) -> None:
    rgba = cv2.cvtColor(bgr("astronaut"), cv2.COLOR_BGR2BGRA)
    grey = cv2.cvtColor(bgr("astronaut"), cv2.COLOR_BGR2GRAY)
    cases: list[tuple[str, np.ndarray | None]] = [
        ("none", None),
        ("1x1", np.zeros((1, 1, 3), np.uint8)),
        ("empty", np.zeros((0, 0, 3), np.uint8)),
        ("odd shape", np.zeros((10, 10, 7), np.uint8)),
        ("grey", grey),
        ("rgba", rgba),
    ]
    for label, image in cases:
        result = call(registry, name, image)
        if result.ok:
            assert label in ("1x1", "grey", "rgba"), (label, result.content)
            json.loads(result.content)
        else:
            assert result.error and "failed:" not in result.error, (label, result.error)
            assert any(w in result.error for w in ("too small", "no camera frame", "shape"))
    for label in ("grey", "rgba"):
        image = grey if label == "grey" else rgba
        assert call(registry, name, image).ok, label


@pytest.mark.slow
def test_a_huge_frame_is_scaled_down(registry: ToolRegistry) -> None:
    huge = cv2.resize(bgr("astronaut"), (8000, 8000), interpolation=cv2.INTER_NEAREST)
    for name in ("scan_codes", "people", "colours", "light"):
        t0 = time.perf_counter()
        result = call(registry, name, huge)
        assert result.ok, (name, result.error)
        assert json.loads(result.content)["image_size"] == [8000, 8000]
        assert time.perf_counter() - t0 < 10, name
    assert json.loads(call(registry, "people", huge).content)["people"] >= 1


def test_tool_errors_are_heron_errors() -> None:
    with pytest.raises(ToolError, match="too small"):
        assess_light(np.zeros((0, 5), np.uint8))


# --- offline routing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "tool"),
    [
        ("describe the room", "describe_scene"),
        ("what's in front of me", "describe_scene"),
        ("what do you see", "describe_scene"),
        ("is there any barcode", "scan_codes"),
        ("scan this", "scan_codes"),
        ("how many people are there", "people"),
        ("is anyone here", "people"),
        ("what colour is this shirt", "colours"),
        ("is it dark in here", "light"),
        ("how's the light", "light"),
        ("read this", "read_text"),
        ("who won the match", None),
    ],
)
def test_offline_requests_go_to_their_tool(
    registry: ToolRegistry, said: str, tool: str | None
) -> None:
    request = ThinkRequest(
        messages=[{"role": "user", "content": said}],
        tools=registry.schemas(),
        allow_tools=True,
        image_data_url=None,
    )
    reply = asyncio.run(OfflineThinker().think(request))
    assert [call.name for call in reply.tool_calls] == ([tool] if tool else [])
