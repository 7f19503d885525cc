"""Synthetic-media signals: C2PA credentials, metadata markers, screen replay, ``heron check``.

Real parts throughout: c2pa-python reads and signs (with the public C2PA test
certificate in tests/data/c2pa), Pillow writes the metadata, frames are drawn
and read back through OpenCV, URLs are fetched from an HTTP server on loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import io
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from heron.agent.cli import main
from heron.agent.config import MediaConfig
from heron.agent.events import ToolCall, VideoFrame
from heron.tools.base import ToolContext, ToolRegistry
from heron.tools.media_check import (
    CheckMediaTool,
    MediaCheckError,
    check_bytes,
    check_frame,
    check_media,
)
from heron.tools.screen_replay import WARN_SCORE, ScreenReplayWatch, screen_replay_score
from tests.support.screens import ordinary_photo, photo, random_shot, screen_photo

C2PA = Path(__file__).parent / "data" / "c2pa"
IPTC_AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def kinds(result: object) -> dict[str, str]:
    return {s.kind: s.strength for s in result.signals}  # type: ignore[attr-defined]


def jpeg_bytes(**save: object) -> bytes:
    """A real photo (scikit-image's astronaut) as a JPEG, with Pillow save options."""
    image = Image.fromarray(cv2.cvtColor(photo("astronaut"), cv2.COLOR_BGR2RGB))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, **save)
    return buffer.getvalue()


def sign(source: bytes, digital_source_type: str) -> bytes:
    """Sign a JPEG with the C2PA test certificate, declaring how it was made."""
    import c2pa

    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256,
            (C2PA / "es256_certs.pem").read_bytes(),
            (C2PA / "es256_private.key").read_bytes(),
            None,
        )
    )
    manifest = {
        "claim_generator_info": [{"name": "heron-tests", "version": "1"}],
        "title": "generated.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "softwareAgent": {"name": "ExampleDiffusion 2"},
                            "digitalSourceType": digital_source_type,
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(source), out)
    return out.getvalue()


# Content credentials --------------------------------------------------------------


def test_c_jpg_is_signed_with_a_valid_manifest() -> None:
    result = check_media(C2PA / "C.jpg")
    cred = result.credentials
    assert cred is not None and cred.present
    assert cred.validation_state == "Valid"
    assert cred.signer == "C2PA Signer" and cred.issuer == "C2PA Test Signing Cert"
    assert cred.claim_generator and "make_test_images" in cred.claim_generator
    assert [a.action for a in cred.actions] == ["c2pa.created"]
    assert kinds(result)["content_credentials"] == "strong"
    assert "check out" in result.signals[0].detail
    assert kinds(result)["synthetic"] == "strong"  # declared algorithmicMedia
    assert "ai_generated" not in kinds(result)
    assert "signature checks out" in result.summary


def test_a_jpg_has_no_credentials() -> None:
    result = check_media(str(C2PA / "A.jpg"))
    assert result.credentials is not None and not result.credentials.present
    assert "content_credentials" not in kinds(result)
    assert "ai_generated" not in kinds(result)
    assert result.summary.startswith("It has no content credentials")
    assert kinds(result)["camera_capture"] == "weak"


def test_an_image_signed_as_ai_generated_is_reported_as_such(tmp_path: Path) -> None:
    signed = tmp_path / "generated.jpg"
    signed.write_bytes(sign(jpeg_bytes(), IPTC_AI))
    result = check_media(signed)
    assert result.credentials is not None and result.credentials.validation_state == "Valid"
    assert result.credentials.actions[0].digital_source_type == IPTC_AI
    assert kinds(result)["ai_generated"] == "strong"
    assert "ExampleDiffusion 2" in result.summary
    assert result.summary.startswith("This image is declared to be AI-generated.")

    # With the test chain's root as a trust anchor the signer is confirmed too.
    pem = (C2PA / "es256_certs.pem").read_text()
    root = pem[pem.rindex("-----BEGIN CERTIFICATE-----") :]
    (tmp_path / "anchors.pem").write_text(root)
    trusted = check_media(signed, config=MediaConfig(trust_anchors=tmp_path / "anchors.pem"))
    assert trusted.credentials is not None
    assert trusted.credentials.validation_state == "Trusted"
    assert "signer check out" in trusted.summary


def test_changing_a_signed_image_breaks_its_credentials() -> None:
    signed = bytearray(sign(jpeg_bytes(), IPTC_AI))
    # Flip bits in the entropy-coded data near the end: still a JPEG, different pixels.
    for offset in range(len(signed) - 4000, len(signed) - 3000, 97):
        signed[offset] ^= 0x10
    result = check_bytes(bytes(signed), source="edited.jpg", origin="file")
    assert result.credentials is not None
    assert result.credentials.validation_state == "Invalid"
    assert any("mismatch" in f for f in result.credentials.failures)
    assert kinds(result)["ai_generated"] == "weak"  # a broken claim counts for little
    assert result.summary.startswith("This image's content credentials do not match it.")


# Metadata markers -----------------------------------------------------------------

XMP_ELEMENT = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">
   <Iptc4xmpExt:DigitalSourceType>{IPTC_AI}</Iptc4xmpExt:DigitalSourceType>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""

XMP_ATTRIBUTE = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Photo Studio 3"
 Iptc4xmpExt:DigitalSourceType="{IPTC_AI}"/>
</rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""


@pytest.mark.parametrize("packet", [XMP_ELEMENT, XMP_ATTRIBUTE], ids=["element", "attribute"])
def test_a_jpeg_with_the_iptc_ai_marker_is_reported(tmp_path: Path, packet: str) -> None:
    path = tmp_path / "marked.jpg"
    path.write_bytes(jpeg_bytes(xmp=packet.encode()))
    result = check_media(path)
    assert result.credentials is not None and not result.credentials.present
    assert kinds(result)["ai_generated"] == "moderate"
    signal = next(s for s in result.signals if s.kind == "ai_generated")
    assert signal.source == "xmp" and "trainedAlgorithmicMedia" in signal.detail
    assert result.summary.startswith("This image is marked as AI-generated.")


def test_xmp_with_entities_is_not_expanded(tmp_path: Path) -> None:
    # "Billion laughs": nested entities that would expand to gigabytes if resolved.
    entities = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    bomb = f"<!DOCTYPE x [{entities}]>" + XMP_ELEMENT.replace(IPTC_AI, IPTC_AI + "&l9;")
    path = tmp_path / "bomb.jpg"
    path.write_bytes(jpeg_bytes(xmp=bomb.encode()))
    t0 = time.monotonic()
    assert "ai_generated" not in kinds(check_media(path))
    assert time.monotonic() - t0 < 5


def test_generator_tags_in_png_text_and_exif(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    image = Image.fromarray(cv2.cvtColor(photo("coffee"), cv2.COLOR_BGR2RGB))
    info = PngImagePlugin.PngInfo()
    prompt = "a cup of espresso on a wooden table, morning light, " * 8  # settings come last
    info.add_text(
        "parameters",
        f"{prompt}\nNegative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 600x400",
    )
    image.save(tmp_path / "sd.png", pnginfo=info)
    result = check_media(tmp_path / "sd.png")
    assert result.media_type == "image/png"
    assert kinds(result)["ai_generated"] == "moderate"
    assert any("generation settings" in s.detail for s in result.signals)

    exif = Image.Exif()
    exif[0x0131] = "Midjourney v6"  # Software
    image.save(tmp_path / "mj.jpg", exif=exif)
    result = check_media(tmp_path / "mj.jpg")
    assert kinds(result)["ai_generated"] == "moderate"
    assert any("Midjourney" in s.detail for s in result.signals)

    # A plain photo with nothing in it: no evidence either way, and said so.
    image.save(tmp_path / "plain.jpg")
    result = check_media(tmp_path / "plain.jpg")
    assert list(kinds(result)) == ["no_provenance"]
    assert "says nothing either way" in result.summary


# Screen replay --------------------------------------------------------------------

NATURAL = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins"]
ROOMS = ["immunohistochemistry", "stereo_motorcycle", "gravel"]


@pytest.fixture(scope="module")
def held_out_frames(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, Path]]:
    """(kind, name, PNG path): screens, banding-only screens and photos, from a seed
    never used while tuning the detector."""
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(9090)
    frames: list[tuple[str, str, np.ndarray]] = []
    for i, name in enumerate(NATURAL):
        content = photo(name)
        shot = random_shot(rng, min_contrast=0.15)  # a grid the camera can resolve
        room = photo(ROOMS[i % len(ROOMS)]) if shot.screen_fraction < 1 else None
        frames.append(("screen", name, screen_photo(content, shot, rng, room=room)))
        if i % 2 == 0:  # a fine screen whose grid is lost, but whose refresh shows
            banded = dataclasses.replace(
                shot, pitch=1.0, blur=1.0, banding=float(rng.uniform(0.1, 0.2))
            )
            frames.append(("banding", name, screen_photo(content, banded, rng, room=room)))
        frames.append(("photo", name, ordinary_photo(name, rng)))
        blurred = cv2.GaussianBlur(ordinary_photo(name, rng), (0, 0), 1.2)
        _, data = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 40])
        frames.append(("photo", f"{name} blurred, q40", cv2.imdecode(data, cv2.IMREAD_COLOR)))
    paths = []
    for k, (kind, name, frame) in enumerate(frames):
        path = folder / f"{k:02d}-{kind}.png"
        cv2.imwrite(str(path), frame)
        paths.append((kind, name, path))
    return paths


def test_photographed_screens_and_ordinary_photos_are_told_apart(
    held_out_frames: list[tuple[str, str, Path]],
) -> None:
    scores: dict[str, list[tuple[str, float]]] = {"screen": [], "banding": [], "photo": []}
    for kind, name, path in held_out_frames:
        frame = cv2.imread(str(path))  # frames come through OpenCV, as from a camera
        scores[kind].append((name, screen_replay_score(frame).score))
    assert all(score < WARN_SCORE for _, score in scores["photo"]), scores["photo"]
    assert all(score >= WARN_SCORE for _, score in scores["screen"]), scores["screen"]
    flagged = sum(score >= WARN_SCORE for _, score in scores["banding"])
    assert flagged >= len(scores["banding"]) - 1, scores["banding"]


def test_screen_replay_result_is_evidence_with_a_warning(
    held_out_frames: list[tuple[str, str, Path]],
) -> None:
    screen = next(p for kind, _, p in held_out_frames if kind == "screen")
    result = check_frame(cv2.imread(str(screen)))
    assert result.origin == "frame" and result.signals
    assert all(s.kind == "screen_replay" and s.source == "pixels" for s in result.signals)
    assert result.summary.startswith("This may be a picture of a screen")
    plain = next(p for kind, _, p in held_out_frames if kind == "photo")
    result = check_frame(cv2.imread(str(plain)))
    assert result.screen_replay is not None and result.screen_replay.warning is None
    assert result.summary.startswith("I see no sign")


def test_the_live_watch_warns_once_when_keyframes_agree(
    held_out_frames: list[tuple[str, str, Path]],
) -> None:
    screen = cv2.imread(str(next(p for k, _, p in held_out_frames if k == "screen")))
    plain = cv2.imread(str(next(p for k, _, p in held_out_frames if k == "photo")))
    watch = ScreenReplayWatch(window=3, needed=2, quiet_s=60)
    assert watch.update(plain, now=0.0) is None
    assert watch.update(screen, now=1.0) is None  # one keyframe is not enough
    warning = watch.update(screen, now=2.0)
    assert warning is not None and "screen" in warning
    assert watch.update(screen, now=3.0) is None  # quiet for a while after warning
    assert watch.update(screen, now=70.0) is not None


# The tool -------------------------------------------------------------------------


def call(tool: CheckMediaTool, arguments: dict[str, str], frame: np.ndarray | None = None):
    ctx = ToolContext(
        frame=None if frame is None else VideoFrame(frame, time.monotonic(), time.time(), 0)
    )
    registry = ToolRegistry([tool])
    return asyncio.run(
        registry.call(ToolCall(id="c1", name="check_media", arguments=json.dumps(arguments)), ctx)
    )


def test_check_media_tool_on_a_file_and_on_the_frame(
    held_out_frames: list[tuple[str, str, Path]],
) -> None:
    tool = CheckMediaTool()
    result = call(tool, {"source": str(C2PA / "C.jpg")})
    assert result.ok
    content = json.loads(result.content)
    assert content["signals"][0]["kind"] == "content_credentials"
    assert "signature checks out" in content["summary"]

    screen = cv2.imread(str(next(p for k, _, p in held_out_frames if k == "screen")))
    result = call(tool, {}, frame=screen)
    assert result.ok and "screen" in json.loads(result.content)["summary"]

    result = call(tool, {"source": "/no/such/picture.jpg"})
    assert not result.ok and "no such file" in (result.error or "")
    result = call(tool, {})  # no frame yet
    assert not result.ok and "no camera frame" in (result.error or "")
    result = call(CheckMediaTool(MediaConfig(allow_urls=False)), {"source": "http://x/a.jpg"})
    assert not result.ok and "switched off" in (result.error or "")


def test_check_media_is_a_default_tool() -> None:
    from heron.agent.session import default_tools

    assert "check_media" in default_tools().names()


# Bad input ------------------------------------------------------------------------


def png_of_size(width: int, height: int, text: dict[str, str] | None = None) -> bytes:
    """A real 1-bit PNG of any size, written chunk by chunk (blank rows compress to little)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    extra = b"".join(
        chunk(b"tEXt", f"{k}\x00{v}".encode("latin-1")) for k, v in (text or {}).items()
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def test_bad_files_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaCheckError, match="no such file"):
        check_media(tmp_path / "missing.jpg")
    with pytest.raises(MediaCheckError, match="not a file"):
        check_media(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image at all")
    with pytest.raises(MediaCheckError, match="not an image heron can check"):
        check_media(tmp_path / "notes.txt")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 20)
    with pytest.raises(MediaCheckError, match="cannot be decoded"):
        check_media(tmp_path / "corrupt.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(MediaCheckError, match="empty"):
        check_media(tmp_path / "empty.jpg")
    with open(tmp_path / "huge.jpg", "wb") as sparse:
        sparse.truncate(201 * 1024 * 1024)
    with pytest.raises(MediaCheckError, match="over 200 MB"):
        check_media(tmp_path / "huge.jpg")
    with pytest.raises(MediaCheckError, match="only http and https"):
        check_media("ftp://example.org/a.jpg")

    # Cut short mid-picture: what could be read is reported, with a note.
    (tmp_path / "cut.jpg").write_bytes((C2PA / "A.jpg").read_bytes()[:40000])
    result = check_media(tmp_path / "cut.jpg")
    assert any("damaged or cut short" in note for note in result.notes)
    assert kinds(result)["camera_capture"] == "weak"


def test_huge_images_are_not_decoded(tmp_path: Path) -> None:
    # 400 megapixels: over Pillow's decompression-bomb limit, so nothing to read.
    (tmp_path / "bomb.png").write_bytes(png_of_size(20000, 20000))
    with pytest.raises(MediaCheckError, match="too large to decode"):
        check_media(tmp_path / "bomb.png")
    # 72 megapixels: metadata is still read, the pixels are left alone.
    (tmp_path / "big.png").write_bytes(png_of_size(9000, 8000, {"Software": "NovelAI"}))
    result = check_media(tmp_path / "big.png")
    assert result.size == (9000, 8000) and result.screen_replay is None
    assert any("too large" in note for note in result.notes)
    assert kinds(result)["ai_generated"] == "moderate"


# URLs ------------------------------------------------------------------------------


@pytest.fixture()
def web(tmp_path: Path) -> Iterator[str]:
    """An HTTP server on loopback serving tests/data/c2pa."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(C2PA))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_urls_are_fetched_with_limits(web: str) -> None:
    result = check_media(f"{web}/C.jpg")
    assert result.origin == "url" and result.credentials is not None
    assert result.credentials.validation_state == "Valid"
    with pytest.raises(MediaCheckError, match="HTTP 404"):
        check_media(f"{web}/missing.jpg")
    with pytest.raises(MediaCheckError, match="over the limit"):
        check_media(f"{web}/C.jpg", config=MediaConfig(fetch_max_mb=0.05))
    with pytest.raises(MediaCheckError, match="cannot fetch") as error:
        check_media(f"http://127.0.0.1:{closed_port()}/a.jpg")
    assert error.value.retryable


# heron check -------------------------------------------------------------------------


def test_heron_check_prints_the_evidence(
    heron_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(C2PA / "C.jpg")]) == 0
    out = capsys.readouterr().out
    assert "content credentials: present, valid" in out
    assert "strong  content_credentials:" in out and "summary:" in out

    assert main(["check", str(C2PA / "A.jpg"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["credentials"]["present"] is False
    assert report["summary"].startswith("It has no content credentials")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jpg", None, "no such file"),
        ("notes.txt", b"plain text", "not an image heron can check"),
        ("corrupt.jpg", b"\xff\xd8\xff\xe0garbage" * 50, "cannot be decoded"),
    ],
)
def test_heron_check_bad_input_is_a_message_not_a_traceback(
    heron_env: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | None,
    message: str,
) -> None:
    path = heron_env / name
    if content is not None:
        path.write_bytes(content)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("heron: ") and message in err and "Traceback" not in err


def test_heron_check_unreachable_url(heron_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", f"http://127.0.0.1:{closed_port()}/a.jpg"]) == 2
    assert "cannot fetch" in capsys.readouterr().err
