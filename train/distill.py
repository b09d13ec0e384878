"""Distillation: the slower, better ensemble's out-of-fold scores as soft targets for the shipped heads.

The teacher (every cross-validated backbone, e.g. with Lite2) costs nothing at serving time: only
its scores on the training posters are used, mixed into the labels. For cross-validation the
targets of a fold's training posters must not have seen that fold: a poster in fold m gets, for
held-out fold k, the score of teacher heads trained on the folds other than k and m (one model per
pair of folds, used by both). The final refit uses the teacher's plain out-of-fold scores.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from itertools import combinations
from pathlib import Path

import numpy as np

from train import cached, heads


def pair_scores(features: dict[str, np.ndarray], labels: np.ndarray, folds: np.ndarray, options: heads.HeadOptions,
                epochs: dict[str, int], keys: dict[str, dict | None], cache: Path | None = None) -> tuple[np.ndarray, float | None]:
    """([K, N, L] teacher scores, seconds): entry k holds, for every poster outside fold k, the mean over backbones
    and seeds of heads trained without fold k and without the poster's own fold (entries inside fold k stay 0)."""
    key = None
    if all(keys.values()):
        key = {"features": keys, "folds": hashlib.sha256(folds.tobytes()).hexdigest(), "options": asdict(options), "epochs": epochs}

    def compute() -> np.ndarray:
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
        return out

    return cached.load_or_compute(cache, "teacher-pairs", key, compute, "teacher pair scores")


def targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """Soft targets: (1 - weight) x labels + weight x teacher scores."""
    return ((1.0 - weight) * labels + weight * teacher).astype(np.float32)
