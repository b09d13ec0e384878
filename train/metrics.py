"""Multi-label metrics, computed the same way for every model and baseline in the report."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from postergenre.genres import decide  # the function's own rule: report F1 is that of its answers


def _per_label(fn, y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Apply a per-genre ranking metric, NaN where a genre has no positive (or no negative)."""
    out = np.full(y.shape[1], np.nan)
    for j in range(y.shape[1]):
        if 0 < y[:, j].sum() < len(y):
            out[j] = fn(y[:, j], s[:, j])
    return out


def average_precision(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    return _per_label(skm.average_precision_score, y, s)


def roc_auc(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    return _per_label(skm.roc_auc_score, y, s)


def one_error(y: np.ndarray, s: np.ndarray) -> float:
    """Share of posters whose top-scored genre is not one of theirs (posters with a genre)."""
    has = y.sum(axis=1) > 0
    top = s[has].argmax(axis=1)
    return float(1.0 - y[has][np.arange(has.sum()), top].mean())


def precision_at_k(y: np.ndarray, s: np.ndarray, k: int = 3) -> float:
    top = np.argsort(-s, axis=1)[:, :k]
    return float(np.take_along_axis(y, top, axis=1).mean())


def evaluate(y: np.ndarray, s: np.ndarray, pred: np.ndarray) -> dict:
    """Every report metric for scores ``s`` and decisions ``pred`` against labels ``y``."""
    y = y.astype(int)
    pred = pred.astype(int)
    has = y.sum(axis=1) > 0
    ap = average_precision(y, s)
    auc = roc_auc(y, s)
    return {
        "mAP_macro": float(np.nanmean(ap)),
        "mAP_micro": float(skm.average_precision_score(y, s, average="micro")),
        "roc_auc_macro": float(np.nanmean(auc)),
        "one_error": one_error(y, s),
        "coverage": float(skm.coverage_error(y[has], s[has])),
        "ranking_loss": float(skm.label_ranking_loss(y[has], s[has])),
        "lrap": float(skm.label_ranking_average_precision_score(y[has], s[has])),
        "precision_at_3": precision_at_k(y, s, 3),
        "f1_micro": float(skm.f1_score(y, pred, average="micro", zero_division=0)),
        "f1_macro": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        "f1_samples": float(skm.f1_score(y, pred, average="samples", zero_division=0)),
        "hamming_loss": float(skm.hamming_loss(y, pred)),
        "binary_accuracy": float(1.0 - skm.hamming_loss(y, pred)),
        "per_label_ap": [None if np.isnan(v) else float(v) for v in ap],
        "per_label_auc": [None if np.isnan(v) else float(v) for v in auc],
    }


def baselines(y: np.ndarray, prior: np.ndarray) -> dict[str, dict]:
    """Predict-nothing and the label prior: ``prior`` [N, L] holds genre frequencies learned without
    each poster (training split, or the other folds) and is used as constant scores."""
    rng = np.random.default_rng(0)
    # Constant scores tie every poster; a vanishing jitter breaks ties without adding information.
    prior_scores = prior + rng.uniform(0, 1e-9, y.shape)
    nothing = np.zeros_like(y, dtype=bool)
    # The prior's decisions: genres that more than half of all posters have (none here) - but
    # never empty (decide), so the most common genre.
    prior_pred = decide(prior_scores, np.full(y.shape[1], 0.5))
    return {
        "predict_nothing": evaluate(y, prior_scores, nothing),
        "label_prior": evaluate(y, prior_scores, prior_pred),
    }
