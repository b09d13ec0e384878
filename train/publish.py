"""python -m train.publish MODEL_DIR BUCKET [PREFIX]: upload an artifact as an immutable version.

Files go to gs://BUCKET/PREFIX/<version>/ with ``if_generation_match=0`` (the object must not
exist: no racy exists-check), and crc32c-verified uploads. The manifest is uploaded last, so
a version is only complete - and loadable - once both files are there. The last line printed
is exactly ``MODEL_URI=gs://BUCKET/PREFIX/<version>/``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import google_crc32c

import train  # noqa: F401  (puts the function on sys.path)
import storage  # the function's storage module: one client policy (emulator or default credentials)
from model import MANIFEST_FILE, MODEL_FILE, Manifest, ModelUnavailable, verify


class PublishError(RuntimeError):
    pass


def _crc32c(path: Path) -> str:
    return base64.b64encode(google_crc32c.Checksum(path.read_bytes()).digest()).decode()


def publish(model_dir: Path, bucket_name: str, prefix: str = "models") -> str:
    """Upload and return the MODEL_URI. Refuses an invalid artifact or an existing version."""
    from google.api_core import exceptions as gexc

    try:
        data = json.loads((model_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
        verify(manifest, (model_dir / MODEL_FILE).read_bytes())
    except (OSError, ValueError, ModelUnavailable) as exc:
        raise PublishError(f"{model_dir} is not a valid model artifact: {exc}") from exc
    version_prefix = "/".join(p for p in (prefix.strip("/"), manifest.version) if p) + "/"
    uri = f"gs://{bucket_name}/{version_prefix}"
    bucket = storage.client().bucket(bucket_name)
    try:
        if not bucket.exists():
            raise PublishError(f"Bucket {bucket_name} does not exist (Terraform creates it: see README).")
        for name in (MODEL_FILE, MANIFEST_FILE):
            path = model_dir / name
            blob = bucket.blob(version_prefix + name)
            blob.upload_from_filename(
                str(path),
                if_generation_match=0,
                checksum="crc32c",
                content_type="application/json" if name == MANIFEST_FILE else "application/octet-stream",
            )
            blob.reload()
            if blob.crc32c != _crc32c(path) or blob.size != path.stat().st_size:
                raise PublishError(f"{uri}{name}: stored checksum/size differ from the local file")
            print(f"uploaded {uri}{name} ({blob.size} bytes, crc32c {blob.crc32c})")
    except gexc.PreconditionFailed as exc:
        raise PublishError(f"{uri} already exists: versions are immutable, publish a new version instead.") from exc
    except gexc.GoogleAPIError as exc:
        raise PublishError(f"Upload to {uri} failed: {exc}") from exc
    return uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.publish", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("bucket")
    parser.add_argument("prefix", nargs="?", default="models")
    args = parser.parse_args(argv)
    try:
        uri = publish(args.model_dir, args.bucket, args.prefix)
    except PublishError as exc:
        print(f"publish: error: {exc}", file=sys.stderr)
        return 1
    print(f"MODEL_URI={uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
