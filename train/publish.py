"""python -m train.publish MODEL_DIR BUCKET [PREFIX] [--project P]: upload an artifact as an immutable version.

Files go to gs://BUCKET/PREFIX/<version>/ as crc32c-verified uploads. The manifest is uploaded
last, so a version is only complete - and loadable - once both files are there.

Immutability, twice over: before anything is uploaded, every object of the version that
already exists is compared with the local artifact (sha256) and a different model is refused
there, so nothing is written. fake-gcs-server (make emulate, the tests) ignores generation
preconditions on resumable uploads, which the client uses above 8 MiB, so the check must not
rely on them. Each upload still carries ``if_generation_match=0`` (create only): it closes the
race with another publisher between that check and the upload on real Cloud Storage.

Publishing is idempotent: when the version already holds a model with the same sha256 (a
redeploy of the same artifact, or a publish cut short before the manifest), it completes or
keeps what is there and returns the same URI; a different model under that version is refused.
The last line printed is exactly ``MODEL_URI=gs://BUCKET/PREFIX/<version>/``.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

import google_crc32c

from postergenre import (
    artifact,
    storage,  # the function's storage module: one client policy (emulator or default credentials)
)
from postergenre.errors import ModelUnavailable


class PublishError(RuntimeError):
    pass


def _crc32c(path: Path) -> str:
    return base64.b64encode(google_crc32c.Checksum(path.read_bytes()).digest()).decode()


def read_local(model_dir: Path) -> artifact.Manifest:
    """The artifact's manifest, after checking the model file against it."""
    try:
        manifest = artifact.parse_manifest((model_dir / artifact.MANIFEST_FILE).read_bytes())
        artifact.verify(manifest, (model_dir / artifact.MODEL_FILE).read_bytes())
    except (OSError, ModelUnavailable) as exc:
        raise PublishError(f"{model_dir} is not a valid model artifact: {exc}") from exc
    return manifest


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


def publish(model_dir: Path, bucket_name: str, prefix: str = "models", project: str | None = None) -> str:
    """Upload (or find already uploaded) and return the MODEL_URI. Refuses an invalid artifact."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    manifest = read_local(model_dir)
    version_prefix = artifact.version_prefix(prefix, manifest.version)
    uri = f"gs://{bucket_name}/{version_prefix}"
    if project:
        os.environ["GOOGLE_CLOUD_PROJECT"] = project  # read by the client when it is created
    try:
        bucket = storage.client().bucket(bucket_name)
        if not bucket.exists():
            raise PublishError(f"Bucket {bucket_name} does not exist (Terraform creates it: see infra/README.md).")
        names = (artifact.MODEL_FILE, artifact.MANIFEST_FILE)
        present = {name for name in names if bucket.blob(version_prefix + name).exists()}
        for name in sorted(present):  # refuses a different model before any upload
            _already_there(bucket, version_prefix + name, manifest, uri)
        for name in names:
            if name in present:
                continue
            path = model_dir / name
            blob = bucket.blob(version_prefix + name)
            try:
                blob.upload_from_filename(
                    str(path),
                    if_generation_match=0,
                    checksum="crc32c",
                    content_type="application/json" if name == artifact.MANIFEST_FILE else "application/octet-stream",
                )
            except gexc.PreconditionFailed:  # another publisher created it since the check above
                _already_there(bucket, version_prefix + name, manifest, uri)
                continue
            blob.reload()
            if blob.crc32c != _crc32c(path) or blob.size != path.stat().st_size:
                raise PublishError(f"{uri}{name}: stored checksum/size differ from the local file")
            print(f"uploaded {uri}{name} ({blob.size} bytes, crc32c {blob.crc32c})")
    except (OSError, auth_exc.GoogleAuthError) as exc:  # no project, no credentials or no network
        raise PublishError(f"Cannot reach or authenticate to Cloud Storage ({exc.__class__.__name__}: {exc}). "
                           "Pass --project (PROJECT= for make) and run `gcloud auth application-default login`.") from exc
    except gexc.GoogleAPIError as exc:
        raise PublishError(f"Upload to {uri} failed: {exc}") from exc
    return uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.publish", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("bucket")
    parser.add_argument("prefix", nargs="?", default="models")
    parser.add_argument("--project", default=None, help="Google Cloud project (default: GOOGLE_CLOUD_PROJECT or gcloud's)")
    args = parser.parse_args(argv)
    try:
        uri = publish(args.model_dir, args.bucket, args.prefix, args.project)
    except PublishError as exc:
        print(f"publish: error: {exc}", file=sys.stderr)
        return 1
    print(f"MODEL_URI={uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
