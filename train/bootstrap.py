"""Bootstrap intervals over posters for the deciding figures, paired between two score sets.

Resampling posters with replacement is done with multiplicity weights, so each resample costs a
weighted sum over a fixed per-genre order instead of a re-sort (thousands of resamples in seconds).
Decisions are fixed (the cross-fitted ones), so the F1 intervals carry the ranking and sampling
noise but not a re-calibration of thresholds.
"""

from __future__ import annotations

import numpy as np

FIGURES = ("mAP_macro", "roc_auc_macro", "one_error", "f1_macro", "f1_micro")


def _figures(y: np.ndarray, s: np.ndarray, pred: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Every figure of FIGURES for each row of weights ``w`` [B, N]."""
    ap, auc = [], []
    for j in range(y.shape[1]):
        order = np.argsort(-s[:, j], kind="stable")
        pos = y[order, j] > 0
        ws = w[:, order]
        seen = np.cumsum(ws, axis=1)
        hits = np.cumsum(ws * pos, axis=1)
        total_pos = hits[:, -1]
        ap.append(np.sum(ws * pos * hits / np.maximum(seen, 1e-12), axis=1) / np.maximum(total_pos, 1e-12))
        neg_below = (seen - hits)[:, -1:] - (seen - hits)  # negatives scored lower than each poster
        total_neg = (seen - hits)[:, -1]
        auc.append(np.sum(ws * pos * neg_below, axis=1) / np.maximum(total_pos * total_neg, 1e-12))
    has = y.sum(axis=1) > 0
    top_wrong = (y[np.arange(len(y)), s.argmax(axis=1)] == 0) & has
    tp = w @ (pred & (y > 0)).astype(float)
    fp = w @ (pred & (y == 0)).astype(float)
    fn = w @ (~pred & (y > 0)).astype(float)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0.0)
    return {
        "mAP_macro": np.mean(ap, axis=0),
        "roc_auc_macro": np.mean(auc, axis=0),
        "one_error": (w @ top_wrong) / (w @ has),
        "f1_macro": f1.mean(axis=1),
        "f1_micro": 2 * tp.sum(1) / np.maximum(2 * tp.sum(1) + fp.sum(1) + fn.sum(1), 1e-12),
    }


def paired(y: np.ndarray, scores: np.ndarray, pred: np.ndarray, reference: np.ndarray | None = None, ref_pred: np.ndarray | None = None,
           resamples: int = 1000, seed: int = 0, chunk: int = 100) -> dict:
    """95% intervals of each figure, and with ``reference`` of the difference (scores - reference) on the same resamples."""
    rng = np.random.default_rng(seed)
    y, pred = y.astype(float), pred.astype(bool)
    draws: dict[str, list] = {k: [] for k in FIGURES}
    diffs: dict[str, list] = {k: [] for k in FIGURES}
    for start in range(0, resamples, chunk):
        w = rng.multinomial(len(y), np.full(len(y), 1.0 / len(y)), size=min(chunk, resamples - start)).astype(float)
        ours = _figures(y, scores, pred, w)
        theirs = _figures(y, reference, ref_pred.astype(bool), w) if reference is not None else None
        for k in FIGURES:
            draws[k].append(ours[k])
            if theirs is not None:
                diffs[k].append(ours[k] - theirs[k])
    interval = lambda v: [float(np.percentile(np.concatenate(v), 2.5)), float(np.percentile(np.concatenate(v), 97.5))]  # noqa: E731
    out = {"resamples": resamples, "interval": {k: interval(draws[k]) for k in FIGURES}}
    if reference is not None:
        out["difference"] = {k: interval(diffs[k]) for k in FIGURES}
        out["difference_mean"] = {k: float(np.mean(np.concatenate(diffs[k]))) for k in FIGURES}
    return out
