"""A tiny, deterministic colour classifier exported with the training job's own export code.

Labels Red/Green/Blue: a mostly-red poster scores high on Red, and so on. Function tests use it
so they never need ../shared or the bundled model. ``python -m tests.helpers.tiny_model OUT``.

Its "backbone" averages the input over 8x8 cells: a 6x4 feature grid (layer ``features``, the
convention of train/explain.py), so the explanation map shows where a colour sits. The scores
are unchanged by that pooling (the mean of the cell means is the mean). ``explanations=False``
exports the model as it was before the explanation output existed, ``legacy=True`` as it was
before the explain signature (the map computed in the scoring graph).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

LABELS = ["Red", "Green", "Blue"]
HEIGHT, WIDTH = 48, 32
CELL = 8
GRID = (HEIGHT // CELL, WIDTH // CELL)
PLAIN = "without-explanations"  # the same model exported without the explanation output, in OUT/PLAIN
LEGACY = "map-in-scoring-graph"  # exported as before the explain signature: one signature, scores and map, in OUT/LEGACY


def chained(model):
    """``model`` with the explanation map as a second output: the two exported signatures
    (train/explain.signatures) chained in one graph."""
    import keras

    from train import explain

    scoring, explaining = explain.signatures(model)
    image = keras.Input(model.inputs[0].shape[1:])
    out = scoring(image)
    maps = explaining({name: tensor for name, tensor in out.items() if name != "scores"})["explanations"]
    return keras.Model(image, [out["scores"], maps])


def build(out: Path, version: str = "test-1", explanations: bool = True, legacy: bool = False) -> Path:
    import keras

    from postergenre import imaging
    from train import export

    inputs = keras.Input((HEIGHT, WIDTH, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.AveragePooling2D(CELL, name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(3, activation="sigmoid")
    outputs = dense(x)
    net = keras.Model(inputs, outputs)
    # logit_c = 12 * c - 6 * (other two channels) - 3
    dense.set_weights([np.full((3, 3), -6.0, np.float32) + np.eye(3, dtype=np.float32) * 18.0, np.full(3, -3.0, np.float32)])
    spec = imaging.InputSpec(HEIGHT, WIDTH, "bilinear")
    manifest = export.base_manifest("tiny-colour", version, LABELS, np.full(3, 0.5), spec)
    if explanations or legacy:
        from train import explain

        manifest.update(explain.manifest_entry(net))
    if legacy:
        tflite = export.to_tflite(chained(net), HEIGHT, WIDTH)
    else:
        tflite = export.to_tflite(net, HEIGHT, WIDTH, explanations=explanations)
    export.write_artifact(out, tflite, {**manifest, "metrics": {}, "training": {"note": "test fixture"}})
    return out


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(build(out), build(out / PLAIN, explanations=False), build(out / LEGACY, legacy=True))
