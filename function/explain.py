"""Per-genre heatmaps from the model's own explanation output (``?explain=1``).

Contract (see README "Explanations"): a model may have, next to its scores [1, L], a second
float32 output [1, R, C, L]: per-location class evidence (logits) over a coarse R x C grid of the
input, e.g. a class activation map. Outputs are told apart by shape, not order. The manifest may
record the grid as ``"explanations": {"rows": R, "cols": C, "method": "cam"}``; when present it
must match the tensor. A model without the output serves as before; asking it to explain is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from errors import CodedError

TRUE = ("1", "true", "yes", "on", "")  # "" = a bare ?explain
FALSE = ("0", "false", "no", "off")
# A map whose range is below this (in logits) carries no spatial information: all zeros.
FLAT_SPAN = 1e-6


class Unavailable(CodedError):
    """The model has no explanation output (HTTP 400: retrying will not help)."""

    def __init__(self) -> None:
        super().__init__("explanations_unavailable", "This model has no explanation output; request without explain.", 400)


def requested(args: Mapping[str, str]) -> bool:
    """The ``explain`` query flag: 1/true/yes/on (or bare) asks, 0/false/no/off or absent does not."""
    value = args.get("explain")
    if value is None:
        return False
    value = value.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise CodedError("invalid_explain", "The explain parameter must be 1/true/yes or 0/false/no.", 400)


@dataclass(frozen=True)
class Outputs:
    """Tensor indices of the scores and (when the model has one) the explanation map."""

    scores: int
    explanations: int | None = None
    grid: tuple[int, int] | None = None


def find_outputs(details: Sequence[dict], n_labels: int, manifest_grid: tuple[int, int] | None) -> Outputs:
    """Pick the outputs by shape: [1, L] scores, [1, R, C, L] explanations; ValueError otherwise."""
    shapes = [[int(d) for d in detail["shape"]] for detail in details]
    scores = [d["index"] for d, shape in zip(details, shapes) if shape == [1, n_labels]]
    maps = [(d["index"], shape) for d, shape in zip(details, shapes) if len(shape) == 4 and shape[0] == 1 and shape[3] == n_labels]
    if len(scores) != 1 or len(maps) > 1 or len(details) != 1 + len(maps):
        raise ValueError(f"expected outputs [1, {n_labels}] and optionally [1, R, C, {n_labels}], got {shapes}")
    if not maps:
        if manifest_grid is not None:
            raise ValueError("the manifest records explanations but the model has no explanation output")
        return Outputs(scores[0])
    index, shape = maps[0]
    grid = (shape[1], shape[2])
    if manifest_grid is not None and manifest_grid != grid:
        raise ValueError(f"the manifest's explanation grid {manifest_grid} does not match the model's {grid}")
    return Outputs(scores[0], index, grid)


def heatmaps(maps: np.ndarray, labels: Sequence[str], genres: Sequence[str]) -> dict:
    """[R, C, L] logits -> {genre: {"rows", "cols", "heatmap"}} for the returned genres, each min-max
    normalised to 0..1 on its own (the maps say *where*, the scores say *how much*)."""
    rows, cols = int(maps.shape[0]), int(maps.shape[1])
    out = {}
    for genre in genres:
        grid = maps[..., labels.index(genre)].astype(np.float64)
        low, span = float(grid.min()), float(grid.max() - grid.min())
        norm = (grid - low) / span if span > FLAT_SPAN else np.zeros_like(grid)
        out[genre] = {"rows": rows, "cols": cols, "heatmap": np.round(norm, 4).tolist()}
    return out
