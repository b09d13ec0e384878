"""Baseline for the benchmark: the old serving style - a Flask app that imports all of
TensorFlow and loads the same .tflite through tf.lite on every request (as the seed project
reloaded its model per request). Same decode code, so only the serving stack differs.

Run: python tests/bench/tf_server.py MODEL_DIR PORT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import tensorflow as tf  # noqa: F401  (the point of the baseline: the full framework at start)
from flask import Flask, jsonify, request

from postergenre import imaging
from postergenre.artifact import SCORES_SIGNATURE

MODEL_DIR = Path(sys.argv[1])
MANIFEST = json.loads((MODEL_DIR / "manifest.json").read_text())
SPEC = imaging.InputSpec.from_manifest(MANIFEST["input"])
app = Flask(__name__)


@app.post("/")
def predict():
    runner = tf.lite.Interpreter(model_path=str(MODEL_DIR / "model.tflite")).get_signature_runner(SCORES_SIGNATURE)
    (image,) = runner.get_input_details()
    outputs = runner(**{image: imaging.decode(request.get_data(), SPEC)})
    scores = next(v for v in outputs.values() if v.shape == (1, len(MANIFEST["labels"])))[0]  # not the feature maps
    return jsonify({label: float(s) for label, s in zip(MANIFEST["labels"], scores)})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
