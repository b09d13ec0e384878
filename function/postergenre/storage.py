"""Model artifacts in Cloud Storage: one lazily created client, retried reads within a deadline.

On Cloud Functions the instance's temp dir is an in-memory filesystem, so the downloaded model
counts against the instance's memory (as much as the model file: manifest size_bytes, see function/README.md).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from postergenre import logs
from postergenre.artifact import MANIFEST_FILE, MODEL_FILE, read_manifest
from postergenre.errors import ModelUnavailable

T = TypeVar("T")
_client = None
_client_lock = threading.Lock()
CACHE_DIR = Path(tempfile.gettempdir()) / "postergenre-models"


def parse_uri(uri: str) -> tuple[str, str]:
    """gs://bucket/some/prefix/ -> ("bucket", "some/prefix/")."""
    if not uri.startswith("gs://") or len(uri) <= 5:
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def client():
    """The storage client, created once. STORAGE_EMULATOR_HOST selects an emulator (anonymous)."""
    global _client
    with _client_lock:
        if _client is None:
            from google.cloud import storage as gcs

            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local-emulator")
                _client = gcs.Client(project=project, credentials=AnonymousCredentials())
            else:
                _client = gcs.Client()
        return _client


def with_retries(action: Callable[[], T], what: str, deadline_s: float) -> T:
    """Run ``action``, retrying transient failures with capped exponential backoff until the deadline."""
    import requests
    from google.api_core import exceptions as gexc
    from google.resumable_media import DataCorruption

    end = time.monotonic() + deadline_s
    delay = 0.2
    attempt = 0
    while True:
        attempt += 1
        try:
            return action()
        except gexc.NotFound as exc:
            raise ModelUnavailable("model_not_found", f"{what} does not exist.") from exc
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            raise ModelUnavailable("storage_forbidden", f"No permission to read {what}.") from exc
        except DataCorruption as exc:
            raise ModelUnavailable("model_integrity", f"{what} failed its checksum during download.") from exc
        except (gexc.GoogleAPIError, requests.RequestException, OSError) as exc:
            if time.monotonic() + delay > end:
                raise ModelUnavailable("storage_unavailable", f"Could not read {what} after {attempt} attempts.") from exc
            logs.emit("WARNING", "storage retry", what=what, attempt=attempt, exception=exc.__class__.__name__)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def fetch_artifact(uri: str, deadline_s: float) -> tuple[dict, bytes]:
    """Read the manifest, download the model into the temp dir (once), return both."""
    try:
        bucket_name, prefix = parse_uri(uri)
    except ValueError as exc:
        raise ModelUnavailable("invalid_model_uri", str(exc)) from exc
    end = time.monotonic() + deadline_s
    remaining = lambda: max(0.5, end - time.monotonic())  # noqa: E731
    bucket = client().bucket(bucket_name)
    timeout = (3.0, 10.0)
    raw = with_retries(lambda: bucket.blob(prefix + MANIFEST_FILE).download_as_bytes(retry=None, timeout=timeout), f"{uri}{MANIFEST_FILE}", remaining())
    manifest = read_manifest(raw)
    sha = str(manifest.get("sha256"))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"{hashlib.sha256(uri.encode()).hexdigest()[:16]}-{MODEL_FILE}"
    partial = path.with_suffix(".partial")
    started = time.monotonic()
    with_retries(
        lambda: bucket.blob(prefix + MODEL_FILE).download_to_filename(str(partial), retry=None, timeout=timeout, checksum="crc32c"),
        f"{uri}{MODEL_FILE}",
        remaining(),
    )
    os.replace(partial, path)
    data = path.read_bytes()
    logs.emit("INFO", "model downloaded", uri=uri, bytes=len(data), sha256=sha, seconds=round(time.monotonic() - started, 3))
    return manifest, data
