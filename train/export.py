"""The export stage: fp16 TFLite with its manifest, and the checks of an exported model: Keras-vs-TFLite parity, latency.

The artifact itself (manifest fields, files, checksum) is written by postergenre.artifact.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from postergenre import artifact, imaging
from postergenre import model as serving  # the function's predictor: the artifact is checked the way it is served
from train import quiet
from train.data import Dataset, batches
from train.recipe import Recipe

MIN_DECISION_AGREEMENT = 0.99
LATENCY_POSTERS = 10


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


def package(recipe: Recipe, net: keras.Model, labels: list[str], thresholds: np.ndarray, version: str | None) -> tuple[bytes, dict]:
    """The fp16 model with its explanation output, and its sealed manifest (not written yet)."""
    from train import explain

    spec = recipe.model.spec()
    manifest = artifact.new_manifest(recipe.export.name, version, labels, thresholds, spec)
    manifest.update(explain.manifest_entry(net))  # the explanation output (train/explain.py)
    tflite = to_tflite(net, spec.height, spec.width, explanations=True)
    return tflite, artifact.sealed(manifest, tflite)


def probe(recipe: Recipe, dataset: Dataset) -> tuple[list[bytes], np.ndarray]:
    """The parity posters, a seeded sample: their files (the serving side decodes them) and training's pixels of them."""
    rng = np.random.default_rng(recipe.cross_validation.seed)
    rows = np.sort(rng.choice(len(dataset.ids), min(recipe.export.parity_posters, len(dataset.ids)), replace=False))
    paths = [dataset.paths[i] for i in rows]
    spec = recipe.model.spec()
    return [p.read_bytes() for p in paths], np.concatenate(list(batches(paths, spec)))


def member_costs(recipe: Recipe, out: Path, members: dict, manifest: dict, posters: list[bytes]) -> dict:
    """File size and warm single-thread latency of each backbone alone (exported like the ensemble, into ``out``/members)."""
    from train import model

    if len(members) == 1:  # the ensemble itself
        return {}
    result = {}
    spec = recipe.model.spec()
    thresholds = np.array([manifest["thresholds"][label] for label in manifest["labels"]])
    for name, member in members.items():
        single = model.ensemble(spec.height, spec.width, {name: member})
        tflite = to_tflite(single, spec.height, spec.width)
        written = artifact.write(out / "members" / name, tflite,
                                 artifact.new_manifest(name, manifest["version"], manifest["labels"], thresholds, spec))
        result[name] = {**latency(written, tflite, posters), "params": int(single.count_params())}
    return result


def _inference(net: keras.Model, names: list[str]):
    """``net`` in inference mode as a function of its inputs, positionally (what an export
    endpoint traces); a net with named inputs gets them as a dict."""
    if isinstance(net.input, dict):
        return lambda *tensors: net(dict(zip(names, tensors, strict=True)), training=False)
    return lambda image: net(image, training=False)


def _predictor(manifest: dict, tflite: bytes, pool_size: int = 2, num_threads: int = 1) -> serving.Predictor:
    """The function's own predictor for an artifact (sealed manifest + model bytes): it is checked
    the way it will be served, before anything is written."""
    return serving.Predictor(artifact.Manifest.from_dict(manifest), tflite, pool_size, num_threads)


def parity(keras_model: keras.Model, manifest: dict, tflite: bytes, posters: list[bytes], keras_pixels: np.ndarray) -> dict:
    """Keras on the training pipeline's pixels vs the artifact on the serving decode path.

    ``keras_pixels`` are what training fed the model for these posters; the TFLite side starts from
    the raw poster bytes and goes through the function's own decode and its own predictor.
    """
    predictor = _predictor(manifest, tflite)
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
        raise ParityError(
            f"TFLite decisions agree with Keras on {result['decision_agreement']:.2%} < {MIN_DECISION_AGREEMENT:.0%}: {result}"
        )
    return result


def latency(manifest: dict, tflite: bytes, posters: list[bytes], repeats: int = 3) -> dict:
    """Warm single-thread milliseconds per poster through the function's decode and predictor.

    One interpreter with one thread, as a Cloud Functions instance runs it; the first call
    (allocation, caches) is not counted. Medians: the CPU is shared.
    """
    predictor = _predictor(manifest, tflite, pool_size=1, num_threads=1)
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
            "decode_p50_ms": round(statistics.median(decode_ms), 2), "size_mb": round(len(tflite) / 1e6, 2)}


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
