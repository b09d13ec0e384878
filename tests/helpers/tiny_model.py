"""A tiny, deterministic colour classifier exported with the training job's own export code.

Labels Red/Green/Blue: a mostly-red poster scores high on Red, and so on. Function tests use it
so they never need ../shared or the bundled model. ``python -m tests.helpers.tiny_model OUT``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

LABELS = ["Red", "Green", "Blue"]
HEIGHT, WIDTH = 48, 32


def build(out: Path, version: str = "test-1") -> Path:
    import keras

    from train import export, imaging

    inputs = keras.Input((HEIGHT, WIDTH, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(3, activation="sigmoid")
    outputs = dense(x)
    net = keras.Model(inputs, outputs)
    # logit_c = 12 * c - 6 * (other two channels) - 3
    dense.set_weights([np.full((3, 3), -6.0, np.float32) + np.eye(3, dtype=np.float32) * 18.0, np.full(3, -3.0, np.float32)])
    spec = imaging.InputSpec(HEIGHT, WIDTH, "bilinear")
    manifest = export.base_manifest("tiny-colour", version, LABELS, np.full(3, 0.5), spec)
    export.write_artifact(out, export.to_tflite(net, HEIGHT, WIDTH), {**manifest, "metrics": {}, "training": {"note": "test fixture"}})
    return out


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))
