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

import explain
from artifact import MANIFEST_FILE, MODEL_FILE, Manifest, read_manifest, verify
from errors import ModelUnavailable

@dataclass(frozen=True)
class Prediction:
    genres: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    explanations: dict | None = None  # only when asked for, see explain.heatmaps


class Predictor:
    """Runs the model. LiteRT interpreters are not thread-safe, so each call borrows one from a
    small pool (one per concurrent request, at most ``pool_size``) and gives it back."""

    def __init__(self, manifest: Manifest, model_bytes: bytes, pool_size: int = 2, num_threads: int = 1) -> None:
        verify(manifest, model_bytes)
        self.manifest = manifest
        self._model = model_bytes
        self._num_threads = num_threads
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.Semaphore(max(1, pool_size))
        self._pool.put(self._new_interpreter())  # fail now, at load time, if the model is unusable

    def _new_interpreter(self) -> Interpreter:
        try:
            interpreter = Interpreter(model_content=self._model, num_threads=self._num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable("model_invalid", "The model file could not be loaded by the interpreter.") from exc
        spec = self.manifest.input
        (inp,), outs = interpreter.get_input_details(), interpreter.get_output_details()
        try:
            self.outputs = explain.find_outputs(outs, len(self.manifest.labels), self.manifest.explanations)
        except ValueError as exc:
            raise ModelUnavailable("model_invalid", f"Model outputs do not match the manifest: {exc}.") from exc
        if list(inp["shape"]) != [1, spec.height, spec.width, 3]:
            raise ModelUnavailable("model_invalid", f"Model input {inp['shape']} does not match the manifest.")
        return interpreter

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """[1, H, W, 3] float32 0-255 -> per-label sigmoid scores."""
        return self._invoke(pixels, False)[0]

    def _invoke(self, pixels: np.ndarray, explain_too: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores, and the [R, C, L] explanation map only when asked (no copy otherwise)."""
        with self._slots:
            try:
                interpreter = self._pool.get_nowait()
            except queue.Empty:
                interpreter = self._new_interpreter()
            try:
                interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
                interpreter.invoke()
                scores = interpreter.get_tensor(self.outputs.scores)[0].copy()
                return scores, interpreter.get_tensor(self.outputs.explanations)[0].copy() if explain_too else None
            finally:
                self._pool.put(interpreter)

    def predict(self, pixels: np.ndarray, explain_too: bool = False) -> Prediction:
        if explain_too and self.outputs.explanations is None:
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
        import storage  # imported only when used: keeps cold start light for local models

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
