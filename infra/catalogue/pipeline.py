"""The catalogue pipeline: match files -> read each (bounded) -> RunInference -> one JSON line per
input, plus a dead-letter output of the inputs that got no answer, and Beam counters.

Every matched file yields exactly one record: read failures and unreadable images become error
records, never exceptions, and a batch that fails inside RunInference as a whole (a model fault)
comes back through its dead-letter output as one error record per poster. Beam's file sinks
write each record once (temporary files, then an atomic rename at the end).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileMetadata
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference

from infra.catalogue.handler import PosterModelHandler
from postergenre import errors, inputs
from postergenre.config import Settings

NAMESPACE = "postergenre"
PREDICTIONS = "predictions"
ERRORS = "errors"  # the dead-letter output
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Plan:
    """What one run does; every field is plain data (it is pickled to the workers)."""

    pattern: str
    output: str  # a folder: local or gs://
    model_uri: str
    model: dict  # the manifest's describe(): name, version, sha256
    labels: tuple[str, ...]
    settings: Settings
    csv: bool = False
    max_batch_size: int | None = None
    num_shards: int = 0  # 0: the runner decides


def pattern_of(path: str) -> str:
    """A folder (local, or gs:// ending in /) -> every file under it; a glob or a file as is.
    Local paths are made absolute, so every worker process reads (and every line names) the same file."""
    if "://" not in path:
        path = os.path.abspath(path) + ("/" if path.endswith("/") or os.path.isdir(path) else "")
    if path.endswith("/") and not any(c in path for c in "*?["):
        return path + "**"
    return path


class ReadPoster(beam.DoFn):
    """FileMetadata -> (path, bytes), or an error record on the UNREADABLE output. At most
    MAX_UPLOAD_BYTES + 1 bytes are read: a larger file gets the function's payload_too_large."""

    def __init__(self, max_bytes: int, model: dict) -> None:
        self.max_bytes = max_bytes
        self.model = model
        self.matched = Metrics.counter(NAMESPACE, "matched")

    def process(self, metadata: FileMetadata) -> Iterator:
        self.matched.inc()
        path = metadata.path
        too_large = inputs.too_large(self.max_bytes)
        if metadata.size_in_bytes > self.max_bytes:
            yield beam.pvalue.TaggedOutput(UNREADABLE, record(path, errors.body(too_large.code, too_large.message), self.model))
            return
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                data = f.read(self.max_bytes + 1)
        except Exception as exc:  # noqa: BLE001 - a vanished or forbidden file is that file's error, not the run's
            unreadable = errors.body("unreadable_file", f"The file could not be read: {exc.__class__.__name__}.")
            yield beam.pvalue.TaggedOutput(UNREADABLE, record(path, unreadable, self.model))
            return
        if len(data) > self.max_bytes:  # grew since it was matched
            yield beam.pvalue.TaggedOutput(UNREADABLE, record(path, errors.body(too_large.code, too_large.message), self.model))
            return
        yield path, data


def record(path: str, inference: dict, model: dict) -> dict:
    """One output line: the input's path, then the function's answer (genres, scores, model,
    thresholds) or its error object (with the model that would have answered)."""
    return {"path": path, **inference} if "error" not in inference else {"path": path, **inference, "model": model}


def from_result(item: tuple[str, PredictionResult], model: dict) -> dict:
    path, result = item
    return record(path, result.inference, model)


def from_failed_batch(failure: tuple, model: dict) -> Iterator[dict]:
    """A batch RunInference could not run at all: one error record per poster in it."""
    batch, (exc_type, _, _) = failure
    for path, _ in batch:
        yield record(path, errors.body("inference_failed", f"The model failed on this poster's batch: {exc_type.__name__}."), model)


class Count(beam.DoFn):
    """Counters: classified, failed, and failed by error code (``error.<code>``)."""

    def __init__(self) -> None:
        self.classified = Metrics.counter(NAMESPACE, "classified")
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, rec: dict) -> Iterator[dict]:
        if "error" in rec:
            self.failed.inc()
            Metrics.counter(NAMESPACE, f"error.{rec['error']['code']}").inc()
        else:
            self.classified.inc()
        yield rec


def csv_line(rec: dict, labels: tuple[str, ...]) -> str:
    """path, model_version, genres (;-separated), error_code, error_message, one score per label."""
    out = io.StringIO()
    scores = rec.get("scores", {})
    err = rec.get("error", {})
    csv.writer(out, lineterminator="").writerow(
        [rec["path"], rec["model"]["version"], ";".join(rec.get("genres", [])), err.get("code", ""), err.get("message", "")]
        + [repr(scores[label]) if label in scores else "" for label in labels]
    )
    return out.getvalue()


def csv_header(labels: tuple[str, ...]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["path", "model_version", "genres", "error_code", "error_message", *labels])
    return out.getvalue()


def output_prefix(plan: Plan, name: str) -> str:
    return FileSystems.join(plan.output, name)


def build(p: beam.Pipeline, plan: Plan) -> None:
    """Add the catalogue transforms to ``p``."""
    model = plan.model
    read = (
        p
        | "Match" >> fileio.MatchFiles(plan.pattern, empty_match_treatment=fileio.EmptyMatchTreatment.DISALLOW)
        | "Spread" >> beam.Reshuffle()  # else every file is read and classified in the one bundle that matched them
        | "Read" >> beam.ParDo(ReadPoster(plan.settings.max_upload_bytes, model)).with_outputs(UNREADABLE, main="posters")
    )
    handler = KeyedModelHandler(PosterModelHandler(plan.model_uri, plan.settings, plan.max_batch_size))
    answered, dead = read.posters | "Classify" >> RunInference(handler).with_exception_handling()
    records = (
        (
            answered | "Answers" >> beam.Map(from_result, model),
            read[UNREADABLE],
            dead.failed_inferences | "FailedBatches" >> beam.FlatMap(from_failed_batch, model),
        )
        | "All" >> beam.Flatten()
        | "Count" >> beam.ParDo(Count())
    )
    lines = records | "Json" >> beam.Map(lambda rec: json.dumps(rec, separators=(",", ":")))
    lines | "WritePredictions" >> beam.io.WriteToText(output_prefix(plan, PREDICTIONS), ".jsonl", num_shards=plan.num_shards)
    (
        records
        | "DeadLetter" >> beam.Filter(lambda rec: "error" in rec)
        | "ErrorJson" >> beam.Map(lambda rec: json.dumps(rec, separators=(",", ":")))
        | "WriteErrors" >> beam.io.WriteToText(output_prefix(plan, ERRORS), ".jsonl", num_shards=plan.num_shards)
    )
    if plan.csv:
        (
            records
            | "Csv" >> beam.Map(csv_line, plan.labels)
            | "WriteCsv"
            >> beam.io.WriteToText(output_prefix(plan, PREDICTIONS), ".csv", num_shards=plan.num_shards, header=csv_header(plan.labels))
        )
