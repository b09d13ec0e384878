"""Per-genre heatmaps from the model's own explanation output (``?explain=1``).

Contract (see function/README.md "Explanations"): a model may have, next to its scoring signature, a second
signature ``artifact.EXPLAIN_SIGNATURE`` that takes some of the scoring signature's other outputs
(by name: e.g. the backbones' feature maps) and returns one float32 map [1, R, C, L]: per-location
class evidence (logits) over a coarse R x C grid of the input, e.g. a class activation map. Only
requests that ask for explanations run it. The scores [1, L] and the map are found by shape. The
manifest may record the grid as ``"explanations": {"rows": R, "cols": C, "method": "cam"}``; when
present it must match the tensor. A model without the signature serves as before; asking it to
explain is a 400.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from postergenre.errors import CodedError

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


def shapes(details: Mapping[str, dict]) -> dict[str, list[int]]:
    """Tensor shapes as plain int lists, by name (LiteRT gives numpy arrays)."""
    return {name: [int(d) for d in detail["shape"]] for name, detail in details.items()}


def find_scores(details: Mapping[str, dict], n_labels: int) -> str:
    """The name of the one [1, L] output of the scoring signature (other outputs may feed the
    explainer); ValueError otherwise."""
    found = shapes(details)
    scores = [name for name, shape in found.items() if shape == [1, n_labels]]
    if len(scores) != 1:
        raise ValueError(f"expected one scores output [1, {n_labels}], got {sorted(found.values())}")
    return scores[0]


def find_map(details: Mapping[str, dict], n_labels: int) -> tuple[str, tuple[int, int]]:
    """(name, (rows, cols)) of the explain signature's only output, a [1, R, C, L] map; ValueError otherwise."""
    found = shapes(details)
    if len(found) != 1 or any(len(s) != 4 or s[0] != 1 or s[3] != n_labels or min(s) < 1 for s in found.values()):
        raise ValueError(f"expected one explanation output [1, R, C, {n_labels}], got {sorted(found.values())}")
    ((name, shape),) = found.items()
    return name, (shape[1], shape[2])


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
