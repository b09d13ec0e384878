"""The answer's decision rule: the genres whose score passes their threshold, and never none.

The function answers with it and training scores its decisions with it (train/metrics.py,
train/calibrate.py), so the F1 in the report is the F1 of what the function returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def decide(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """[N, L] scores and [L] thresholds -> [N, L] decisions; a poster with no genre over its
    threshold gets its top-scored genre."""
    chosen = scores >= thresholds
    empty = ~chosen.any(axis=1)
    chosen[empty, scores[empty].argmax(axis=1)] = True
    return chosen


def ranked(scores: np.ndarray, thresholds: np.ndarray, labels: Sequence[str]) -> list[str]:
    """One poster's [L] scores -> its decided genres, highest score first."""
    chosen = decide(scores[None, :], thresholds)[0]
    return [labels[i] for i in np.argsort(-scores, kind="stable") if chosen[i]]
