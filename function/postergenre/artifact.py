"""The model artifact contract: what a published version is and how it is checked.

A version is a directory or a ``gs://BUCKET/PREFIX/<version>/`` prefix holding ``model.tflite``
and ``manifest.json``. Training writes it, publishing uploads it, rollback verifies it and the
function loads it - all through this module, so they cannot disagree on file names, manifest
fields or the checksum. Nothing here touches storage or the interpreter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from postergenre.errors import ModelUnavailable
from postergenre.imaging import InputSpec

MODEL_FILE = "model.tflite"
MANIFEST_FILE = "manifest.json"
# The model's signatures (see explain.py): every request runs the scoring one, which training
# names SCORES_SIGNATURE (image -> [1, L] scores, plus the backbones' feature maps when the model
# explains); only ``?explain=1`` also runs EXPLAIN_SIGNATURE (those feature maps -> [1, R, C, L]
# map). Both share one copy of the weights.
SCORES_SIGNATURE = "scores"
EXPLAIN_SIGNATURE = "explain"


@dataclass(frozen=True)
class Manifest:
    """The training/serving contract (see README): labels, thresholds, input spec, checksum."""

    name: str
    version: str
    sha256: str
    size_bytes: int
    labels: tuple[str, ...]
    thresholds: np.ndarray
    input: InputSpec
    explanations: tuple[int, int] | None = None  # (rows, cols) of the EXPLAIN_SIGNATURE's map, see explain.py

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
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


def version_prefix(prefix: str, version: str) -> str:
    """Object-name prefix of a version: ("models", "v1") -> "models/v1/"; an empty prefix is the bucket root."""
    return "/".join(p for p in (prefix.strip("/"), version) if p) + "/"


def version_uri(bucket: str, prefix: str, version: str) -> str:
    """The MODEL_URI of a published version: gs://bucket/prefix/version/."""
    return f"gs://{bucket}/{version_prefix(prefix, version)}"
