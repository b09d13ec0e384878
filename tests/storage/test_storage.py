"""Publish to and load from a real GCS emulator (fake-gcs-server): no storage mocks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from infra.emulator import Emulator
from tests.conftest import ROOT, free_port
from tests.helpers.images import poster


@pytest.fixture(scope="session")
def emulator():
    """One emulator per session on a fixed port (the function caches its storage client)."""
    server = Emulator(free_port()).start()
    mp = pytest.MonkeyPatch()
    mp.setenv("STORAGE_EMULATOR_HOST", server.host)
    yield server
    mp.undo()
    server.stop()


@pytest.fixture
def bucket(emulator) -> str:
    name = f"models-{uuid.uuid4().hex[:8]}"
    emulator.create_bucket(name)
    return name


def _publish(model_dir, bucket: str, prefix: str = "models") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "train.publish", str(model_dir), bucket, prefix]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _version(model_dir) -> str:
    return json.loads((model_dir / "manifest.json").read_text())["version"]


def test_publish_then_predict(model_dir, bucket, make_app):
    done = _publish(model_dir, bucket)
    assert done.returncode == 0, done.stderr
    uri = f"gs://{bucket}/models/{_version(model_dir)}/"
    assert done.stdout.splitlines()[-1] == f"MODEL_URI={uri}"
    app, main = make_app(MODEL_URI=uri)
    body = app.test_client().post("/", data=poster("Green")).get_json()
    assert body["genres"] == ["Green"]
    assert body["model"]["sha256"] == json.loads((model_dir / "manifest.json").read_text())["sha256"]


def _generations(emulator, bucket: str) -> dict[str, str]:
    listing = requests.get(f"{emulator.host}/storage/v1/b/{bucket}/o", timeout=5).json()
    return {item["name"]: item["generation"] for item in listing.get("items", [])}


def test_republishing_the_same_version_is_a_no_op(model_dir, bucket, emulator):
    first = _publish(model_dir, bucket)
    assert first.returncode == 0, first.stderr
    before = _generations(emulator, bucket)
    again = _publish(model_dir, bucket)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    assert again.stdout.count("unchanged ") == 2 and "uploaded" not in again.stdout
    assert _generations(emulator, bucket) == before  # nothing was written


def test_a_different_model_under_a_published_version_is_refused(model_dir, bucket, copy_model):
    assert _publish(model_dir, bucket).returncode == 0
    other = copy_model()
    data = (other / "model.tflite").read_bytes() + b"\0"  # same version name, different bytes
    (other / "model.tflite").write_bytes(data)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    (other / "manifest.json").write_text(json.dumps(manifest))
    again = _publish(other, bucket)
    assert again.returncode == 1
    assert "already exists with a different model" in again.stderr and "MODEL_URI=" not in again.stdout
    assert "Traceback" not in again.stderr


RESUMABLE_ABOVE = 8 * 1024 * 1024  # google-cloud-storage uploads files larger than this in resumable sessions


def _big_variant(model_dir, dest, filler: bytes):
    """The tiny model padded past 8 MiB (the client then uploads it resumably, where fake-gcs-server
    ignores preconditions), with its manifest's size and sha256 updated to match."""
    import shutil

    shutil.copytree(model_dir, dest)
    data = (dest / "model.tflite").read_bytes() + filler * (RESUMABLE_ABOVE // len(filler) + 1)
    (dest / "model.tflite").write_bytes(data)
    manifest = json.loads((dest / "manifest.json").read_text())
    manifest.update(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    (dest / "manifest.json").write_text(json.dumps(manifest))
    return dest


def _object(emulator, bucket: str, name: str) -> bytes:
    url = f"{emulator.host}/storage/v1/b/{bucket}/o/{requests.utils.quote(name, safe='')}"
    return requests.get(url, params={"alt": "media"}, timeout=30).content


def test_a_different_large_model_is_refused_before_anything_is_uploaded(model_dir, bucket, emulator, tmp_path):
    """Issue 18, finding 9: above 8 MiB the emulator would let the upload overwrite model.tflite."""
    first = _big_variant(model_dir, tmp_path / "first", b"\0")
    other = _big_variant(model_dir, tmp_path / "other", b"\1")  # same version name, different bytes
    assert (first / "model.tflite").stat().st_size > RESUMABLE_ABOVE
    done = _publish(first, bucket)
    assert done.returncode == 0, done.stderr
    version = _version(first)
    before = _generations(emulator, bucket)
    refused = _publish(other, bucket)
    assert refused.returncode == 1
    assert "already exists with a different model" in refused.stderr and "MODEL_URI=" not in refused.stdout
    assert "uploaded" not in refused.stdout
    assert _generations(emulator, bucket) == before  # nothing written: no new generation of either object
    assert _object(emulator, bucket, f"models/{version}/model.tflite") == (first / "model.tflite").read_bytes()


def test_the_create_only_precondition_still_guards_the_race(model_dir, bucket, emulator, monkeypatch, copy_model):
    """Another publisher writes the model between the existence check and the upload: the
    upload's if_generation_match=0 refuses it (small file: a multipart upload, which the
    emulator checks), and the other publisher's model is kept."""
    from google.cloud import storage as gcs

    from train import publish

    version = _version(model_dir)
    theirs = b"another publisher's model"
    real_upload = gcs.Blob.upload_from_filename

    def racing_upload(blob, filename, **kwargs):
        assert kwargs.get("if_generation_match") == 0
        if blob.name.endswith("model.tflite"):
            emulator.put(bucket, blob.name, theirs)  # lands after the check, before this upload
        return real_upload(blob, filename, **kwargs)

    monkeypatch.setattr(gcs.Blob, "upload_from_filename", racing_upload)
    with pytest.raises(publish.PublishError, match="already exists with a different model"):
        publish.publish(copy_model(), bucket)
    assert _object(emulator, bucket, f"models/{version}/model.tflite") == theirs
    assert f"models/{version}/manifest.json" not in _generations(emulator, bucket)  # the version never became loadable


def test_a_publish_cut_short_is_completed(model_dir, bucket, emulator, make_app):
    """Only the model made it (the manifest goes last): publishing again adds the manifest."""
    version = _version(model_dir)
    emulator.put(bucket, f"models/{version}/model.tflite", (model_dir / "model.tflite").read_bytes())
    done = _publish(model_dir, bucket)
    assert done.returncode == 0, done.stderr
    assert "unchanged gs://" in done.stdout and f"uploaded gs://{bucket}/models/{version}/manifest.json" in done.stdout
    app, _ = make_app(MODEL_URI=f"gs://{bucket}/models/{version}/")
    assert app.test_client().post("/", data=poster("Red")).get_json()["genres"] == ["Red"]


def test_publish_without_a_project_or_credentials_is_a_clear_error(model_dir, tmp_path):
    """No emulator, no ADC, no gcloud config: one error line, no traceback."""
    env = {k: v for k, v in _env().items() if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "GOOGLE_APPLICATION_CREDENTIALS")}
    env.update(CLOUDSDK_CONFIG=str(tmp_path), HOME=str(tmp_path), GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")
    command = [sys.executable, "-m", "train.publish", str(model_dir), "some-bucket"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "publish: error: Cannot reach or authenticate to Cloud Storage" in done.stderr and "--project" in done.stderr
    assert "Traceback" not in done.stderr


def test_publish_needs_an_existing_bucket(model_dir):
    done = _publish(model_dir, "no-such-bucket-here")
    assert done.returncode != 0 and "does not exist" in done.stderr


def test_tampered_blob_is_never_served(model_dir, bucket, make_app, emulator):
    assert _publish(model_dir, bucket).returncode == 0
    version = _version(model_dir)
    data = bytearray((model_dir / "model.tflite").read_bytes())
    data[-100] ^= 0x55
    emulator.put(bucket, f"models/{version}/model.tflite", bytes(data))
    app, main = make_app(MODEL_URI=f"gs://{bucket}/models/{version}/")
    response = app.test_client().post("/", data=poster("Red"))
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "model_integrity"
    assert "genres" not in response.get_json()


def test_missing_version_is_503(bucket, make_app, capsys):
    app, _ = make_app(MODEL_URI=f"gs://{bucket}/models/nope/", STORAGE_DEADLINE_SECONDS=2)
    client = app.test_client()
    response = client.post("/", data=poster("Red"))
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "model_not_found"
    health = client.get("/healthz")  # public: the error code, never the bucket or object path...
    assert health.get_json()["status"] == "failed" and health.get_json()["error"]["code"] == "model_not_found"
    assert bucket not in health.get_data(as_text=True) and "gs://" not in health.get_data(as_text=True)
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"model load failed"' in line]
    assert logged and f"gs://{bucket}/models/nope/" in logged[0]["detail"]  # ...which the maintainer finds in the logs


def test_storage_outage_at_cold_start_then_recovery(model_dir, start_server):
    """Its own emulator, stopped before the first request; the same server process recovers."""
    own = Emulator(free_port()).start()
    try:
        own.create_bucket("outage")
        env = {"STORAGE_EMULATOR_HOST": own.host}
        publish = [sys.executable, "-m", "train.publish", str(model_dir), "outage"]
        assert subprocess.run(publish, cwd=ROOT, env={**_env(), **env}, capture_output=True).returncode == 0
        uri = f"gs://outage/models/{_version(model_dir)}/"
        server = start_server(MODEL_URI=uri, STORAGE_DEADLINE_SECONDS=2, RETRY_AFTER_SECONDS=3, **env)
        own.stop()
        down = requests.post(server.url, data=poster("Blue"), timeout=30)
        assert down.status_code == 503 and down.headers["Retry-After"] == "3"
        assert down.json()["error"]["code"] == "storage_unavailable"
        own.start()  # in-memory backend: storage comes back empty, the version is re-published
        own.create_bucket("outage")
        assert subprocess.run(publish, cwd=ROOT, env={**_env(), **env}, capture_output=True).returncode == 0
        up = requests.post(server.url, data=poster("Blue"), timeout=30)
        assert up.status_code == 200 and up.json()["genres"] == ["Blue"]
    finally:
        own.stop()


def test_concurrent_cold_requests_download_once(model_dir, bucket, start_server, emulator):
    assert _publish(model_dir, bucket).returncode == 0
    server = start_server(MODEL_URI=f"gs://{bucket}/models/{_version(model_dir)}/", THREADS=16, STORAGE_EMULATOR_HOST=emulator.host)
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: requests.post(server.url, data=poster("Red"), timeout=60).status_code, range(16)))
    assert statuses == [200] * 16
    downloads = [line for line in server.log_lines() if '"model downloaded"' in line]
    assert len(downloads) == 1


def _env() -> dict:
    import os

    return dict(os.environ)
