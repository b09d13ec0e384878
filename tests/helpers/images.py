"""Generated test images: solid colours (the tiny model's signal) in any format and mode."""

from __future__ import annotations

import io

from PIL import Image

COLOURS = {"Red": (220, 20, 20), "Green": (20, 200, 30), "Blue": (20, 30, 220)}


def poster(colour: str = "Red", size: tuple[int, int] = (200, 300), fmt: str = "JPEG", mode: str = "RGB", **save) -> bytes:
    """A poster-shaped image mostly of ``colour`` with a little texture, encoded as ``fmt``."""
    image = Image.new("RGB", size, COLOURS[colour])
    image.paste((240, 240, 240), (size[0] // 4, size[1] // 10, size[0] // 2, size[1] // 5))
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def block_poster(
    blocks: dict[tuple[int, int], str],
    grid: tuple[int, int],
    background: tuple[int, int, int] = (0, 0, 0),
    size: tuple[int, int] = (200, 300),
    fmt: str = "PNG",
) -> bytes:
    """A poster of ``background`` with blocks of colour filling cells {(row, col): colour} of a rows x cols grid."""
    rows, cols = grid
    width, height = size[0] // cols, size[1] // rows
    image = Image.new("RGB", size, background)
    for (row, col), colour in blocks.items():
        image.paste(COLOURS[colour], (col * width, row * height, (col + 1) * width, (row + 1) * height))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def many_scans_jpeg(scans: int, size: tuple[int, int] = (2000, 3000)) -> bytes:
    """A progressive greyscale JPEG whose last (empty) scan is repeated until it has ``scans``
    scans: each one is a few bytes, yet libjpeg walks every block of the image for it."""
    image = Image.new("L", size, 128)
    out = io.BytesIO()
    image.save(out, "JPEG", progressive=True, quality=90)
    data = out.getvalue()
    last = data.rfind(b"\xff\xda")
    end = data.rfind(b"\xff\xd9")
    existing = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * max(scans - existing, 0) + data[end:]
