"""The data stage: read one or more folders in the Kaggle "movie-classifier" layout, apply the label rule,
stream decoded posters in batches, and split them into folds."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from postergenre import artifact, imaging

LAYOUT = (
    "expected the Kaggle 'movie-classifier' layout: train.csv (header Id,Genre,<one 0/1 column per genre>) "
    "and Images/<Id>.jpg"
)


class DataError(ValueError):
    """The dataset is missing, unreadable or too small for the chosen label rule."""


@dataclass
class Dataset:
    """Posters (their files, not their pixels) with multi-hot labels, from one or more folders.

    Pixels are decoded in batches where they are needed (``batches``); nothing holds every decoded
    poster at once, so memory does not grow with the number of posters.
    """

    ids: list[str]
    paths: list[Path]
    sources: np.ndarray  # [N] index into ``folders`` of each poster's folder
    folders: list[str]
    labels: np.ndarray  # [N, L] float32
    label_names: list[str]
    dropped_labels: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # per folder, and "all"

    def folder_rows(self, folder: int) -> np.ndarray:
        """Indices of the posters of ``folders[folder]``."""
        return np.flatnonzero(self.sources == folder)

    def weights(self, by_name: dict[str, float]) -> np.ndarray | None:
        """Each poster's training weight from its folder's name (a recipe's data.source_weights; others 1), None when all
        are 1; a name that is no --data folder's is an error."""
        names = [Path(f).name for f in self.folders]
        unknown = sorted(set(by_name) - set(names))
        if unknown:
            raise DataError(f"data.source_weights names {unknown}, not a --data folder ({', '.join(names)})")
        per_folder = np.array([by_name.get(name, 1.0) for name in names], np.float32)
        return None if np.all(per_folder == 1) else per_folder[self.sources]


def read_table(csv_path: Path) -> tuple[list[str], list[str], np.ndarray, int]:
    """Return (ids, genre names, multi-hot matrix, duplicate rows); duplicate Ids keep their first row."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if header[:2] != ["Id", "Genre"]:
            raise DataError(f"{csv_path}: expected header 'Id,Genre,<genres...>', got {header[:3]}: {LAYOUT}")
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
    dropped = {n: int(c) for n, c, k in zip(names, counts, keep, strict=True) if not k}
    return labels[:, keep], [n for n, k in zip(names, keep, strict=True) if k], dropped


def decode(path: Path, spec: artifact.InputSpec) -> np.ndarray | None:
    """One poster as the model sees it ([H, W, 3] uint8, the serving decoder), or None if it cannot be read."""
    try:
        return imaging.decode(path.read_bytes(), spec)[0].astype(np.uint8)
    except (OSError, imaging.ImageError):
        return None


def batches(paths: list[Path], spec: artifact.InputSpec, size: int = 32, workers: int = 4) -> Iterator[np.ndarray]:
    """[n, H, W, 3] uint8 batches of ``paths`` in order, decoded by ``workers`` threads one batch ahead
    (so at most two batches are in memory); an unreadable poster is an error (``load`` checked them)."""

    def submit(pool: ThreadPoolExecutor, start: int) -> list[Future]:
        return [pool.submit(decode, p, spec) for p in paths[start : start + size]]

    with ThreadPoolExecutor(workers) as pool:
        ahead = submit(pool, 0)
        for start in range(0, len(paths), size):
            current, ahead = ahead, submit(pool, start + size)
            decoded = [f.result() for f in current]
            for path, pixels in zip(paths[start : start + size], decoded, strict=True):
                if pixels is None:
                    raise DataError(f"{path} could not be read any more (changed during training?)")
            yield np.stack(decoded)


def _readable(paths: list[Path], spec: artifact.InputSpec, workers: int) -> np.ndarray:
    """Which posters decode (each is decoded once and dropped: nothing is kept)."""
    with ThreadPoolExecutor(workers) as pool:
        ok = pool.map(lambda p: p.is_file() and decode(p, spec) is not None, paths)
        return np.fromiter(tqdm(ok, total=len(paths), desc="check posters", unit="img", mininterval=30), bool, len(paths))


def load(roots: list[Path], spec: artifact.InputSpec, min_examples: int, limit: int | None = None, workers: int = 4) -> Dataset:
    """Read every folder's table into one dataset and check that each poster decodes; skip missing/corrupt ones.

    The folders must share their genre columns; a poster Id in two folders is an error that names both."""
    ids: list[str] = []
    paths: list[Path] = []
    sources: list[int] = []
    tables, counts, where, names = [], {}, {}, None
    for k, root in enumerate(roots):
        if not (root / "train.csv").is_file():
            raise DataError(f"{root}/train.csv not found: {LAYOUT}")
        folder_ids, folder_names, labels, duplicates = read_table(root / "train.csv")
        if names is not None and folder_names != names:
            raise DataError(f"{root}/train.csv has other genre columns than {roots[0]}/train.csv: {folder_names} vs {names}")
        names = folder_names
        if limit:
            folder_ids, labels = folder_ids[:limit], labels[:limit]
        for poster_id in folder_ids:
            if poster_id in where:
                raise DataError(f"poster {poster_id} is in two data folders: {where[poster_id]} and {root}")
            where[poster_id] = root
        folder_paths = [root / "Images" / f"{i}.jpg" for i in folder_ids]
        ok = _readable(folder_paths, spec, workers)
        if not ok.any():
            raise DataError(f"none of the {len(folder_ids)} posters in {root}/Images could be read: {LAYOUT}")
        kept = np.flatnonzero(ok)
        ids += [folder_ids[i] for i in kept]
        paths += [folder_paths[i] for i in kept]
        sources += [k] * len(kept)
        tables.append(labels[ok])
        counts[str(root)] = {"rows_unique": len(folder_ids), "duplicate_rows": duplicates,
                             "skipped_missing_or_corrupt": int((~ok).sum()), "used": len(kept)}
    counts["all"] = {key: sum(c[key] for c in counts.values()) for key in next(iter(counts.values()))}
    labels, names, dropped = apply_min_examples(np.concatenate(tables), names, min_examples)
    if not names:
        raise DataError(
            f"no genre has min_examples {min_examples} positive posters among the {len(ids)} used "
            f"(most: {max(dropped.values())}); use more posters (--limit) or a recipe with a lower data.min_examples"
        )
    return Dataset(ids, paths, np.array(sources), [str(r) for r in roots], labels, names, dropped, counts)


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
