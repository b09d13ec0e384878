"""Dataset reading (Kaggle "movie-classifier" layout), label rules and the seeded split."""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from postergenre import imaging

LAYOUT = (
    "expected the Kaggle 'movie-classifier' layout: train.csv (header Id,Genre,<one 0/1 column per genre>) "
    "and Images/<Id>.jpg"
)


class DataError(ValueError):
    """The dataset is missing, unreadable or too small for the chosen label rule."""


@dataclass
class Dataset:
    """Decoded posters (uint8, model input size) with their multi-hot labels."""

    ids: list[str]
    images: np.ndarray  # [N, H, W, 3] uint8
    labels: np.ndarray  # [N, L] float32
    label_names: list[str]
    dropped_labels: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def read_table(csv_path: Path) -> tuple[list[str], list[str], np.ndarray, int]:
    """Return (ids, genre names, multi-hot matrix, duplicate rows); duplicate Ids keep their first row."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        if header[:2] != ["Id", "Genre"]:
            raise ValueError(f"{csv_path}: expected header 'Id,Genre,<genres...>', got {header[:3]}")
        genres = header[2:]
        ids: list[str] = []
        rows: list[list[float]] = []
        seen: set[str] = set()
        duplicates = 0
        for row in reader:
            if not row:
                continue
            if row[0] in seen:
                duplicates += 1
                continue
            seen.add(row[0])
            ids.append(row[0])
            rows.append([float(v == "1") for v in row[2 : 2 + len(genres)]])
    return ids, genres, np.asarray(rows, dtype=np.float32).reshape(len(ids), len(genres)), duplicates


def apply_min_examples(labels: np.ndarray, names: list[str], min_examples: int) -> tuple[np.ndarray, list[str], dict[str, int]]:
    """Drop genres with fewer than ``min_examples`` positives: too few to learn or to calibrate."""
    counts = labels.sum(axis=0)
    keep = counts >= min_examples
    dropped = {n: int(c) for n, c, k in zip(names, counts, keep) if not k}
    return labels[:, keep], [n for n, k in zip(names, keep) if k], dropped


def load(root: Path, spec: imaging.InputSpec, min_examples: int, limit: int | None = None, workers: int = 4) -> Dataset:
    """Read the table and decode every poster with the serving decoder; skip missing/corrupt ones."""
    if not (root / "train.csv").is_file():
        raise DataError(f"{root}/train.csv not found: {LAYOUT}")
    ids, names, labels, duplicates = read_table(root / "train.csv")
    if limit:
        ids, labels = ids[:limit], labels[:limit]

    def decode(poster_id: str) -> np.ndarray | None:
        path = root / "Images" / f"{poster_id}.jpg"
        try:
            pixels = imaging.decode(path.read_bytes(), spec)
        except (OSError, imaging.ImageError):
            return None
        return pixels[0].astype(np.uint8)

    with ThreadPoolExecutor(workers) as pool:
        decoded = list(tqdm(pool.map(decode, ids), total=len(ids), desc="decode posters", unit="img"))
    ok = np.array([d is not None for d in decoded])
    missing = [i for i, d in zip(ids, decoded) if d is None]
    if not ok.any():
        raise DataError(f"none of the {len(ids)} posters in {root}/Images could be read: {LAYOUT}")
    labels, names, dropped = apply_min_examples(labels[ok], names, min_examples)
    if not names:
        raise DataError(
            f"no genre has --min-examples {min_examples} positive posters among the {int(ok.sum())} used "
            f"(most: {max(dropped.values())}); use more posters (--limit) or a lower --min-examples"
        )
    images = np.stack([d for d in decoded if d is not None])
    kept_ids = [i for i, good in zip(ids, ok) if good]
    counts = {
        "rows_unique": len(ids),
        "duplicate_rows": duplicates,
        "skipped_missing_or_corrupt": len(missing),
        "used": len(kept_ids),
    }
    return Dataset(kept_ids, images, labels, names, dropped, counts)


def _iterative_assign(labels: np.ndarray, fractions: list[float], seed: int) -> np.ndarray:
    """Iterative stratification (Sechidis et al. 2011), simplified: rarest labels are placed first.

    Each example goes to the part that still wants most of its rarest label, so every genre's
    share in each part stays close to that part's fraction. Deterministic for a given seed.
    Returns each example's part index.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    order = rng.permutation(n)
    wanted = np.array(fractions)
    desired_total = wanted * n
    desired_label = np.outer(wanted, labels.sum(axis=0))
    assign = np.full(n, -1)
    remaining = labels[order].astype(bool)
    remaining_idx = order.copy()
    while len(remaining_idx):
        counts = remaining.sum(axis=0).astype(float)
        if counts.max() == 0:
            break
        counts[counts == 0] = np.inf
        label = int(np.argmin(counts))
        members = remaining_idx[remaining[:, label]]
        for idx in members:
            want = desired_label[:, label]
            best = np.flatnonzero(want == want.max())
            if len(best) > 1:
                best = best[np.flatnonzero(desired_total[best] == desired_total[best].max())]
            part = int(rng.choice(best))
            assign[idx] = part
            desired_label[part] -= labels[idx]
            desired_total[part] -= 1
        keep = ~remaining[:, label]
        remaining, remaining_idx = remaining[keep], remaining_idx[keep]
    for idx in remaining_idx:  # examples without any label
        part = int(np.argmax(desired_total))
        assign[idx] = part
        desired_total[part] -= 1
    return assign


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices), stratified per genre (v1's single split)."""
    assign = _iterative_assign(labels, [val_fraction, 1.0 - val_fraction], seed)
    return np.flatnonzero(assign == 1), np.flatnonzero(assign == 0)


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each example's fold (0..folds-1) for k-fold cross-validation, stratified per genre."""
    return _iterative_assign(labels, [1.0 / folds] * folds, seed)
