"""Published versions in a bucket, the ops side: publish one, list them, verify one.

Used by train/publish.py (make publish, make deploy), infra/versions.py (make versions, the
verify step of deploy and rollback) and make emulate; the function itself only reads
(storage.py), on the same client and retries.

Publishing writes gs://BUCKET/PREFIX/<version>/ as crc32c-verified uploads. The manifest goes
last, so a version is only complete - and loadable - once both files are there. Immutable twice
over: every object of the version that already exists is compared with the local artifact
(sha256) before anything is uploaded (fake-gcs-server ignores generation preconditions on the
resumable uploads the client uses for large files), and each upload still carries
``if_generation_match=0``, which closes the race with another publisher. It is idempotent: when the
version already holds a model with the same sha256 (a redeploy of the same artifact, or a publish
cut short before the manifest), it completes or keeps what is there; a different model under that
version is refused. Verifying is the function's own load check, run before an apply instead of
after it: the URI is a version directly under gs://BUCKET/PREFIX/, its manifest parses, names
that version, and the model's size and sha256 match it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from postergenre import artifact, storage
from postergenre.errors import ModelUnavailable


class PublishError(RuntimeError):
    """The artifact cannot be published (invalid, conflicting, or storage unreachable)."""


class VersionError(RuntimeError):
    """The target is not a published, intact version of this deployment."""


@dataclass(frozen=True)
class Version:
    version: str
    uri: str
    published: str  # when the manifest was uploaded (the version became loadable)
    metrics: dict[str, float]  # artifact.headline


def use_project(project: str | None) -> None:
    """Make the storage client, when it is created, work in ``project`` (default: the environment's)."""
    if project:
        os.environ["GOOGLE_CLOUD_PROJECT"] = project


def read_local(model_dir: Path) -> artifact.Manifest:
    """The artifact's manifest, after checking the model file against it."""
    try:
        data, model = artifact.read_dir(model_dir)
        manifest = artifact.Manifest.from_dict(data)
        artifact.verify(manifest, model)
    except (OSError, ModelUnavailable) as exc:
        raise PublishError(f"{model_dir} is not a valid model artifact: {exc}") from exc
    return manifest


def _crc32c(path: Path) -> str:
    import google_crc32c

    return base64.b64encode(google_crc32c.Checksum(path.read_bytes()).digest()).decode()


def _already_there(bucket, name: str, manifest: artifact.Manifest, uri: str) -> None:
    """An existing object of this version: fine if it holds the same model, refused otherwise."""
    data = bucket.blob(name).download_as_bytes()
    if name.endswith(artifact.MODEL_FILE):
        same = artifact.sha256_hex(data) == manifest.sha256
    else:
        try:
            same = artifact.parse_manifest(data).sha256 == manifest.sha256
        except ModelUnavailable:
            same = False
    if not same:
        raise PublishError(f"{uri} already exists with a different model: versions are immutable, publish a new version instead.")
    print(f"unchanged {uri}{name.rsplit('/', 1)[-1]} (already published with sha256 {manifest.sha256[:12]}...)")


def _upload(bucket, model_dir: Path, name: str, object_prefix: str, manifest: artifact.Manifest, uri: str) -> None:
    """One file of the version, unless it is there already; checked against the local file."""
    from google.api_core import exceptions as gexc

    path = model_dir / name
    blob = bucket.blob(object_prefix + name)
    try:
        blob.upload_from_filename(
            str(path),
            if_generation_match=0,
            checksum="crc32c",
            content_type="application/json" if name == artifact.MANIFEST_FILE else "application/octet-stream",
        )
    except gexc.PreconditionFailed:  # another publisher created it since the check in publish()
        _already_there(bucket, object_prefix + name, manifest, uri)
        return
    blob.reload()
    if blob.crc32c != _crc32c(path) or blob.size != path.stat().st_size:
        raise PublishError(f"{uri}{name}: stored checksum/size differ from the local file")
    print(f"uploaded {uri}{name} ({blob.size} bytes, crc32c {blob.crc32c})")


def publish(model_dir: Path, bucket_name: str, prefix: str = "models") -> str:
    """Upload (or find already uploaded) and return the MODEL_URI. Refuses an invalid artifact."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    manifest = read_local(model_dir)
    object_prefix = artifact.version_prefix(prefix, manifest.version)
    uri = artifact.version_uri(bucket_name, prefix, manifest.version)
    try:
        bucket = storage.client().bucket(bucket_name)
        if not bucket.exists():
            raise PublishError(f"Bucket {bucket_name} does not exist (Terraform creates it: see infra/README.md).")
        names = (artifact.MODEL_FILE, artifact.MANIFEST_FILE)  # the manifest last
        present = {name for name in names if bucket.blob(object_prefix + name).exists()}
        for name in sorted(present):  # refuses a different model before any upload
            _already_there(bucket, object_prefix + name, manifest, uri)
        for name in names:
            if name not in present:
                _upload(bucket, model_dir, name, object_prefix, manifest, uri)
    except (OSError, auth_exc.GoogleAuthError) as exc:  # no project, no credentials or no network
        raise PublishError(
            f"Cannot reach or authenticate to Cloud Storage ({exc.__class__.__name__}: {exc}). "
            "Pass --project (PROJECT= for make) and run `gcloud auth application-default login`."
        ) from exc
    except gexc.GoogleAPIError as exc:
        raise PublishError(f"Upload to {uri} failed: {exc}") from exc
    return uri


def verify(uri: str, bucket: str, prefix: str = "models", deadline_s: float = 60.0) -> artifact.Manifest:
    """The manifest of ``uri`` after every check; VersionError says which one failed."""
    try:
        uri_bucket, object_prefix = artifact.parse_uri(uri)
    except ValueError as exc:
        raise VersionError(f"{uri!r} is not a gs://bucket/prefix/version/ URI") from exc
    root = artifact.prefix_root(prefix)
    version = object_prefix[len(root):].rstrip("/")
    if uri_bucket != bucket or not object_prefix.startswith(root) or not version or "/" in version:
        raise VersionError(f"{uri} is not a version directly under gs://{bucket}/{root} (this deployment's BUCKET and PREFIX)")
    client_bucket = storage.client().bucket(bucket)

    def read(name: str) -> bytes:
        return storage.with_retries(lambda: client_bucket.blob(object_prefix + name).download_as_bytes(), f"{uri}{name}", deadline_s)

    try:
        manifest = artifact.parse_manifest(read(artifact.MANIFEST_FILE))
        if manifest.version != version:
            raise VersionError(f"{uri}{artifact.MANIFEST_FILE} describes version {manifest.version!r}, not {version!r}")
        artifact.verify(manifest, read(artifact.MODEL_FILE))
    except ModelUnavailable as exc:
        raise VersionError(f"{uri} cannot be served ({exc.code}): {exc.message}") from exc
    return manifest


def list_versions(bucket: str, prefix: str = "models") -> list[Version]:
    """Every version with a manifest, oldest first; unreadable manifests are listed without metrics."""
    from google.api_core import exceptions as gexc

    root = artifact.prefix_root(prefix)
    try:
        blobs = list(storage.client().list_blobs(bucket, prefix=root))
    except gexc.NotFound as exc:
        raise VersionError(f"bucket {bucket} does not exist") from exc
    found = []
    for blob in blobs:
        version, _, name = blob.name[len(root):].partition("/")
        if name != artifact.MANIFEST_FILE:
            continue
        try:
            metrics = artifact.headline(artifact.read_manifest(blob.download_as_bytes()))
        except ModelUnavailable:
            metrics = {}
        published = blob.time_created.strftime("%Y-%m-%d %H:%M:%S UTC") if blob.time_created else "?"
        found.append(Version(version, artifact.version_uri(bucket, prefix, version), published, metrics))
    return sorted(found, key=lambda v: (v.published, v.version))
