"""The answer for one poster: the JSON object a single request returns and a batch returns per slot."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from postergenre.artifact import Manifest
    from postergenre.model import Prediction


def poster(prediction: Prediction, manifest: Manifest) -> dict:
    """One poster's genres, scores, thresholds, model and (when asked) explanations."""
    body = {"genres": prediction.genres, "scores": prediction.scores, "model": manifest.describe(), "thresholds": prediction.thresholds}
    if prediction.explanations is not None:
        body["explanations"] = prediction.explanations
    return body


def single(prediction: Prediction, manifest: Manifest) -> dict:
    """A single request's answer: the poster's, plus "result", the seed Flask server's field."""
    return {**poster(prediction, manifest), "result": prediction.genres}
