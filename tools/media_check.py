"""Evidence about where an image came from: the ``check_media`` tool and ``heron check``.

For a file or an http(s) URL: its C2PA content credentials and metadata markers
(:mod:`heron.tools.provenance`), and the screen-replay measurements of its
pixels. For the current camera frame: the screen-replay check
(:mod:`heron.tools.screen_replay`). Every finding is a
:class:`~heron.tools.media_signals.MediaSignal` with a strength; the summary is
one or two sentences fit to be spoken, and never claims more than the evidence.

Bad input (a missing file, damaged or non-image data, an image too large to
decode, an unreachable URL) raises :class:`MediaCheckError` with a message a
person can act on; a tool call turns it into a message for the model.
"""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

from heron.agent.config import MediaConfig
from heron.agent.errors import ToolError
from heron.tools.base import Tool, ToolArgs, ToolContext
from heron.tools.media_signals import RANK, MediaSignal, strongest
from heron.tools.provenance import (
    ContentCredentials,
    MetadataMarker,
    credential_signals,
    marker_signals,
    read_credentials,
    read_markers,
)
from heron.tools.screen_replay import ScreenReplayResult, screen_replay_score

MAX_FILE_BYTES = 200 * 1024 * 1024
"""Files larger than this are refused rather than read into memory."""

MAX_DECODE_PIXELS = 60_000_000
"""Images with more pixels are not decoded: metadata and credentials only."""


class MediaCheckError(ToolError):
    """The media cannot be checked: missing, unreadable, too large, or unreachable."""


class MediaCheckResult(BaseModel):
    """Everything found about one image, strongest evidence first."""

    source: str
    origin: Literal["file", "url", "frame"]
    media_type: str | None = None
    size: tuple[int, int] | None = Field(None, description="(width, height) in pixels")
    signals: list[MediaSignal]
    summary: str = Field(description="one or two sentences, fit to be spoken")
    credentials: ContentCredentials | None = None
    metadata: list[MetadataMarker] = Field(default_factory=list)
    screen_replay: ScreenReplayResult | None = None
    notes: list[str] = Field(default_factory=list, description="what could not be checked")

    def for_model(self) -> dict[str, Any]:
        """The parts the language model needs (the raw measurements stay out)."""
        return {
            "source": self.source,
            "summary": self.summary,
            "signals": [s.model_dump() for s in self.signals],
            "notes": self.notes,
        }


# Reading ------------------------------------------------------------------------

_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF", "application/pdf"),
]


def sniff_type(data: bytes) -> str | None:
    """The MIME type from the first bytes, for the formats content credentials live in."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heic"
        return "video/mp4"
    return None


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def fetch_url(url: str, *, max_bytes: int, timeout_s: float) -> bytes:
    """GET ``url`` with a size cap and an overall deadline."""
    import httpx

    deadline = time.monotonic() + timeout_s
    try:
        with httpx.stream(
            "GET",
            url,
            timeout=timeout_s,
            follow_redirects=True,
            headers={"User-Agent": "heron-check"},
        ) as response:
            if response.status_code >= 400:
                raise MediaCheckError(f"{url} answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise MediaCheckError(f"{url} is {int(declared) / 1e6:.1f} MB, over the limit")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise MediaCheckError(f"{url} is over the {max_bytes / 1e6:.0f} MB limit")
                if time.monotonic() > deadline:
                    raise MediaCheckError(f"{url} took longer than {timeout_s:.0f} s to download")
    except httpx.TimeoutException:
        raise MediaCheckError(
            f"{url} did not answer within {timeout_s:.0f} s", retryable=True
        ) from None
    except httpx.InvalidURL as exc:
        raise MediaCheckError(f"not a valid URL: {url} ({exc})") from None
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise MediaCheckError(f"cannot fetch {url}: {reason}", retryable=True) from None
    return bytes(body)


def read_file(path: Path) -> bytes:
    path = path.expanduser()
    if not path.exists():
        raise MediaCheckError(f"no such file: {path}")
    if not path.is_file():
        raise MediaCheckError(f"not a file: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise MediaCheckError(f"{path} is {size / 1e6:.0f} MB; files over 200 MB are not checked")
    if size == 0:
        raise MediaCheckError(f"{path} is empty")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MediaCheckError(f"cannot read {path}: {exc.strerror or exc}") from None


def _decode(data: bytes, notes: list[str]) -> tuple[Any, np.ndarray | None]:
    """(Pillow image or None, BGR pixels or None); problems go into ``notes``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        notes.append(f"The image is too large to decode ({exc}).")
        return None, None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        notes.append(f"The image data cannot be decoded ({exc}).")
        return None, None
    width, height = image.size
    if width * height > MAX_DECODE_PIXELS:
        notes.append(
            f"The image is {width}×{height} ({width * height / 1e6:.0f} megapixels), too large "
            "to decode; only its metadata and credentials were checked."
        )
        return image, None
    try:
        image.load()
        rgb = np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        notes.append(f"The image data is damaged or cut short ({exc}).")
        return image, None
    return image, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


# Checking -----------------------------------------------------------------------


def check_bytes(
    data: bytes,
    *,
    source: str,
    origin: Literal["file", "url"],
    trust_anchors: Path | None = None,
) -> MediaCheckResult:
    """Check an image file's bytes: credentials, metadata, and its pixels."""
    media_type = sniff_type(data)
    if media_type is None:
        raise MediaCheckError(f"{source} is not an image heron can check (unknown file type)")
    notes: list[str] = []
    credentials = read_credentials(data, media_type, trust_anchors=trust_anchors)
    if credentials.error:
        notes.append(f"Content credentials: {credentials.error}.")
    image, pixels = _decode(data, notes) if media_type.startswith("image/") else (None, None)
    if image is None and not credentials.present:
        problems = [n for n in notes if not n.startswith("Content credentials")]
        problem = problems[0] if problems else f"{media_type} files hold no image heron can read."
        raise MediaCheckError(f"cannot check {source}: {problem}")

    markers = read_markers(image) if image is not None else []
    signals = credential_signals(credentials) + marker_signals(markers)
    if not signals:
        signals.append(
            MediaSignal(
                kind="no_provenance",
                strength="weak",
                detail=(
                    "There are no content credentials and no generator markers; most images "
                    "carry none and metadata is easily removed, so this says nothing either way."
                ),
            )
        )
    replay = None
    if pixels is not None and min(pixels.shape[:2]) >= 64:
        replay = screen_replay_score(pixels)
        signals += replay.signals
    signals = strongest(signals)
    return MediaCheckResult(
        source=source,
        origin=origin,
        media_type=media_type,
        size=image.size if image is not None else None,
        signals=signals,
        summary=summarize(signals, credentials),
        credentials=credentials,
        metadata=markers,
        screen_replay=replay,
        notes=notes,
    )


def check_media(source: str | Path, *, config: MediaConfig | None = None) -> MediaCheckResult:
    """Check a file path or an http(s) URL."""
    config = config or MediaConfig()
    text = str(source).strip()
    if not text:
        raise MediaCheckError("give a file path or an http(s) URL to check")
    if _is_url(text):
        data = fetch_url(
            text,
            max_bytes=int(config.fetch_max_mb * 1024 * 1024),
            timeout_s=config.fetch_timeout_s,
        )
        origin: Literal["file", "url"] = "url"
    elif "://" in text:
        raise MediaCheckError(f"only http and https URLs can be fetched, not {text.split(':')[0]}")
    else:
        data = read_file(Path(text))
        origin = "file"
    return check_bytes(data, source=text, origin=origin, trust_anchors=config.trust_anchors)


def check_frame(image: np.ndarray, *, source: str = "camera frame") -> MediaCheckResult:
    """Check a live frame (uint8 BGR): does the camera seem to be looking at a screen?"""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or min(image.shape[:2]) < 64:
        raise MediaCheckError("the frame is too small or not an 8-bit image")
    replay = screen_replay_score(image)
    if replay.signals:
        summary = replay.warning or (
            "There are some signs this could be a screen rather than the scene itself: "
            + replay.signals[0].detail[0].lower()
            + replay.signals[0].detail[1:]
        )
    else:
        summary = (
            "I see no sign that the camera is looking at a screen, though a very fine "
            "screen held far away can escape this check."
        )
    height, width = image.shape[:2]
    return MediaCheckResult(
        source=source,
        origin="frame",
        size=(width, height),
        signals=replay.signals,
        summary=summary,
        screen_replay=replay,
    )


# What to say --------------------------------------------------------------------

_LEADS: dict[str, dict[str, str]] = {
    "ai_generated": {
        "strong": "This image is declared to be AI-generated.",
        "moderate": "This image is marked as AI-generated.",
        "weak": "There is a weak hint that this image is AI-generated.",
    },
    "ai_edited": {
        "strong": "This image is declared to contain AI-generated or AI-enhanced parts.",
        "moderate": "This image is marked as containing AI-generated or AI-enhanced parts.",
        "weak": "There is a weak hint that this image has AI-made parts.",
    },
    "synthetic": {
        "strong": "This image is declared to be made by software, not taken by a camera.",
        "moderate": "This image is marked as made by software, not taken by a camera.",
        "weak": "There is a weak hint that this image was made by software.",
    },
    "screen_replay": {
        "strong": "This looks like a photo of a screen.",
        "moderate": "This may be a photo of a screen.",
        "weak": "There is a faint sign this could be a photo of a screen.",
    },
}


_SIGNATURE = {
    "Trusted": " The signature and the signer check out.",
    "Valid": " The signature checks out, though the signer is not on a trust list.",
}


def summarize(signals: list[MediaSignal], credentials: ContentCredentials | None = None) -> str:
    """One or two sentences led by the finding that matters most."""
    signed = next((s for s in signals if s.kind == "content_credentials"), None)
    if credentials is not None and credentials.validation_state == "Invalid" and signed:
        return "This image's content credentials do not match it. " + signed.detail
    for kind, leads in _LEADS.items():
        found = [
            s
            for s in signals
            if s.kind == kind and not (kind == "screen_replay" and s.strength == "weak")
        ]
        if found:
            top = max(found, key=lambda s: RANK[s.strength])
            text = f"{leads[top.strength]} {top.detail}"
            if credentials is not None and top.source == "c2pa":
                text += _SIGNATURE.get(credentials.validation_state or "", "")
            return text
    if signed is not None:
        return signed.detail
    parts = ["It has no content credentials and no marks of AI generation."]
    hints = [s for s in signals if s.kind in ("camera_capture", "edited")]
    if hints:
        parts.append(hints[0].detail)
    else:
        parts.append("That says nothing either way: most images carry none.")
    return " ".join(parts)


# The tool -----------------------------------------------------------------------


class CheckMediaArgs(ToolArgs):
    source: str = Field(
        "",
        description="a file path or http(s) URL of an image; empty to check the camera frame",
        max_length=2048,
    )


class CheckMediaTool(Tool[CheckMediaArgs]):
    """Look for evidence about where an image came from.

    With a file path or an http(s) URL: reads the image's C2PA content credentials
    (who signed it, whether it declares AI generation or edits, whether the
    signature checks out) and metadata markers of generated media. With no source:
    checks the current camera frame for signs that the camera is pointed at a
    screen (moiré, refresh bands). Returns evidence with strengths and a summary;
    report it as evidence, not as a verdict on whether the image is fake.
    """

    name: ClassVar[str] = "check_media"
    Args = CheckMediaArgs
    timeout_s = 30.0

    def __init__(self, config: MediaConfig | None = None) -> None:
        self.config = config or MediaConfig()

    def run(self, args: CheckMediaArgs, ctx: ToolContext) -> dict[str, Any]:
        if not args.source.strip():
            return check_frame(ctx.require_frame()).for_model()
        if _is_url(args.source) and not self.config.allow_urls:
            raise MediaCheckError("fetching URLs is switched off (HERON_MEDIA_ALLOW_URLS)")
        return check_media(args.source, config=self.config).for_model()
