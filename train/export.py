"""fp16 TFLite export, manifest writing and the Keras-vs-TFLite parity check."""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from postergenre import (
    artifact,  # the artifact contract (file names, manifest, checksum)
    imaging,
)
from postergenre import model as serving  # the function's loader: the artifact is checked the way it is served
from train import quiet

MIN_DECISION_AGREEMENT = 0.99


class ParityError(RuntimeError):
    """The TFLite model does not decide like the Keras model it was converted from."""


def to_tflite(model: keras.Model, height: int, width: int, explanations: bool = False) -> bytes:
    """Convert with weights stored as float16 (Optimize.DEFAULT + float16 target type).

    The file's signature ``artifact.SCORES_SIGNATURE`` maps the image to the scores. With
    ``explanations`` it also returns the members' feature maps, and a second signature,
    ``artifact.EXPLAIN_SIGNATURE``, maps those to the explanation map (train/explain.py; record it
    in the manifest with ``explain.manifest_entry(model)``): only requests that ask for the map
    run the heads per location, and the backbones run once either way.
    """
    image = tf.TensorSpec([1, height, width, 3], tf.float32, name="image")
    endpoints = {artifact.SCORES_SIGNATURE: (model, [image])}
    if explanations:
        from train import explain

        scoring, explaining = explain.signatures(model)
        features = [tf.TensorSpec([1, *x.shape[1:]], tf.float32, name=name) for name, x in explaining.input.items()]
        endpoints = {artifact.SCORES_SIGNATURE: (scoring, [image]), artifact.EXPLAIN_SIGNATURE: (explaining, features)}
    # Through a SavedModel: converting a Keras 3 model's concrete function directly loses its
    # variables (the .tflite comes out weightless and answers NaN - the parity check caught it).
    # No endpoint may be called "serve": the converter then keeps only that one.
    with tempfile.TemporaryDirectory() as saved, quiet.native_stderr():
        archive = keras.export.ExportArchive()
        for name, (net, specs) in endpoints.items():
            archive.track(net)
            archive.add_endpoint(name, _inference(net, [spec.name for spec in specs]), input_signature=specs)
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=list(endpoints))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def _inference(net: keras.Model, names: list[str]):
    """``net`` in inference mode as a function of its inputs, positionally (what an export
    endpoint traces); a net with named inputs gets them as a dict."""
    if isinstance(net.input, dict):
        return lambda *tensors: net(dict(zip(names, tensors)), training=False)
    return lambda image: net(image, training=False)


def write_artifact(out: Path, tflite: bytes, manifest: dict) -> dict:
    """Write model.tflite + manifest.json; sha256 and size are filled in from the bytes written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / artifact.MODEL_FILE).write_bytes(tflite)
    manifest = {**manifest, "sha256": hashlib.sha256(tflite).hexdigest(), "size_bytes": len(tflite)}
    (out / artifact.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def base_manifest(name: str, version: str | None, labels: list[str], thresholds: np.ndarray, spec: imaging.InputSpec) -> dict:
    created = datetime.now(timezone.utc)
    return {
        "name": name,
        "version": version or created.strftime("%Y%m%d-%H%M%S"),
        "created": created.isoformat(timespec="seconds"),
        "labels": labels,
        "thresholds": {label: round(float(t), 4) for label, t in zip(labels, thresholds)},
        "input": {
            "height": spec.height,
            "width": spec.width,
            "channels": 3,
            "dtype": "float32",
            "layout": "NHWC",
            "range": [0, 255],
            "resize": spec.resize,
            "fit": "stretch",
            "color": "RGB; alpha composited over white; EXIF orientation applied; first frame",
            "normalization": "inside the model",
        },
    }


def parity(keras_model: keras.Model, artifact_dir: Path, posters: list[bytes], keras_pixels: np.ndarray) -> dict:
    """Keras on the training pipeline's pixels vs the artifact on the serving decode path.

    ``keras_pixels`` are what training fed the model for these posters; the TFLite side starts from
    the raw poster bytes and goes through the function's own decode and its own loader.
    """
    predictor = serving.load(str(artifact_dir))
    spec, thresholds = predictor.manifest.input, predictor.manifest.thresholds
    keras_scores = keras_model.predict(keras_pixels.astype(np.float32), batch_size=32, verbose=0)
    if isinstance(keras_scores, (list, tuple)):  # a model with explanations: compare the scores
        keras_scores = keras_scores[0]
    lite_scores = np.stack([predictor.scores(imaging.decode(b, spec)) for b in tqdm(posters, desc="parity", unit="img")])
    diff = np.abs(keras_scores - lite_scores)
    top3 = lambda s: np.sort(np.argsort(-s, axis=1)[:, :3], axis=1)  # noqa: E731
    keras_dec, lite_dec = keras_scores >= thresholds, lite_scores >= thresholds
    result = {
        "posters": len(posters),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "top3_agreement": float((top3(keras_scores) == top3(lite_scores)).all(axis=1).mean()),
        "decision_agreement": float((keras_dec == lite_dec).mean()),
        "poster_decision_agreement": float((keras_dec == lite_dec).all(axis=1).mean()),
    }
    if result["decision_agreement"] < MIN_DECISION_AGREEMENT:
        raise ParityError(f"TFLite decisions agree with Keras on {result['decision_agreement']:.2%} < {MIN_DECISION_AGREEMENT:.0%}: {result}")
    return result


def latency(artifact_dir: Path, posters: list[bytes], repeats: int = 3) -> dict:
    """Warm single-thread milliseconds per poster through the function's decode and predictor.

    One interpreter with one thread, as a Cloud Functions instance runs it; the first call
    (allocation, caches) is not counted. Medians: the CPU is shared.
    """
    predictor = serving.load(str(artifact_dir), pool_size=1, num_threads=1)
    spec = predictor.manifest.input
    predictor.scores(imaging.decode(posters[0], spec))
    decode_ms, total_ms = [], []
    for _ in range(repeats):
        for poster in posters:
            start = time.perf_counter()
            pixels = imaging.decode(poster, spec)
            decoded = time.perf_counter()
            predictor.scores(pixels)
            done = time.perf_counter()
            decode_ms.append(1000 * (decoded - start))
            total_ms.append(1000 * (done - start))
    return {"posters": len(posters), "runs": len(total_ms), "p50_ms": round(statistics.median(total_ms), 2),
            "decode_p50_ms": round(statistics.median(decode_ms), 2), "size_mb": round((artifact_dir / artifact.MODEL_FILE).stat().st_size / 1e6, 2)}


def interleaved_latency(artifacts: dict[str, Path], posters: list[bytes], repeats: int = 5) -> dict:
    """Invoke time of the scoring signature (decode excluded) of several artifacts in one run, posters
    interleaved model by model, so a shared CPU's load falls on all alike; ratios to the first artifact."""
    predictors = {name: serving.load(str(folder), pool_size=1) for name, folder in artifacts.items()}
    pixels = {name: [imaging.decode(b, p.manifest.input) for b in posters] for name, p in predictors.items()}
    times: dict[str, list[float]] = {name: [] for name in artifacts}
    for name, predictor in predictors.items():
        predictor.scores(pixels[name][0])  # warm-up
    for _ in range(repeats):
        for i in range(len(posters)):
            for name, predictor in predictors.items():
                start = time.perf_counter()
                predictor.scores(pixels[name][i])
                times[name].append(1000 * (time.perf_counter() - start))
    p50 = {name: statistics.median(t) for name, t in times.items()}
    first = next(iter(artifacts))
    return {name: {"invoke_p50_ms": round(p50[name], 2), "ratio": round(p50[name] / p50[first], 3), "runs": len(times[name]),
                   "size_mb": round((folder / artifact.MODEL_FILE).stat().st_size / 1e6, 2)} for name, folder in artifacts.items()}
