"""The model artifact schema: what a published version is, how it is written and how it is read.

A version is a directory or a ``gs://BUCKET/PREFIX/<version>/`` prefix holding ``model.tflite``
and ``manifest.json``. Training writes it (``new_manifest``, ``metrics_entry``, ``write``),
publishing uploads it, rollback verifies it, ``make versions`` lists it (``headline``) and the
function loads it (``Manifest``) - all through this module, so they cannot disagree on file
names, manifest fields, metric names or the checksum. Nothing here touches storage, the
interpreter or Pillow (infra/deploy.py imports it).

Manifest fields (JSON object):

* read by serving: ``name``, ``version`` (a name without "/"), ``sha256`` and ``size_bytes`` of
  model.tflite, ``labels`` (genre order of the model's outputs), ``thresholds`` (label -> 0..1),
  ``input`` (``InputSpec``: height, width, resize; the rest describes the pixels for people),
  optional ``explanations`` (the grid of the explain signature's map: rows, cols, method);
* written by training for people and ``make versions``: ``created``, ``label_rule``,
  ``dropped_labels``, ``training`` (architecture, data counts, options, timings), ``metrics``
  (``METRIC_GROUPS`` x ``HEADLINE``), ``parity`` (Keras vs TFLite agreement).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from postergenre.errors import ModelUnavailable

MODEL_FILE = "model.tflite"
MANIFEST_FILE = "manifest.json"
# The model's signatures (see explain.py): every request runs the scoring one, which training
# names SCORES_SIGNATURE (image -> [1, L] scores, plus the backbones' feature maps when the model
# explains); only ``?explain=1`` also runs EXPLAIN_SIGNATURE (those feature maps -> [1, R, C, L]
# map). Both share one copy of the weights.
SCORES_SIGNATURE = "scores"
EXPLAIN_SIGNATURE = "explain"


@dataclass(frozen=True)
class Metric:
    """A headline figure: its manifest key, its title in tables, what it measures."""

    key: str
    title: str
    meaning: str
    higher_is_better: bool = True


# The figures a version is judged by, computed by train/metrics.py on out-of-fold scores.
HEADLINE = (
    Metric("mAP_macro", "mAP", "average precision of each genre's ranking of the posters, mean over genres"),
    Metric("roc_auc_macro", "ROC-AUC", "area under each genre's ROC curve, mean over genres"),
    Metric("one_error", "one-error", "share of posters whose top-scored genre is not one of theirs", higher_is_better=False),
    Metric("f1_macro", "F1 macro", "F1 of the thresholded decisions per genre, mean over genres"),
    Metric("f1_micro", "F1 micro", "F1 of the thresholded decisions over all (poster, genre) pairs"),
    Metric("precision_at_3", "precision@3", "share of the three top-scored genres that are the poster's"),
)
HEADLINE_KEYS = tuple(metric.key for metric in HEADLINE)
TITLES = {metric.key: metric.title for metric in HEADLINE}
# The threshold-free ranking figures: what `make versions` shows for each version.
SUMMARY_KEYS = ("mAP_macro", "roc_auc_macro", "one_error")
# ``metrics`` holds one dict of HEADLINE keys per group: the mean and sample sd over the k folds
# of the cross-validation, and the figures of all out-of-fold scores pooled.
CV_MEAN, CV_SD, POOLED = "cross_validation_mean", "cross_validation_sd", "out_of_fold_pooled"
METRIC_GROUPS = (CV_MEAN, CV_SD, POOLED)
# v1 manifests (one validation split) kept their figures here; they stay rollback targets.
LEGACY_VALIDATION = "validation"
METRIC_DIGITS = 4


@dataclass(frozen=True)
class InputSpec:
    """Model input as recorded in the manifest: RGB float32 0-255, shape [1, height, width, 3]."""

    height: int
    width: int
    resize: str = "bilinear"

    @classmethod
    def from_manifest(cls, spec: Mapping) -> InputSpec:
        return cls(int(spec["height"]), int(spec["width"]), str(spec.get("resize", "bilinear")))

    def to_manifest(self) -> dict:
        return {
            "height": self.height,
            "width": self.width,
            "channels": 3,
            "dtype": "float32",
            "layout": "NHWC",
            "range": [0, 255],
            "resize": self.resize,
            "fit": "stretch",
            "color": "RGB; alpha composited over white; EXIF orientation applied; first frame",
            "normalization": "inside the model",
        }


@dataclass(frozen=True)
class Manifest:
    """What serving reads of a manifest: labels, thresholds, input spec, checksum."""

    name: str
    version: str
    sha256: str
    size_bytes: int
    labels: tuple[str, ...]
    thresholds: np.ndarray
    input: InputSpec
    explanations: tuple[int, int] | None = None  # (rows, cols) of the EXPLAIN_SIGNATURE's map, see explain.py

    @classmethod
    def from_dict(cls, data: Mapping) -> Manifest:
        try:
            labels = tuple(str(label) for label in data["labels"])
            thresholds = np.array([float(data["thresholds"][label]) for label in labels], dtype=np.float32)
            manifest = cls(
                name=str(data["name"]),
                version=str(data["version"]),
                sha256=str(data["sha256"]).lower(),
                size_bytes=int(data["size_bytes"]),
                labels=labels,
                thresholds=thresholds,
                input=InputSpec.from_manifest(data["input"]),
                explanations=_grid(data.get("explanations")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable("invalid_manifest", f"The model manifest is invalid: {exc!r}") from exc
        if not labels or len(set(labels)) != len(labels) or not np.all((thresholds >= 0) & (thresholds <= 1)):
            raise ModelUnavailable("invalid_manifest", "The model manifest has bad labels or thresholds.")
        if not manifest.version or "/" in manifest.version:
            raise ModelUnavailable("invalid_manifest", "The model manifest's version must be a non-empty name without '/'.")
        return manifest

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def _grid(entry: object) -> tuple[int, int] | None:
    """The optional ``"explanations": {"rows": R, "cols": C, ...}`` entry -> (R, C); ValueError when malformed."""
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise ValueError("explanations must be an object")
    rows, cols = int(entry["rows"]), int(entry["cols"])
    if rows < 1 or cols < 1:
        raise ValueError("explanations rows and cols must be positive")
    return rows, cols


# --- writing (training) ---


def new_manifest(name: str, version: str | None, labels: Sequence[str], thresholds: Sequence[float], spec: InputSpec) -> dict:
    """The fields every artifact has before its model bytes exist; ``version`` defaults to the UTC time."""
    created = datetime.now(timezone.utc)
    return {
        "name": name,
        "version": version or created.strftime("%Y%m%d-%H%M%S"),
        "created": created.isoformat(timespec="seconds"),
        "labels": list(labels),
        "thresholds": {label: round(float(t), 4) for label, t in zip(labels, thresholds, strict=True)},
        "input": spec.to_manifest(),
    }


def metrics_entry(folds: Mapping[str, Mapping[str, float]], pooled: Mapping[str, float]) -> dict:
    """The manifest's ``metrics`` from cross-validation figures: ``folds`` {key: {"mean", "sd"}},
    ``pooled`` {key: value} (train/crossval.evaluate's "folds" and "pooled")."""
    return {
        CV_MEAN: {key: round(folds[key]["mean"], METRIC_DIGITS) for key in HEADLINE_KEYS},
        CV_SD: {key: round(folds[key]["sd"], METRIC_DIGITS) for key in HEADLINE_KEYS},
        POOLED: {key: round(pooled[key], METRIC_DIGITS) for key in HEADLINE_KEYS},
    }


def sealed(manifest: Mapping, model_bytes: bytes) -> dict:
    """``manifest`` with the checksum and size of ``model_bytes``: the manifest of that model."""
    return {**manifest, "sha256": sha256_hex(model_bytes), "size_bytes": len(model_bytes)}


def write(out: Path, model_bytes: bytes, manifest: Mapping) -> dict:
    """Write model.tflite + manifest.json into ``out``; returns the sealed manifest written."""
    out.mkdir(parents=True, exist_ok=True)
    data = sealed(manifest, model_bytes)
    (out / MODEL_FILE).write_bytes(model_bytes)
    (out / MANIFEST_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


# --- reading (serving, publish, verify, make versions) ---


def read_manifest(raw: bytes | str) -> dict:
    """Manifest bytes -> dict; a file that is not a JSON object is an invalid manifest."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ModelUnavailable("invalid_manifest", "The model manifest is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise ModelUnavailable("invalid_manifest", "The model manifest is not a JSON object.")
    return data


def parse_manifest(raw: bytes | str) -> Manifest:
    return Manifest.from_dict(read_manifest(raw))


def read_dir(root: Path) -> tuple[dict, bytes]:
    """(manifest dict, model bytes) of an artifact directory; OSError when a file is missing."""
    return read_manifest((root / MANIFEST_FILE).read_bytes()), (root / MODEL_FILE).read_bytes()


def headline(data: Mapping) -> dict[str, float]:
    """A manifest's cross-validated mean of each HEADLINE figure it has (v1 manifests: their
    validation-split figures); {} when it records none."""
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    figures = metrics.get(CV_MEAN, metrics.get(LEGACY_VALIDATION))
    if not isinstance(figures, dict):
        return {}
    return {key: float(figures[key]) for key in HEADLINE_KEYS if isinstance(figures.get(key), (int, float))}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(manifest: Manifest, model_bytes: bytes) -> None:
    """Refuse a truncated or tampered model: size and sha256 must match the manifest."""
    digest = sha256_hex(model_bytes)
    if len(model_bytes) != manifest.size_bytes or digest != manifest.sha256:
        raise ModelUnavailable(
            "model_integrity",
            f"Model file does not match its manifest (size {len(model_bytes)} vs {manifest.size_bytes}, sha256 {digest[:12]}...).",
        )


# --- where versions live ---


def prefix_root(prefix: str) -> str:
    """An object-name prefix as a folder: "/models/" or "models" -> "models/"; "" is the bucket root."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def version_prefix(prefix: str, version: str) -> str:
    """Object-name prefix of a version: ("models", "v1") -> "models/v1/"."""
    return f"{prefix_root(prefix)}{version}/"


def version_uri(bucket: str, prefix: str, version: str) -> str:
    """The MODEL_URI of a published version: gs://bucket/prefix/version/."""
    return f"gs://{bucket}/{version_prefix(prefix, version)}"


def parse_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/some/prefix/ -> ("bucket", "some/prefix/"); ValueError for anything else."""
    if not uri.startswith("gs://") or len(uri) <= 5:
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix_root(prefix)
