"""Per-genre heatmaps from the model's own explanation output (``?explain=1``).

Contract (see README "Explanations"): a model may have, next to its scoring signature, a second
signature ``artifact.EXPLAIN_SIGNATURE`` whose outputs are the scores [1, L] and a float32 map
[1, R, C, L]: per-location class evidence (logits) over a coarse R x C grid of the input, e.g. a
class activation map. Only requests that ask for explanations run it. Outputs are told apart by
shape, not name or order. The manifest may record the grid as
``"explanations": {"rows": R, "cols": C, "method": "cam"}``; when present it must match the tensor.
A model without the signature serves as before; asking it to explain is a 400.
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
    """A signature's output names: the scores and (in the explain signature) the map and its grid."""

    scores: str
    explanations: str | None = None
    grid: tuple[int, int] | None = None


def find_outputs(details: Mapping[str, dict], n_labels: int, with_map: bool) -> Outputs:
    """Pick a signature's outputs by shape: [1, L] scores and, ``with_map``, the [1, R, C, L] map
    (and nothing else); ValueError otherwise."""
    shapes = {name: [int(d) for d in detail["shape"]] for name, detail in details.items()}
    scores = [name for name, shape in shapes.items() if shape == [1, n_labels]]
    maps = [name for name, shape in shapes.items() if len(shape) == 4 and shape[0] == 1 and shape[3] == n_labels]
    if len(scores) != 1 or len(maps) != int(with_map) or len(shapes) != 1 + len(maps):
        expected = f"[1, {n_labels}]" + (f" and [1, R, C, {n_labels}]" if with_map else "")
        raise ValueError(f"expected outputs {expected}, got {sorted(shapes.values())}")
    if not maps:
        return Outputs(scores[0])
    return Outputs(scores[0], maps[0], (shapes[maps[0]][1], shapes[maps[0]][2]))


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
