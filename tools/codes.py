"""Reading QR codes and barcodes: the ``scan_codes`` tool.

It uses zxing-cpp, the C++ port of ZXing, through its Python wheel. Compared with
OpenCV's ``QRCodeDetector`` and ``barcode.BarcodeDetector`` it reads many more
formats (QR, Micro QR, Data Matrix, Aztec, PDF417, EAN/UPC, Code 128/39/93,
ITF, Codabar, DataBar), several codes in one frame, codes turned 90° or upside
down and light-on-dark ones, and it does so in a few milliseconds on a 640×480
frame. On the same rendered frame with a QR code, an EAN-13 and a Code 128 it
found all three, where OpenCV's detectors found none.

zxing-cpp only returns codes whose error correction or check digit passed; the
``confidence`` reported here says how much that check is worth for the format
(see :data:`CHECKED_FORMATS`).
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from heron.agent.errors import ToolError
from heron.tools.base import Tool, ToolArgs, ToolContext
from heron.tools.perception import (
    Place,
    Region,
    as_bgr,
    box_center,
    check_size,
    fit_within,
    horizontal_place,
    region_crop,
)

log = logging.getLogger(__name__)

MAX_SIDE = 1600
"""Longer sides are scaled down to this first; zxing-cpp also tries smaller copies itself."""

MATRIX_FORMATS = frozenset(
    {"QRCode", "MicroQRCode", "RMQRCode", "DataMatrix", "Aztec", "AztecCode", "AztecRune"}
    | {"PDF417", "CompactPDF417", "MicroPDF417", "MaxiCode", "QRCodeModel1", "QRCodeModel2"}
)
PRODUCT_FORMATS = frozenset({"EAN13", "EAN8", "UPCA", "UPCE", "ISBN", "EANUPC"})
CHECKED_FORMATS = MATRIX_FORMATS | PRODUCT_FORMATS | frozenset({"Code128", "Code93", "ITF14"})
"""Formats whose error correction or mandatory check digit makes a misread very unlikely.
Others (Code 39, Codabar, plain ITF) have no mandatory check, so a misread can pass."""


class Code(BaseModel):
    """One QR code or barcode found in the image."""

    value: str = Field(description="the decoded text (digits for product barcodes)")
    format: str = Field(description='the symbology, e.g. "QR Code", "EAN-13", "Code 128"')
    kind: Literal["qr", "matrix", "product", "linear"] = Field(
        description="qr: a QR code; matrix: another 2-D code; product: an EAN/UPC "
        "retail barcode; linear: another 1-D barcode"
    )
    confidence: float = Field(description="0..1: 0.99 when the format's check passed")
    box: list[tuple[int, int]] = Field(
        description="four corners (x, y) in image pixels: top-left, top-right, "
        "bottom-right, bottom-left"
    )
    center: tuple[float, float] = Field(description="centre (x, y), fractions 0..1 of the image")
    place: Place = Field(description="where it is across the frame")


class CodeScan(BaseModel):
    """Every code found in one image, left to right."""

    codes: list[Code]
    elapsed_ms: float
    image_size: tuple[int, int] = Field(description="(width, height) of the image scanned")


def _kind(format_name: str) -> Literal["qr", "matrix", "product", "linear"]:
    if format_name.startswith("QRCode") or format_name in ("MicroQRCode", "RMQRCode"):
        return "qr"
    if format_name in MATRIX_FORMATS:
        return "matrix"
    if format_name in PRODUCT_FORMATS:
        return "product"
    return "linear"


class CodeScanner:
    """zxing-cpp behind one method; imported on first use."""

    def __init__(self, *, max_side: int = MAX_SIDE) -> None:
        self.max_side = max_side
        self._zxing: Any = None

    def _module(self) -> Any:
        if self._zxing is None:
            try:
                import zxingcpp
            except ImportError as exc:  # a broken install, not a user error
                raise ToolError(f"the code reader is not installed: {exc}") from exc
            self._zxing = zxingcpp
        return self._zxing

    def warmup(self) -> None:
        self.scan(np.full((64, 64, 3), 255, np.uint8))

    def scan(self, image: np.ndarray, *, region: Region = "full") -> CodeScan:
        """Find and decode every code in ``image`` (BGR, greyscale or BGRA)."""
        t0 = time.perf_counter()
        bgr = as_bgr(image, what="scan for codes")
        full_h, full_w = bgr.shape[:2]
        x0, y0, x1, y1 = region_crop(bgr.shape, region)
        bgr = bgr[y0:y1, x0:x1]
        check_size(bgr, what="scan for codes")
        small, scale = fit_within(bgr, self.max_side)
        zxing = self._module()
        found = zxing.read_barcodes(np.ascontiguousarray(small))
        codes: list[Code] = []
        for barcode in found:
            p = barcode.position
            corners = np.array(
                [(c.x, c.y) for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)],
                dtype=np.float64,
            )
            corners = corners / scale + (x0, y0)
            corners[:, 0] = np.clip(corners[:, 0], 0, full_w)
            corners[:, 1] = np.clip(corners[:, 1], 0, full_h)
            center = box_center(corners, full_w, full_h)
            name = barcode.format.name
            codes.append(
                Code(
                    value=barcode.text,
                    format=str(barcode.format),
                    kind=_kind(name),
                    confidence=0.99 if name in CHECKED_FORMATS else 0.8,
                    box=[(round(x), round(y)) for x, y in corners],
                    center=center,
                    place=horizontal_place(center[0]),
                )
            )
        codes.sort(key=lambda code: code.center[0])
        elapsed = (time.perf_counter() - t0) * 1000
        log.debug("found %d codes in %.0f ms", len(codes), elapsed)
        return CodeScan(codes=codes, elapsed_ms=round(elapsed, 1), image_size=(full_w, full_h))


class ScanCodesArgs(ToolArgs):
    region: Region = Field(
        "full",
        description='"full" scans the whole frame; "center" only its middle 60%',
    )


class ScanCodesTool(Tool[ScanCodesArgs]):
    """Find and read QR codes and barcodes in the current camera frame.

    Returns each code's decoded value, its format (QR Code, EAN-13, Code 128, ...),
    its kind (qr, matrix, product, linear), a confidence (0..1) and where it is in
    the frame. Product barcodes (EAN/UPC) give the product number, not its name.
    An empty "codes" list means none was found: the code may be too small, blurred
    or cut off at the frame's edge.
    """

    name: ClassVar[str] = "scan_codes"
    Args = ScanCodesArgs

    def __init__(self, scanner: CodeScanner | None = None) -> None:
        self.scanner = scanner if scanner is not None else CodeScanner()

    def warmup(self) -> None:
        self.scanner.warmup()

    def run(self, args: ScanCodesArgs, ctx: ToolContext) -> CodeScan:
        return self.scanner.scan(ctx.require_frame(), region=args.region)
