"""Model definitions: our ensemble of ImageNet backbones and the seed project's CNN as published."""

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


def seed_cnn(n_labels: int, size: int = 350) -> keras.Model:
    """The original project's CNN, re-created from its published summary (27.6M parameters at 350x350)."""
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    for filters, rate, pool in ((16, 0.3, False), (32, 0.3, True), (64, 0.4, True), (128, 0.5, True)):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        if pool:
            x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(rate)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(128, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(n_labels, activation="sigmoid", name="genres")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")
