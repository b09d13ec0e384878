"""Distillation: the slower, better ensemble's out-of-fold scores as soft targets for the shipped heads.

The teacher (every cross-validated backbone, e.g. with Lite2) costs nothing at serving time: only
its scores on the training posters are used, mixed into the labels. For cross-validation the
targets of a fold's training posters must not have seen that fold: a poster in fold m gets, for
held-out fold k, the score of teacher heads trained on the folds other than k and m (one model per
pair of folds, used by both). The final refit uses the teacher's plain out-of-fold scores.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from itertools import combinations
from pathlib import Path

import numpy as np

from train import heads


def pair_scores(features: dict[str, np.ndarray], labels: np.ndarray, folds: np.ndarray, options: heads.HeadOptions,
                epochs: dict[str, int], keys: dict[str, dict | None], cache: Path | None = None) -> tuple[np.ndarray, float | None]:
    """([K, N, L] teacher scores, seconds): entry k holds, for every poster outside fold k, the mean over backbones
    and seeds of heads trained without fold k and without the poster's own fold (entries inside fold k stay 0)."""
    path = None
    if cache is not None and all(keys.values()):
        key = {"features": keys, "folds": hashlib.sha256(folds.tobytes()).hexdigest(), "options": asdict(options), "epochs": epochs}
        path = cache / f"teacher-pairs-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.npy"
        if path.exists():
            print(f"teacher pair scores: {path}", flush=True)
            side = path.with_suffix(".json")
            return np.load(path), (json.loads(side.read_text())["seconds"] if side.exists() else None)
    start = time.monotonic()
    count = folds.max() + 1
    out = np.zeros((count, *labels.shape), np.float32)
    for a, b in combinations(range(count), 2):
        train = (folds != a) & (folds != b)
        held = ~train
        scores = np.zeros((int(held.sum()), labels.shape[1]), np.float32)
        for name, feat in features.items():
            for seed in range(options.seeds):
                _, curve = heads.fit(feat[:, train], labels[train], options, epochs[name], seed, f"{name}_teacher", feat[0, held])
                scores += curve[-1] / (options.seeds * len(features))
        out[a][folds == b] = scores[folds[held] == b]
        out[b][folds == a] = scores[folds[held] == a]
        print(f"  teacher: folds {a + 1},{b + 1} done", flush=True)
    seconds = time.monotonic() - start
    if path is not None:
        np.save(path, out)
        path.with_suffix(".json").write_text(json.dumps({"seconds": round(seconds, 1)}), encoding="utf-8")
    return out, seconds


def targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """Soft targets: (1 - weight) x labels + weight x teacher scores."""
    return ((1.0 - weight) * labels + weight * teacher).astype(np.float32)
