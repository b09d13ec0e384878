"""The refit stage: each shipped backbone's heads trained on every poster, for the epochs cross-validation chose,
and joined with their backbones into the one model that is exported."""

from __future__ import annotations

import keras
import numpy as np

from train import heads, model
from train.data import Dataset
from train.recipe import Recipe


def refit(recipe: Recipe, nets: dict[str, keras.Model], feats: dict[str, np.ndarray], dataset: Dataset, epochs: dict[str, int]
          ) -> tuple[dict[str, tuple[keras.Model, list[keras.Model]]], keras.Model]:
    """(each shipped backbone with its ``heads.seeds`` heads refit on all posters (weighted by their folder as the recipe
    says), seeds from the recipe's; their ensemble)."""
    weights = dataset.weights(recipe.data.source_weights)
    members = {
        name: (nets[name], heads.fit_seeds(feats[name], dataset.labels, recipe.heads, epochs[name], recipe.cross_validation.seed,
                                           f"{name}_head", weights))
        for name in recipe.model.backbones
    }
    return members, model.ensemble(recipe.model.height, recipe.model.width, members)
