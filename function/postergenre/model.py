"""Model artifact -> thread-safe predictor, loaded lazily once per instance.

The artifact (a directory or a ``gs://`` prefix, see artifact.py) is verified before it is used.
TensorFlow is never imported here: LiteRT (``ai_edge_litert``) runs the model, with the frozen
``tflite_runtime`` as a fallback.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover - exercised in the tflite-runtime environment
    from tflite_runtime.interpreter import Interpreter

from postergenre import explain
from postergenre.artifact import EXPLAIN_SIGNATURE, MANIFEST_FILE, MODEL_FILE, Manifest, read_manifest, verify
from postergenre.errors import ModelUnavailable


@dataclass(frozen=True)
class Prediction:
    genres: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    explanations: dict | None = None  # only when asked for, see explain.heatmaps


@dataclass(frozen=True)
class Signature:
    """A model signature the predictor runs: its key, its input names, and the output it is run
    for (the scores, or the explanation map)."""

    key: str
    inputs: tuple[str, ...]
    output: str


def _scoring(key: str, runner, manifest: Manifest) -> Signature:
    """The scoring signature: one image input as the manifest says, one [1, L] scores output."""
    spec = manifest.input
    inputs = explain.shapes(runner.get_input_details())
    if list(inputs.values()) != [[1, spec.height, spec.width, 3]]:
        raise ValueError(f"signature {key!r}: expected one input [1, {spec.height}, {spec.width}, 3]")
    return Signature(key, tuple(inputs), explain.find_scores(runner.get_output_details(), len(manifest.labels)))


def _explaining(runners: dict, scoring: Signature, manifest: Manifest) -> Signature | None:
    """The explain signature, its inputs scoring outputs of the same name and shape; or, in models
    exported before it existed, a map that is the scoring signature's only other output; or None."""
    outputs = runners[scoring.key].get_output_details()
    if EXPLAIN_SIGNATURE in runners:
        runner = runners[EXPLAIN_SIGNATURE]
        inputs = explain.shapes(runner.get_input_details())
        given = {name: shape for name, shape in explain.shapes(outputs).items() if name != scoring.output}
        if not inputs or any(given.get(name) != shape for name, shape in inputs.items()):
            raise ValueError(f"the explain signature's inputs {sorted(inputs)} are not feature outputs of the scoring signature {sorted(given)}")
        name, grid = explain.find_map(runner.get_output_details(), len(manifest.labels))
        found = Signature(EXPLAIN_SIGNATURE, tuple(inputs), name)
    elif len(outputs) > 1:  # legacy: the map computed in the scoring graph itself
        name, grid = explain.find_map({n: d for n, d in outputs.items() if n != scoring.output}, len(manifest.labels))
        found = Signature(scoring.key, (), name)
    elif manifest.explanations is not None:
        raise ValueError("the manifest records explanations but the model has no explain signature")
    else:
        return None
    if manifest.explanations is not None and manifest.explanations != grid:
        raise ValueError(f"the manifest's explanation grid {manifest.explanations} does not match the model's {grid}")
    return found


class Predictor:
    """Runs the model. LiteRT interpreters are not thread-safe, so each call borrows one (with its
    signature runners) from a small pool (one per concurrent request, at most ``pool_size``) and
    gives it back. Every request runs the scoring signature; ``explain`` requests then hand its
    feature outputs to the explain signature. Both run once at load: a model that cannot run
    fails there, not on a later request."""

    def __init__(self, manifest: Manifest, model_bytes: bytes, pool_size: int = 2, num_threads: int = 1) -> None:
        verify(manifest, model_bytes)
        self.manifest = manifest
        self._model = model_bytes
        self._num_threads = num_threads
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.Semaphore(max(1, pool_size))
        runners = self._new_runners()
        try:
            keys = [key for key in runners if key != EXPLAIN_SIGNATURE]
            if len(keys) != 1:
                raise ValueError(f"expected one scoring signature (and optionally {EXPLAIN_SIGNATURE!r}), got {sorted(runners)}")
            self.scoring = _scoring(keys[0], runners[keys[0]], manifest)
            self.explaining = _explaining(runners, self.scoring, manifest)
            self._pool.put(runners)
            self._invoke(np.zeros((1, manifest.input.height, manifest.input.width, 3), np.float32), self.explaining is not None)
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable("model_invalid", f"The model does not match its manifest: {exc}.") from exc

    def _new_runners(self) -> dict:
        """A new interpreter's signature runners, by key."""
        try:
            interpreter = Interpreter(model_content=self._model, num_threads=self._num_threads)
            return {key: interpreter.get_signature_runner(key) for key in interpreter.get_signature_list()}
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable("model_invalid", "The model file could not be loaded by the interpreter.") from exc

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """[1, H, W, 3] float32 0-255 -> per-label sigmoid scores."""
        return self._invoke(pixels, False)[0]

    def _invoke(self, pixels: np.ndarray, explain_too: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores, and the [R, C, L] explanation map when asked (the explain signature run on the
        scoring run's feature outputs: the backbones run once)."""
        with self._slots:
            try:
                runners = self._pool.get_nowait()
            except queue.Empty:
                runners = self._new_runners()
            try:
                out = runners[self.scoring.key](**{self.scoring.inputs[0]: pixels})
                if explain_too and self.explaining.key != self.scoring.key:
                    out = runners[self.explaining.key](**{name: out[name] for name in self.explaining.inputs}) | out
            finally:
                self._pool.put(runners)
        return out[self.scoring.output][0], out[self.explaining.output][0] if explain_too else None

    def predict(self, pixels: np.ndarray, explain_too: bool = False) -> Prediction:
        if explain_too and self.explaining is None:
            raise explain.Unavailable()
        scores, maps = self._invoke(pixels, explain_too)
        order = np.argsort(-scores, kind="stable")
        passed = [int(i) for i in order if scores[i] >= self.manifest.thresholds[i]]
        genres = [self.manifest.labels[i] for i in (passed or [int(order[0])])]
        labels = self.manifest.labels
        return Prediction(
            genres,
            {label: round(float(s), 6) for label, s in zip(labels, scores)},
            {label: round(float(t), 4) for label, t in zip(labels, self.manifest.thresholds)},
            explain.heatmaps(maps, labels, genres) if maps is not None else None,
        )


def read_artifact(uri: str, deadline_s: float) -> tuple[dict, bytes]:
    """(manifest dict, model bytes) from a local directory or a gs:// prefix."""
    if uri.startswith("gs://"):
        from postergenre import storage  # imported only when used: keeps cold start light for local models

        return storage.fetch_artifact(uri, deadline_s)
    root = Path(uri)
    try:
        manifest = read_manifest((root / MANIFEST_FILE).read_bytes())
        return manifest, (root / MODEL_FILE).read_bytes()
    except OSError as exc:
        raise ModelUnavailable("model_unreadable", f"Cannot read the model artifact at {uri}: {exc.__class__.__name__}.") from exc


def load(uri: str, pool_size: int = 2, num_threads: int = 1, deadline_s: float = 30.0) -> Predictor:
    manifest_data, model_bytes = read_artifact(uri, deadline_s)
    return Predictor(Manifest.from_dict(manifest_data), model_bytes, pool_size, num_threads)
