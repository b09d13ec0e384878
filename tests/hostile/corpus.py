"""Crafted hostile and odd-but-valid inputs, each with the status it must get."""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tests.helpers.images import many_scans_jpeg, poster


@dataclass
class Case:
    name: str
    status: int
    data: bytes | str | None = None
    content_type: str | None = "application/octet-stream"
    method: str = "POST"
    files: dict | None = None
    code: str | None = None  # expected error code, when the status is an error
    headers: dict = field(default_factory=dict)


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    return _save(Image.new("1", (width, height)), "PNG")


def _gif_bomb() -> bytes:
    """A tiny GIF whose logical screen claims 65535x65535 pixels."""
    data = bytearray(_save(Image.new("P", (4, 4)), "GIF"))
    data[6:10] = (65535).to_bytes(2, "little") * 2
    return bytes(data)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return _save(Image.new("RGB", (450, 300), (200, 40, 40)), "JPEG", exif=exif)


def _corrupt_jpeg() -> bytes:
    data = bytearray(poster("Red", size=(400, 600)))
    start = data.find(b"\xff\xda")  # scan data starts after the SOS marker
    for i in range(start + 20, len(data) - 2, 7):
        data[i] = 0xFF  # markers everywhere inside the entropy-coded data
    return bytes(data[: len(data) // 3])


def _broken_png() -> bytes:
    data = bytearray(poster("Blue", fmt="PNG", size=(300, 450)))
    return bytes(data[: len(data) // 2])


def _multipage_tiff() -> bytes:
    frames = [Image.new("RGB", (60, 90), c) for c in ((200, 30, 30), (30, 30, 200), (30, 200, 30))]
    return _save(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (60, 90), c) for c in ((200, 30, 30), (30, 30, 200))]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _palette_transparent() -> bytes:
    image = Image.new("P", (60, 90), 1)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0, 0, 0] * 254)
    return _save(image, "PNG", transparency=0)


def cases() -> list[Case]:
    rng = np.random.default_rng(0)
    jpeg = poster("Red")
    b64 = base64.b64encode(jpeg).decode()
    sixteen = Image.fromarray((np.arange(90 * 60, dtype=np.uint32).reshape(90, 60) * 12).astype(np.uint16))
    return [
        Case("empty", 400, b"", code="empty_body"),
        Case("one byte", 400, b"\xff", code="not_an_image"),
        Case("random bytes", 400, rng.bytes(4096), code="not_an_image"),
        Case("random bytes with JPEG magic", 400, b"\xff\xd8\xff\xe0" + rng.bytes(2048)),
        Case("plain text", 400, "hello, world!", "text/plain", code="invalid_base64"),
        Case("HTML", 400, "<!doctype html><html><body><script>alert(1)</script></body></html>", "text/html", code="invalid_base64"),
        Case(
            "SVG",
            400,
            b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><rect width='10' height='10'/></svg>",
            "image/svg+xml",
            code="not_an_image",
        ),
        Case("PDF", 400, b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "application/pdf", code="not_an_image"),
        Case("ICO (unsupported format)", 400, _save(Image.new("RGB", (16, 16)), "ICO"), "image/x-icon", code="unsupported_format"),
        Case("truncated JPEG", 400, poster("Red", size=(600, 900))[:5000], "image/jpeg", code="undecodable_image"),
        Case("corrupted JPEG", 400, _corrupt_jpeg(), "image/jpeg", code="undecodable_image"),
        Case("broken PNG", 400, _broken_png(), "image/png", code="undecodable_image"),
        Case("PNG decompression bomb", 400, _png_bomb(30000, 30000), "image/png", code="too_many_pixels"),
        Case("GIF decompression bomb", 400, _gif_bomb(), "image/gif", code="too_many_pixels"),
        Case("1x1 PNG", 200, _save(Image.new("RGB", (1, 1), (200, 0, 0)), "PNG"), "image/png"),
        Case("extreme wide", 200, _save(Image.new("RGB", (6000, 4), (0, 0, 200)), "PNG"), "image/png"),
        Case("extreme tall", 200, _save(Image.new("RGB", (3, 5000), (0, 200, 0)), "PNG"), "image/png"),
        Case("16-bit grey PNG", 200, _save(sixteen, "PNG"), "image/png"),
        Case("CMYK JPEG", 200, _save(Image.new("CMYK", (60, 90), (0, 200, 200, 0)), "JPEG"), "image/jpeg"),
        Case("palette with transparency", 200, _palette_transparent(), "image/png"),
        Case("RGBA PNG", 200, _save(Image.new("RGBA", (60, 90), (200, 30, 30, 128)), "PNG"), "image/png"),
        Case("LA PNG", 200, _save(Image.new("LA", (60, 90), (100, 200)), "PNG"), "image/png"),
        Case("grey JPEG", 200, _save(Image.new("L", (60, 90), 120), "JPEG"), "image/jpeg"),
        Case("animated GIF", 200, _animated_gif(), "image/gif"),
        Case("WebP", 200, poster("Blue", fmt="WEBP"), "image/webp"),
        Case("BMP", 200, poster("Green", fmt="BMP"), "image/bmp"),
        Case("multi-page TIFF", 200, _multipage_tiff(), "image/tiff"),
        Case("EXIF-rotated JPEG", 200, _exif_rotated(), "image/jpeg"),
        Case("PNG labelled as JPEG", 200, poster("Blue", fmt="PNG"), "image/jpeg"),
        Case("JPEG with trailing garbage", 200, jpeg + os.urandom(512), "image/jpeg"),
        Case("base64 without prefix", 200, b64, "text/plain"),
        Case("base64 data URL", 200, "data:image/jpeg;base64," + b64, "text/plain"),
        Case("base64 data URL, no content type", 200, "data:image/jpeg;base64," + b64, None),
        Case("invalid base64", 400, "data:image/jpeg;base64,@@@###", "text/plain", code="invalid_base64"),
        Case("base64 of text", 400, base64.b64encode(b"not an image").decode(), "text/plain", code="not_an_image"),
        Case("JSON without image", 400, '{"poster": "x"}', "application/json", code="missing_image"),
        Case("JSON image not a string", 400, '{"image": [1, 2, 3]}', "application/json", code="invalid_image_field"),
        Case("JSON invalid", 400, '{"image": ', "application/json", code="invalid_json"),
        Case("multipart without the file", 400, None, None, files={"poster": ("p.jpg", jpeg, "image/jpeg")}, code="missing_file"),
        Case("multipart with the file", 200, None, None, files={"image": ("p.jpg", jpeg, "image/jpeg")}),
        Case("body over the limit", 413, b"\xff\xd8" + b"\x00" * (11 * 1024 * 1024), "image/jpeg", code="payload_too_large"),
        Case("PUT", 405, jpeg, method="PUT", code="method_not_allowed"),
        Case("PATCH", 405, jpeg, method="PATCH", code="method_not_allowed"),
        Case("DELETE", 405, None, method="DELETE", code="method_not_allowed"),
        Case("GET / as API client", 405, None, None, method="GET", code="method_not_allowed", headers={"Accept": "application/json"}),
        Case("OPTIONS preflight", 204, None, None, method="OPTIONS"),
        Case("base64 labelled JSON (Flutter client)", 200, b64.rstrip("="), "application/json; charset=utf-8"),
        Case(
            "base64 with line breaks and excess padding",
            200,
            "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "==",
            "text/plain",
        ),
        Case(
            "URL-safe base64 in a JSON field",
            200,
            '{"image": "%s"}' % base64.urlsafe_b64encode(jpeg).decode().rstrip("="),
            "application/json",
        ),
        Case("JSON nested 1,000 deep", 400, "[" * 1000 + "]" * 1000, "application/json", code="invalid_json"),
        Case("JPEG with 10,000 scans", 400, many_scans_jpeg(10_000), "image/jpeg", code="too_many_scans"),
        Case("1 x 40,000,000 PNG", 400, _save(Image.new("RGB", (1, 40_000_000)), "PNG"), "image/png", code="too_many_pixels"),
    ]
