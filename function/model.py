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
from artifact import EXPLAIN_SIGNATURE, MANIFEST_FILE, MODEL_FILE, Manifest, read_manifest, verify
from errors import ModelUnavailable

@dataclass(frozen=True)
class Prediction:
    genres: list[str]
    scores: dict[str, float]
    thresholds: dict[str, float]
    explanations: dict | None = None  # only when asked for, see explain.heatmaps


@dataclass(frozen=True)
class Signature:
    """A model signature the predictor runs: its key, its input names, the output it is run for
    (the scores, or the explanation map) and, for the map, its grid."""

    key: str
    inputs: tuple[str, ...]
    output: str
    grid: tuple[int, int] | None = None


def _scoring(key: str, runner, manifest: Manifest) -> Signature:
    """The scoring signature: one image input as the manifest says, one [1, L] scores output."""
    spec = manifest.input
    inputs = runner.get_input_details()
    if len(inputs) != 1 or [int(d) for d in next(iter(inputs.values()))["shape"]] != [1, spec.height, spec.width, 3]:
        raise ValueError(f"signature {key!r}: expected one input [1, {spec.height}, {spec.width}, 3]")
    return Signature(key, tuple(inputs), explain.find_scores(runner.get_output_details(), len(manifest.labels)))


def _explaining(runner, scoring_runner, manifest: Manifest) -> Signature:
    """The explain signature: its inputs are scoring outputs of the same name and shape; one map output."""
    given = {name: list(detail["shape"]) for name, detail in scoring_runner.get_output_details().items()}
    inputs = runner.get_input_details()
    if not inputs or any(given.get(name) != list(detail["shape"]) for name, detail in inputs.items()):
        raise ValueError(f"the explain signature's inputs {sorted(inputs)} are not outputs of the scoring signature {sorted(given)}")
    output, grid = explain.find_map(runner.get_output_details(), len(manifest.labels))
    if manifest.explanations is not None and manifest.explanations != grid:
        raise ValueError(f"the manifest's explanation grid {manifest.explanations} does not match the model's {grid}")
    return Signature(EXPLAIN_SIGNATURE, tuple(inputs), output, grid)


class Predictor:
    """Runs the model. LiteRT interpreters are not thread-safe, so each call borrows one (with its
    signature runners) from a small pool (one per concurrent request, at most ``pool_size``) and
    gives it back. Every request runs the scoring signature; ``explain`` requests then hand its
    feature outputs to the explain signature, whose tensors are allocated the first time."""

    def __init__(self, manifest: Manifest, model_bytes: bytes, pool_size: int = 2, num_threads: int = 1) -> None:
        verify(manifest, model_bytes)
        self.manifest = manifest
        self._model = model_bytes
        self._num_threads = num_threads
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.Semaphore(max(1, pool_size))
        runners = self._new_runners()  # fail now, at load time, if the model is unusable
        try:
            self.scoring, self.explaining = self._signatures(runners)
            spec = manifest.input  # one run allocates the scoring tensors and proves the model runs
            runners[self.scoring.key](**{self.scoring.inputs[0]: np.zeros((1, spec.height, spec.width, 3), np.float32)})
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable("model_invalid", f"The model does not match its manifest: {exc}.") from exc
        self._pool.put(runners)

    def _new_runners(self) -> dict:
        """A new interpreter's signature runners, by key."""
        try:
            interpreter = Interpreter(model_content=self._model, num_threads=self._num_threads)
            return {key: interpreter.get_signature_runner(key) for key in interpreter.get_signature_list()}
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailable("model_invalid", "The model file could not be loaded by the interpreter.") from exc

    def _signatures(self, runners: dict) -> tuple[Signature, Signature | None]:
        """(scoring, explain or None): the explain signature by its name, the scoring one is the other."""
        keys = [key for key in runners if key != EXPLAIN_SIGNATURE]
        if len(keys) != 1:
            raise ValueError(f"expected one scoring signature (and optionally {EXPLAIN_SIGNATURE!r}), got {sorted(runners)}")
        scoring = _scoring(keys[0], runners[keys[0]], self.manifest)
        if EXPLAIN_SIGNATURE in runners:
            return scoring, _explaining(runners[EXPLAIN_SIGNATURE], runners[keys[0]], self.manifest)
        if self.manifest.explanations is not None:
            raise ValueError("the manifest records explanations but the model has no explain signature")
        return scoring, None

    def scores(self, pixels: np.ndarray) -> np.ndarray:
        """[1, H, W, 3] float32 0-255 -> per-label sigmoid scores."""
        return self._invoke(pixels, False)[0]

    def _invoke(self, pixels: np.ndarray, explain_too: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores, and the [R, C, L] explanation map when asked (the explain signature run on the
        scoring signature's feature outputs: the backbones run once)."""
        with self._slots:
            try:
                runners = self._pool.get_nowait()
            except queue.Empty:
                runners = self._new_runners()
            try:
                out = runners[self.scoring.key](**{self.scoring.inputs[0]: pixels})
                maps = None
                if explain_too:
                    explained = runners[self.explaining.key](**{name: out[name] for name in self.explaining.inputs})
                    maps = explained[self.explaining.output][0]
            finally:
                self._pool.put(runners)
        return out[self.scoring.output][0], maps

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
