"""Per-genre decision thresholds chosen on validation data."""

from __future__ import annotations

import numpy as np

CANDIDATES = np.round(np.arange(0.02, 0.951, 0.01), 2)


def f1_at(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    pred = s >= threshold
    tp = float((pred & (y > 0)).sum())
    denom = float(pred.sum() + (y > 0).sum())
    return 2 * tp / denom if denom else 0.0


def thresholds(y: np.ndarray, s: np.ndarray, smooth: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Best-F1 threshold per genre, on a lightly smoothed F1 curve to avoid knife-edge optima.

    Returns (thresholds, F1 at those thresholds). Genres without validation positives keep 0.5.
    """
    chosen = np.full(y.shape[1], 0.5)
    best = np.zeros(y.shape[1])
    kernel = np.ones(2 * smooth + 1) / (2 * smooth + 1)
    for j in range(y.shape[1]):
        if y[:, j].sum() == 0:
            continue
        curve = np.array([f1_at(y[:, j], s[:, j], t) for t in CANDIDATES])
        smoothed = np.convolve(np.pad(curve, smooth, mode="edge"), kernel, mode="valid")
        k = int(np.argmax(smoothed))
        chosen[j], best[j] = CANDIDATES[k], curve[k]
    return chosen, best


def crossfit_decisions(y: np.ndarray, s: np.ndarray, seed: int, folds: int = 2) -> np.ndarray:
    """Decisions where each poster's thresholds were chosen on the *other* folds.

    F1 measured with thresholds tuned on the same posters is optimistic; this gives the honest
    figure for the report while the shipped thresholds use all validation posters.
    """
    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    pred = np.zeros_like(y, dtype=bool)
    for k in range(folds):
        chosen, _ = thresholds(y[fold != k], s[fold != k])
        pred[fold == k] = s[fold == k] >= chosen
    empty = ~pred.any(axis=1)
    pred[empty, s[empty].argmax(axis=1)] = True
    return pred
