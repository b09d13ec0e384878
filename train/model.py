"""The served model: backbones with their heads in one Keras graph (what train/export.py converts)."""

from __future__ import annotations

import keras
from keras import layers


def ensemble(height: int, width: int, members: dict[str, tuple[keras.Model, list[keras.Model]]]) -> keras.Model:
    """One model over one 0-255 image: every backbone with its heads, genre scores averaged.

    ``members`` maps a name to (backbone, heads): each backbone ends in its last spatial feature
    map (reachable as ``model.get_layer(name).output``, e.g. for class-activation maps), is pooled
    and scored by its heads (one per seed); a member's score is the mean of its heads', the
    ensemble's the mean of its members'. Members stay independent: averaging separately trained
    backbones' scores beat one head over their concatenated features.
    """
    image = keras.Input((height, width, 3), name="image")
    scores = []
    for name, (backbone, member_heads) in members.items():
        pooled = layers.GlobalAveragePooling2D(name=f"{name}_pool")(backbone(image))
        outputs = [head(pooled) for head in member_heads]
        scores.append(layers.Average(name=f"{name}_genres")(outputs) if len(outputs) > 1 else outputs[0])
    genres = layers.Average(name="genres")(scores) if len(scores) > 1 else layers.Identity(name="genres")(scores[0])
    return keras.Model(image, genres, name="postergenre_ensemble")
