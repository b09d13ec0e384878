"""The cross-validation stage: k-fold out-of-fold scores of the heads, the epoch to stop at, honest figures.

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
from train.data import Dataset
from train.recipe import Recipe

# The quality bar is macro over genres with >= 10 positives among 1,000 held-back posters.
COMMON_PRIOR = 0.01


def oof_scores(features: np.ndarray, labels: np.ndarray, folds: np.ndarray, options: heads.HeadOptions, name: str,
               cache: Path | None = None, cache_key: dict | None = None, weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, float | None]:
    """([max_epochs, N, L] seed-averaged out-of-fold scores of one backbone's heads after each epoch,
    the seconds they took to compute (kept with the cache)); ``weights``: each poster's training weight (heads.fit)."""
    key = None
    if cache_key is not None:
        key = {**cache_key, "folds": hashlib.sha256(folds.tobytes()).hexdigest(), "options": asdict(options), "labels": labels.shape}
        if weights is not None:
            key["weights"] = hashlib.sha256(weights.tobytes()).hexdigest()

    def compute() -> np.ndarray:
        out = np.zeros((options.max_epochs, *labels.shape), np.float32)
        for k in range(folds.max() + 1):
            train, held = folds != k, folds == k
            for seed in range(options.seeds):
                _, scores = heads.fit(features, labels, options, options.max_epochs, seed, f"{name}_cv", np.flatnonzero(train),
                                      np.flatnonzero(held), weights)
                out[:, held] += scores / options.seeds
            print(f"  {name}: fold {k + 1}/{folds.max() + 1} done", flush=True)
        return out

    return cached.load_or_compute(cache, f"oof-{name}", key, compute, "out-of-fold scores")


def best_epoch(curve: np.ndarray, labels: np.ndarray) -> tuple[int, list[float]]:
    """(epochs to train, pooled OOF mAP after each epoch): the epoch count maximising pooled OOF mAP."""
    maps = [float(np.nanmean(metrics.average_precision(labels, scores))) for scores in curve]
    return int(np.argmax(maps)) + 1, maps


def evaluate(labels: np.ndarray, scores: np.ndarray, folds: np.ndarray, pred: np.ndarray | None = None) -> dict:
    """Per-fold figures (mean and sd over folds) and pooled OOF figures, decisions cross-fitted (or ``pred``, a subset's
    share of the whole set's cross-fitted decisions); also pooled over the common genres only (prior >= COMMON_PRIOR), as
    the quality bar counts them."""
    pred = calibrate.crossfit_decisions(labels, scores, folds) if pred is None else pred
    common = labels.mean(axis=0) >= COMMON_PRIOR
    per_fold = [metrics.evaluate(labels[folds == k], scores[folds == k], pred[folds == k]) for k in range(folds.max() + 1)]
    return {
        "folds": {key: {"mean": float(np.mean([f[key] for f in per_fold])), "sd": float(np.std([f[key] for f in per_fold], ddof=1)),
                        "values": [f[key] for f in per_fold]} for key in HEADLINE},
        "pooled": metrics.evaluate(labels, scores, pred),
        "pooled_common": {"genres": int(common.sum()), **metrics.evaluate(labels[:, common], scores[:, common], pred[:, common])},
    }


def cross_validate(recipe: Recipe, dataset: Dataset, folds: np.ndarray, feats: dict[str, np.ndarray], keys: dict[str, list],
                   cache: Path | None) -> dict:
    """The recipe's heads on every backbone (shipped and candidates): out-of-fold curves, the epoch each stops at, and the
    figures of every set of backbones; the shipped set's OOF scores and figures, per data folder too when there are several."""
    labels, cv, weights = dataset.labels, recipe.cross_validation, dataset.weights(recipe.data.source_weights)
    curves, epochs, oof, seconds = {}, {}, {}, 0.0
    for name, feat in feats.items():
        key = None if None in keys[name] else {"features": keys[name], "views": asdict(recipe.views), "fold_seed": cv.seed}
        curve, took = oof_scores(feat, labels, folds, recipe.heads, name, cache, key, weights)
        seconds += took or 0.0
        epochs[name], curves[name] = best_epoch(curve, labels)
        oof[name] = curve[epochs[name] - 1]
    shipped = "+".join(recipe.model.backbones)
    scores = np.mean([oof[n] for n in recipe.model.backbones], axis=0)
    pred = calibrate.crossfit_decisions(labels, scores, folds)  # the shipped set's decisions, made once
    sets = {}
    for combo in map("+".join, candidates(list(feats))):
        sets[combo] = evaluate(labels, np.mean([oof[n] for n in combo.split("+")], axis=0), folds, pred if combo == shipped else None)
        f = sets[combo]["folds"]
        print(f"CV {combo:32s} " + "  ".join(f"{k} {f[k]['mean']:.3f}+/-{f[k]['sd']:.3f}" for k in HEADLINE), flush=True)
    result = sets[shipped]
    if len(dataset.folders) > 1:
        result["sources"] = {
            folder: evaluate(labels[rows], scores[rows], folds[rows], pred[rows])
            for folder, rows in ((f, dataset.folder_rows(k)) for k, f in enumerate(dataset.folders))
        }
    return {"epochs": epochs, "curves": curves, "oof": oof, "sets": sets, "scores": scores, "pred": pred, "result": result,
            "seconds": round(seconds, 1)}


def candidates(names: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty set of backbones, singles first."""
    return [combo for size in range(1, len(names) + 1) for combo in combinations(names, size)]
