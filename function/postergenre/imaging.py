"""Image bytes -> model input: the one decode-and-resize contract.

The training job imports this module too, so the pixels the model was trained on are produced
by exactly the code that serves it (the parity check in train/export.py relies on that).

Decoding is bounded before it starts (budget.py holds the memory model): the cost is estimated
from the header at the size that will actually be decoded (JPEG draft scale), pathological JPEGs
(too many scans) are refused, only the first frame of animations and multi-page files is read, and
the decoder is fed through a reader that stops it once it has used its CPU allowance. Everything
that is not needed at full size (mode conversion, alpha flattening, EXIF rotation) happens at
the model's input size.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from postergenre import budget
from postergenre.errors import CodedError

# Formats we promise to read; Pillow can open more (PDF-like EPS, ICO, PSD...) but we do not
# want that attack surface on a public endpoint.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO")
RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
# Pillow's own bomb guard is global and warns before it raises; we check sizes ourselves.
Image.MAX_IMAGE_PIXELS = None
# Reduce by whole factors first when the image is >= 3x the target per axis: bounds the resize's
# intermediate for extreme aspect ratios (1 x N) and is indistinguishable from a direct resize.
REDUCING_GAP = 3.0
# Decoder input chunk: the CPU deadline is checked between chunks.
READ_CHUNK = 4096
# Every JPEG scan walks all blocks of the full-size image, whatever the draft scale: CPU grows with
# pixels x scans. The scan cap holds up to SCAN_CAP_PIXELS; larger images get proportionally
# fewer scans (scans x pixels stays bounded, tests/function/test_limits.py), but never below MIN_JPEG_SCANS,
# more than any encoder writes for a normal image.
SCAN_CAP_PIXELS = 15_000_000
MIN_JPEG_SCANS = 16
HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ORIENTATION = 0x0112
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageError(CodedError, ValueError):
    """A client-side image problem (HTTP 400)."""


@dataclass(frozen=True)
class InputSpec:
    """Model input as recorded in the manifest: RGB float32 0-255, shape [1, height, width, 3]."""

    height: int
    width: int
    resize: str = "bilinear"

    @classmethod
    def from_manifest(cls, spec: dict) -> "InputSpec":
        return cls(int(spec["height"]), int(spec["width"]), str(spec.get("resize", "bilinear")))


@dataclass(frozen=True)
class Limits:
    """What one decode may cost. The defaults suit offline training; the server derives its own
    from the instance memory (config.py). ``max_jpeg_scans``: libjpeg's progressive encoder writes
    6-10 scans, optimisers (mozjpeg, jpegtran) a few more; every scan re-reads all coefficients,
    so thousands of tiny scans cost CPU out of proportion to the file size."""

    max_bytes: int = 4096 * budget.MIB
    cpu_seconds: float = 0.0  # 0: unbounded
    max_jpeg_scans: int = 100
    budget: budget.DecodeBudget | None = None


class _DeadlineReader(io.BytesIO):
    """The encoded bytes, as a file whose read() stops the decoder once its thread has used
    ``cpu_seconds`` of CPU (Pillow feeds decoders chunk by chunk from read())."""

    limit: float | None = None

    def start(self, cpu_seconds: float) -> None:
        self.limit = time.thread_time() + cpu_seconds if cpu_seconds > 0 else None

    def read(self, size: int | None = -1) -> bytes:
        if self.limit is not None and time.thread_time() > self.limit:
            raise ImageError("image_too_complex", "Decoding the image took too long; send a simpler or smaller image.")
        return super().read(size)


def jpeg_scans(data: bytes) -> int:
    """Start-of-scan markers in a JPEG: FF DA never occurs in entropy-coded data (FF is stuffed as
    FF 00), so this counts every scan; embedded thumbnails add theirs."""
    return data.count(b"\xff\xda")


def open_image(data: bytes, limits: Limits = Limits()) -> Image.Image:
    """Identify and sanity-check an image without decoding its pixels."""
    if not data:
        raise ImageError("empty_body", "The request contained no image data.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(_DeadlineReader(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError("not_an_image", "The data is not a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF).") from exc
    if image.format not in FORMATS:
        raise ImageError("unsupported_format", f"Image format {image.format} is not supported.")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("not_an_image", "The image has no pixels.")
    if image.format in ("JPEG", "MPO"):
        allowed = min(limits.max_jpeg_scans, max(MIN_JPEG_SCANS, limits.max_jpeg_scans * SCAN_CAP_PIXELS // (width * height)))
        if (scans := jpeg_scans(data)) > allowed:
            raise ImageError("too_many_scans", f"The JPEG has {scans} scans; at most {allowed} are accepted at {width}x{height} pixels.")
    return image


def _orientation(image: Image.Image) -> int:
    """EXIF orientation from the header only (PngImageFile.getexif would decode the whole image
    to look for EXIF after the pixel data: the base class reads what was parsed at open)."""
    try:
        return int(Image.Image.getexif(image).get(ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the rotation
        return 1


def _coefficient_bytes(image: Image.Image, scans: int) -> int:
    """libjpeg keeps all DCT coefficients (2 bytes each) of a multi-scan JPEG at full size."""
    layers = getattr(image, "layer", None)
    if scans <= 1 or not layers:
        return 0
    h_max = max(h for _, h, _, _ in layers) or 1
    v_max = max(v for _, _, v, _ in layers) or 1
    width, height = image.size
    return sum(2 * (width * h // h_max + 8) * (height * v // v_max + 8) for _, h, v, _ in layers)


def plan(data: bytes, spec: InputSpec, limits: Limits = Limits()) -> tuple[Image.Image, int, int]:
    """Open the image, pick its decode scale, and state what decoding it will cost (bytes).

    Returns (image ready to load, cost, EXIF orientation); raises 400 ``too_many_pixels`` when the
    cost alone is over ``limits.max_bytes``."""
    image = open_image(data, limits)
    orientation = _orientation(image)
    coefficients = 0
    if image.format in ("JPEG", "MPO"):
        coefficients = _coefficient_bytes(image, jpeg_scans(data))
        # libjpeg decodes at 1/2, 1/4 or 1/8 scale, never below the target: far less memory and
        # CPU than a full decode. Square request: EXIF rotation is applied afterwards.
        side = max(spec.width, spec.height)
        image.draft("RGB", (side, side))
    cost = budget.estimate(image.format, image.mode, image.size, "transparency" in image.info, coefficients, len(data))
    if cost > limits.max_bytes:
        width, height = image.size
        raise ImageError(
            "too_many_pixels",
            f"The image decodes to {width}x{height} pixels ({image.mode}); that needs about {cost // budget.MIB} MiB, "
            f"more than the {limits.max_bytes // budget.MIB} MiB this server allows per image.",
        )
    return image, cost, orientation


def _resized_rgb(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    """Any mode -> 8-bit RGB of ``size``; transparency over white. At most one full-size copy."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("PA", "1"):
        image = image.convert("RGBA" if image.mode == "PA" else "L")
    if image.mode in HIGH_BIT_MODES:
        low, high = image.getextrema()
        top = 65535.0 if image.mode.startswith("I;16") or high > 255 else 255.0
        if image.mode.startswith("I;16"):
            image = image.convert("I")  # Pillow cannot reduce() 16-bit images
        small = np.asarray(image.resize(size, resample, reducing_gap=REDUCING_GAP), dtype=np.float32)
        gray = np.clip(small * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode in ("RGBA", "LA"):
        # Resize premultiplied (what Pillow's own RGBA resize does), then flatten over white at
        # the target size: colour * alpha + white * (1 - alpha) = premultiplied + 255 - alpha.
        image = image.convert("RGBa" if image.mode == "RGBA" else "La")
    small = image.resize(size, resample, reducing_gap=REDUCING_GAP)
    if small.mode in ("RGBa", "La"):
        values = np.asarray(small, dtype=np.float32)
        flat = np.clip(values[..., :-1] + (255.0 - values[..., -1:]), 0, 255).round().astype(np.uint8)
        return Image.fromarray(np.repeat(flat, 3, axis=2) if small.mode == "La" else flat, "RGB")
    return small if small.mode == "RGB" else small.convert("RGB")


def decode(data: bytes, spec: InputSpec, limits: Limits = Limits()) -> np.ndarray:
    """Bytes -> float32 array [1, H, W, 3] with values 0-255, as the model expects."""
    image, cost, orientation = plan(data, spec, limits)
    size = (spec.width, spec.height) if orientation < 5 else (spec.height, spec.width)
    reserve = limits.budget.reserve(cost) if limits.budget else contextlib.nullcontext()
    with reserve:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if isinstance(image.fp, _DeadlineReader):
                    image.fp.start(limits.cpu_seconds)
                image.decodermaxblock = READ_CHUNK
                rgb = _resized_rgb(image, size, RESAMPLE[spec.resize])
                del image  # the full-size decode is freed before the budget is released
                if orientation in TRANSPOSE:
                    rgb = rgb.transpose(TRANSPOSE[orientation])
        except ImageError:
            raise
        except (OSError, ValueError, SyntaxError, EOFError, TypeError, KeyError, IndexError, MemoryError) as exc:
            raise ImageError("undecodable_image", "The image data is corrupt or truncated.") from exc
    return np.asarray(rgb, dtype=np.float32)[None, ...]
