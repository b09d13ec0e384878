"""Image bytes -> model input: the one decode-and-resize contract.

The training job imports this module too, so the pixels the model was trained on are produced
by exactly the code that serves it (the parity check in train/export.py relies on that).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from errors import CodedError

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


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify and sanity-check an image without decoding its pixels."""
    if not data:
        raise ImageError("empty_body", "The request contained no image data.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError("not_an_image", "The data is not a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF).") from exc
    if image.format not in FORMATS:
        raise ImageError("unsupported_format", f"Image format {image.format} is not supported.")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("not_an_image", "The image has no pixels.")
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"The image is {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
        )
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (palette, alpha, CMYK, 16-bit, float) -> 8-bit RGB; transparency over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        gray = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image if image.mode == "RGB" else image.convert("RGB")


def decode(data: bytes, spec: InputSpec, max_pixels: int = 40_000_000) -> np.ndarray:
    """Bytes -> float32 array [1, H, W, 3] with values 0-255, as the model expects."""
    image = open_image(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if image.format == "JPEG":
                # Let libjpeg decode large JPEGs at a reduced scale (never below the target size):
                # much faster than a full decode followed by a downscale. Square request: the
                # EXIF rotation is applied afterwards.
                side = max(spec.width, spec.height)
                image.draft("RGB", (side, side))
            image.seek(0)
            image = ImageOps.exif_transpose(image) or image
            image = to_rgb(image)
            image = image.resize((spec.width, spec.height), RESAMPLE[spec.resize])
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, KeyError, IndexError, MemoryError) as exc:
        raise ImageError("undecodable_image", "The image data is corrupt or truncated.") from exc
    return np.asarray(image, dtype=np.float32)[None, ...]
