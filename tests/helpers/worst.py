"""The largest inputs of each format and mode the memory model accepts at a given instance memory
(and one just over it): what the memory test and the benchmark send. Sizes follow from
function/budget.py, so the inputs track the model instead of a list of magic numbers."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from postergenre import budget, config


@dataclass(frozen=True)
class Worst:
    name: str
    fmt: str
    mode: str
    size: tuple[int, int]
    content_type: str
    save: tuple = ()

    def encode(self) -> bytes:
        if self.mode == "P+t":
            image = Image.new("P", self.size, 1)
            image.putpalette([255, 255, 255] + [200, 30, 30] * 255)
            save = {"transparency": 0}
        else:
            image = Image.new(self.mode, self.size, {"I;16": 30000, "L": 120, "LA": (120, 200), "RGBA": (200, 30, 30, 128), "CMYK": (0, 200, 200, 0)}.get(self.mode, (200, 30, 30)))
            save = dict(self.save)
        image.paste(255 if image.mode in ("L", "P", "I;16") else (255,) * len(image.getbands()), (0, 0, self.size[0] // 3, self.size[1] // 5))
        out = io.BytesIO()
        image.save(out, self.fmt, **save)
        return out.getvalue()


def _fit(mode: str, fmt: str, aspect: tuple[int, int], budget_bytes: int, transparency: bool = False) -> tuple[int, int]:
    """The largest size of the given aspect whose estimated cost fits in ``budget_bytes``."""
    low, high = 1, 1 << 16
    while low < high:
        k = (low + high + 1) // 2
        size = (aspect[0] * k // aspect[1] or 1, k) if aspect[0] < aspect[1] else (k, aspect[1] * k // aspect[0] or 1)
        fits = budget.estimate(fmt, "P" if mode == "P+t" else mode, size, transparency) <= budget_bytes
        low, high = (k, high) if fits else (low, k - 1)
    k = low
    return (aspect[0] * k // aspect[1] or 1, k) if aspect[0] < aspect[1] else (k, aspect[1] * k // aspect[0] or 1)


def worst_inputs(memory_mb: int) -> list[Worst]:
    limit = budget.decode_budget_bytes(memory_mb, config.warm_base_mb()) - 8 * budget.MIB  # the body's term: files here are < 4 MB
    poster = (2, 3)
    # A 6000x9000 4:2:0 progressive JPEG keeps 2 bytes per DCT coefficient (1.5 per pixel) of the
    # full-size image: accepted only where the budget has room for that (not with tflite-runtime's
    # larger warm base at 512 MiB).
    progressive_fits = 2 * 6000 * 9000 * 3 // 2 + budget.FIXED_BYTES + 8 * budget.MIB <= limit
    return [
        Worst("RGBA PNG", "PNG", "RGBA", _fit("RGBA", "PNG", poster, limit), "image/png"),
        Worst("lossy RGBA WebP", "WEBP", "RGBA", _fit("RGBA", "WEBP", poster, limit), "image/webp", (("quality", 50),)),
        Worst("RGB PNG", "PNG", "RGB", _fit("RGB", "PNG", poster, limit), "image/png"),
        Worst("1xN PNG", "PNG", "RGB", (1, (limit - budget.FIXED_BYTES) // (4 + budget.ROW_BYTES)), "image/png"),
        Worst("16-bit PNG", "PNG", "I;16", _fit("I;16", "PNG", poster, limit), "image/png"),
        Worst("palette+transparency PNG", "PNG", "P+t", _fit("P+t", "PNG", poster, limit, True), "image/png"),
        Worst("LA PNG", "PNG", "LA", _fit("LA", "PNG", poster, limit), "image/png"),
        Worst("CMYK JPEG 6000x9000", "JPEG", "CMYK", (6000, 9000), "image/jpeg"),
        *([Worst("progressive JPEG 6000x9000", "JPEG", "RGB", (6000, 9000), "image/jpeg", (("progressive", True), ("quality", 90)))] if progressive_fits else []),
        Worst("TIFF RGB", "TIFF", "RGB", _fit("RGB", "TIFF", poster, limit), "image/tiff", (("compression", "tiff_deflate"),)),
    ]


def just_over(memory_mb: int) -> Worst:
    """An RGBA PNG a little over the per-image limit: must be refused before decoding."""
    w, h = _fit("RGBA", "PNG", (2, 3), budget.decode_budget_bytes(memory_mb, config.warm_base_mb()))
    return Worst("RGBA PNG over the limit", "PNG", "RGBA", (w + 40, h + 60), "image/png")


def issue_inputs() -> list[Worst]:
    """The uploads measured in issue 11 against the old server (figures: tests/README.md, Records)."""
    return [
        Worst("issue 11: RGBA PNG 6000x6600", "PNG", "RGBA", (6000, 6600), "image/png"),
        Worst("issue 11: lossy RGBA WebP 6000x6600", "WEBP", "RGBA", (6000, 6600), "image/webp", (("quality", 50),)),
        Worst("issue 11: 1 x 39,999,999 PNG", "PNG", "RGB", (1, 39_999_999), "image/png"),
    ]
