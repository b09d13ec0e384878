"""Generated posters in the Kaggle "movie-classifier" layout (train.csv + Images/<Id>.jpg) whose labels a CNN can
learn: dots, stripes and a frame drawn on a random background; "Rare" is never drawn."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

GENRES = ["Dots", "Stripes", "Frame", "Rare"]


def poster(rng: np.random.Generator, dots: bool, stripes: bool, frame: bool) -> bytes:
    """A 120x180 JPEG: random background colour, the labels drawn on it."""
    image = Image.new("RGB", (120, 180), tuple(int(c) for c in rng.integers(40, 200, 3)))
    draw = ImageDraw.Draw(image)
    if stripes:
        for y in range(10, 180, 24):
            draw.rectangle((0, y, 120, y + 8), fill=(20, 20, 20))
    if frame:
        draw.rectangle((0, 0, 119, 179), outline=(250, 250, 60), width=10)
    if dots:
        for _ in range(6):
            x, y = rng.integers(15, 90), rng.integers(15, 150)
            draw.ellipse((x, y, x + 18, y + 18), fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def folder(root: Path, count: int, prefix: str, seed: int, rare: int = 0, extra_rows: list[list] | None = None) -> Path:
    """``count`` posters named ``prefix`` + number under ``root``; the first ``rare`` are labelled "Rare" too;
    ``extra_rows`` are appended to train.csv as they are (duplicates, missing images...)."""
    (root / "Images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        labels = [bool(rng.random() < 0.5) for _ in range(3)] + [i < rare]
        poster_id = f"{prefix}{i:07d}"
        (root / "Images" / f"{poster_id}.jpg").write_bytes(poster(rng, *labels[:3]))
        rows.append([poster_id, str([g for g, on in zip(GENRES, labels, strict=True) if on]), *[int(v) for v in labels]])
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Id", "Genre", *GENRES])
        writer.writerows(rows + (extra_rows or []))
    return root
