"""RunInference's model handler for the postergenre TFLite artifact.

The handler loads the artifact with the function's own loader (``postergenre.model.load``: a
folder or a ``gs://`` version, size and sha256 checked against the manifest) and answers each
poster with the function's decoder, limits and answer shape (``postergenre.answer.poster``), so a
catalogue run and the HTTP function cannot disagree. Beam's shared handle keeps one loaded model
per worker process for all its threads (the Predictor is thread-safe: a pool of interpreters);
the model is a few MB, so copying it into every process is cheaper than sending each poster's
pixels to one model process (``share_model_across_processes`` stays off).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from postergenre import allocator, answer, budget, errors, imaging
from postergenre.config import Settings
from postergenre.errors import CodedError
from postergenre.model import Predictor, load

_LOG = logging.getLogger(__name__)
# A catalogue run waits for decode memory instead of answering "busy" as a server must.
BUSY_WAIT_S = 3600


def limits(settings: Settings) -> imaging.Limits:
    """The function's decode limits (``main._classify``), from the same environment variables."""
    decode_budget = budget.DecodeBudget(settings.decode_budget_bytes, BUSY_WAIT_S, settings.retry_after_s)
    return imaging.Limits(settings.decode_budget_bytes, settings.decode_cpu_seconds, settings.max_jpeg_scans, decode_budget)


@dataclass
class Classifier:
    """What one worker process loads once and shares between its threads: the predictor and the
    process-wide decode budget (a budget per thread would let threads overcommit memory)."""

    predictor: Predictor
    limits: imaging.Limits

    def answer(self, data: bytes) -> dict:
        """One poster's bytes -> the function's answer for it, or its error object."""
        try:
            pixels = imaging.decode(data, self.predictor.manifest.input, self.limits)
            return answer.poster(self.predictor.predict(pixels), self.predictor.manifest)
        except CodedError as exc:
            return errors.body(exc.code, exc.message)
        except Exception as exc:  # a bug must cost one poster, not the batch (nor duplicate it via the dead letter)
            _LOG.exception("unexpected failure classifying a poster: %s", exc.__class__.__name__)
            return errors.body(errors.INTERNAL_CODE, errors.INTERNAL_MESSAGE)


class PosterModelHandler(ModelHandler[bytes, dict, Classifier]):
    """bytes -> the function's answer dict. Its scoring signature takes one poster ([1, H, W, 3],
    checked by the Predictor), so a Beam batch runs one invoke per poster; batching still pays
    for the per-call overhead of the DoFn, and is capped like a batch request (MAX_BATCH)."""

    def __init__(self, model_uri: str, settings: Settings | None = None, max_batch_size: int | None = None) -> None:
        self._settings = settings or Settings.from_env()
        super().__init__(min_batch_size=1, max_batch_size=max_batch_size or self._settings.max_batch)
        self.model_uri = model_uri

    def load_model(self) -> Classifier:
        allocator.tune_allocator()
        s = self._settings
        predictor = load(self.model_uri, s.interpreters, s.interpreter_threads, s.storage_deadline_s)
        _LOG.info("model %s loaded from %s", predictor.manifest.version, self.model_uri)
        return Classifier(predictor, limits(s))

    def run_inference(
        self, batch: Sequence[bytes], model: Classifier, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        version = model.predictor.manifest.version
        # Built whole before returning: a failure can then only fail the batch before any output.
        return [PredictionResult(None, model.answer(data), version) for data in batch]

    def get_num_bytes(self, batch: Sequence[bytes]) -> int:
        return sum(len(data) for data in batch)

    def get_metrics_namespace(self) -> str:
        return "postergenre"

    def share_model_across_processes(self) -> bool:
        return False
