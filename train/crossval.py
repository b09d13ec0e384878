"""k-fold cross-validation of the heads: out-of-fold scores, the epoch to stop at, honest figures.

Every poster is scored once by heads that never saw it (out-of-fold, OOF). Scores after each
epoch are kept, so the stopping epoch is chosen from the OOF curve of each backbone, and any
ensemble of backbones is scored by averaging its members' OOF scores - no retraining per
candidate set. Decision thresholds for a fold come from the OOF scores of the *other* folds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from itertools import combinations
from pathlib import Path

import numpy as np

from postergenre.artifact import HEADLINE_KEYS as HEADLINE  # the manifest's headline metrics
from train import cached, calibrate, heads, metrics

# The quality bar is macro over genres with >= 10 positives among 1,000 held-back posters.
COMMON_PRIOR = 0.01


def oof_scores(features: np.ndarray, labels: np.ndarray, folds: np.ndarray, options: heads.HeadOptions, name: str,
               cache: Path | None = None, cache_key: dict | None = None, targets: np.ndarray | None = None
               ) -> tuple[np.ndarray, float | None]:
    """([max_epochs, N, L] seed-averaged out-of-fold scores of one backbone's heads after each epoch,
    the seconds they took to compute (kept with the cache)).

    ``targets`` [folds, N, L]: what the heads of each fold train towards instead of ``labels``
    (soft targets made without that fold: train/distill.py)."""
    key = None
    if cache_key is not None:
        key = {**cache_key, "folds": hashlib.sha256(folds.tobytes()).hexdigest(), "options": asdict(options), "labels": labels.shape}
        if targets is not None:
            key["targets"] = hashlib.sha256(np.ascontiguousarray(targets, np.float32).tobytes()).hexdigest()

    def compute() -> np.ndarray:
        out = np.zeros((options.max_epochs, *labels.shape), np.float32)
        for k in range(folds.max() + 1):
            train, held = folds != k, folds == k
            for seed in range(options.seeds):
                goal = labels[train] if targets is None else targets[k][train]
                _, scores = heads.fit(features[:, train], goal, options, options.max_epochs, seed, f"{name}_cv", features[0, held])
                out[:, held] += scores / options.seeds
            print(f"  {name}: fold {k + 1}/{folds.max() + 1} done", flush=True)
        return out

    return cached.load_or_compute(cache, f"oof-{name}", key, compute, "out-of-fold scores")


def best_epoch(curve: np.ndarray, labels: np.ndarray) -> tuple[int, list[float]]:
    """(epochs to train, pooled OOF mAP after each epoch): the epoch count maximising pooled OOF mAP."""
    maps = [float(np.nanmean(metrics.average_precision(labels, scores))) for scores in curve]
    return int(np.argmax(maps)) + 1, maps


def evaluate(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray) -> dict:
    """Per-fold figures (mean and sd over folds) and pooled OOF figures, decisions cross-fitted;
    also pooled over the common genres only (prior >= COMMON_PRIOR), as the quality bar counts them."""
    pred = calibrate.crossfit_decisions(labels, scores, folds)
    common = labels.mean(axis=0) >= COMMON_PRIOR
    per_fold = [metrics.evaluate(labels[folds == k], scores[folds == k], pred[folds == k]) for k in range(folds.max() + 1)]
    return {
        "folds": {key: {"mean": float(np.mean([f[key] for f in per_fold])), "sd": float(np.std([f[key] for f in per_fold], ddof=1)),
                        "values": [f[key] for f in per_fold]} for key in HEADLINE},
        "pooled": metrics.evaluate(labels, scores, pred),
        "pooled_common": {"genres": int(common.sum()), **metrics.evaluate(labels[:, common], scores[:, common], pred[:, common])},
    }


def candidates(names: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty set of backbones, singles first."""
    return [combo for size in range(1, len(names) + 1) for combo in combinations(names, size)]
