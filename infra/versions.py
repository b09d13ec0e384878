"""Published model versions in the bucket: list them (make versions) and verify one before it is served.

Verification is the function's own load check, run before an apply instead of after it: the
URI is a version directly under gs://BUCKET/PREFIX/, its manifest parses, names that version,
and the model's size and sha256 match it (function/artifact.py).
Usage: python infra/versions.py --bucket B [--prefix models] [--project P] [--verify gs://.../<version>/]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from postergenre import (
    artifact,  # the function's artifact contract
    storage,  # the function's storage client policy
)
from postergenre.errors import ModelUnavailable

ROOT = Path(__file__).resolve().parent.parent

HEADLINE = ("mAP_macro", "roc_auc_macro", "one_error")  # manifest metrics.validation keys shown by make versions


class VersionError(RuntimeError):
    """The target is not a published, intact version of this deployment."""


@dataclass(frozen=True)
class Version:
    version: str
    uri: str
    published: str  # when the manifest was uploaded (the version became loadable)
    metrics: dict[str, float]


def _root(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _use_project(project: str | None) -> None:
    if project:
        os.environ["GOOGLE_CLOUD_PROJECT"] = project  # read by the storage client when it is created


def verify(uri: str, bucket: str, prefix: str = "models", deadline_s: float = 60.0) -> artifact.Manifest:
    """The manifest of ``uri`` after every check; VersionError says which one failed."""
    try:
        uri_bucket, object_prefix = storage.parse_uri(uri)
    except ValueError as exc:
        raise VersionError(f"{uri!r} is not a gs://bucket/prefix/version/ URI") from exc
    root = _root(prefix)
    version = object_prefix[len(root):].rstrip("/")
    if uri_bucket != bucket or not object_prefix.startswith(root) or not version or "/" in version:
        raise VersionError(f"{uri} is not a version directly under gs://{bucket}/{root} (this deployment's BUCKET and PREFIX)")
    client_bucket = storage.client().bucket(bucket)
    try:
        raw = storage.with_retries(lambda: client_bucket.blob(object_prefix + artifact.MANIFEST_FILE).download_as_bytes(), f"{uri}{artifact.MANIFEST_FILE}", deadline_s)
        manifest = artifact.parse_manifest(raw)
        if manifest.version != version:
            raise VersionError(f"{uri}{artifact.MANIFEST_FILE} describes version {manifest.version!r}, not {version!r}")
        model = storage.with_retries(lambda: client_bucket.blob(object_prefix + artifact.MODEL_FILE).download_as_bytes(), f"{uri}{artifact.MODEL_FILE}", deadline_s)
        artifact.verify(manifest, model)
    except ModelUnavailable as exc:
        raise VersionError(f"{uri} cannot be served ({exc.code}): {exc.message}") from exc
    return manifest


def list_versions(bucket: str, prefix: str = "models") -> list[Version]:
    """Every version with a manifest, oldest first; unreadable manifests are listed without metrics."""
    from google.api_core import exceptions as gexc

    root = _root(prefix)
    found = []
    try:
        blobs = list(storage.client().list_blobs(bucket, prefix=root))
    except gexc.NotFound as exc:
        raise VersionError(f"bucket {bucket} does not exist") from exc
    for blob in blobs:
        rest = blob.name[len(root):]
        version, _, name = rest.partition("/")
        if name != artifact.MANIFEST_FILE:
            continue
        try:
            data = artifact.read_manifest(blob.download_as_bytes())
            validation = (data.get("metrics") or {}).get("validation") or {}
            metrics = {k: float(validation[k]) for k in HEADLINE if isinstance(validation.get(k), (int, float))}
        except (ModelUnavailable, AttributeError):
            metrics = {}
        published = blob.time_created.strftime("%Y-%m-%d %H:%M:%S UTC") if blob.time_created else "?"
        found.append(Version(version, artifact.version_uri(bucket, prefix, version), published, metrics))
    return sorted(found, key=lambda v: (v.published, v.version))


def table(versions: list[Version]) -> str:
    lines = [f"{'version':<20} {'published':<24} " + " ".join(f"{k:>13}" for k in HEADLINE) + "  MODEL_URI"]
    for v in versions:
        cells = " ".join(f"{v.metrics[k]:>13.3f}" if k in v.metrics else f"{'-':>13}" for k in HEADLINE)
        lines.append(f"{v.version:<20} {v.published:<24} {cells}  {v.uri}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="models")
    parser.add_argument("--project", default=None)
    parser.add_argument("--verify", metavar="MODEL_URI", help="verify this version instead of listing")
    args = parser.parse_args(argv)
    _use_project(args.project)
    try:
        if args.verify:
            manifest = verify(args.verify, args.bucket, args.prefix)
            print(f"verified {args.verify}: {manifest.name} {manifest.version} sha256 {manifest.sha256}")
            return 0
        versions = list_versions(args.bucket, args.prefix)
    except (VersionError, ModelUnavailable) as exc:
        print(f"versions: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # no project / credentials / network: one line, not a traceback
        print(f"versions: error: cannot read gs://{args.bucket}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    if not versions:
        print(f"no published versions under gs://{args.bucket}/{_root(args.prefix)}")
        return 0
    print(table(versions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
