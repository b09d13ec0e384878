"""make deploy / rollback / versions / bootstrap end to end: the real Makefile and scripts, the real
fake-gcs-server, a real function server standing in for the Cloud Functions URL, and a stand-in
`terraform` (fake_terraform.py) first on PATH that records its calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import requests

from infra.emulator import Emulator
from postergenre import artifact
from tests.conftest import ROOT, free_port

FAKE_TERRAFORM = ROOT / "tests" / "infra" / "fake_terraform.py"


@pytest.fixture(scope="module")
def emulator():
    server = Emulator(free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def cloud(tmp_path, emulator):
    """PATH with stand-in terraform and gcloud; helpers to run make and read the call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "terraform").write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_TERRAFORM} \"$@\"\n")
    (bin_dir / "gcloud").write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path / "gcloud.log"}\n[ "$1 $2" = \'auth print-identity-token\' ] && echo fake-id-token\nexit 0\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)

    class Cloud:
        bucket = f"models-{uuid.uuid4().hex[:8]}"
        log = tmp_path / "terraform.log"
        urls: dict[str, str] = {}
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STORAGE_EMULATOR_HOST": emulator.host,
            "FAKE_TF_LOG": str(tmp_path / "terraform.log"),
            "FAKE_TF_STATE": str(tmp_path / "terraform.json"),
        }

        def make(self, target: str, **variables) -> subprocess.CompletedProcess:
            args = {"PROJECT": "p", "REGION": "europe-west1", "BUCKET": self.bucket, "AUTO_APPROVE": "1", **variables}
            env = {**self.env, "FAKE_TF_URLS": json.dumps(self.urls)}
            return subprocess.run(
                ["make", "-s", target, *(f"{k}={v}" for k, v in args.items())],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )

        def calls(self) -> list[dict]:
            return [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []

        def objects(self) -> dict[str, str]:
            items = requests.get(f"{emulator.host}/storage/v1/b/{self.bucket}/o", timeout=5).json().get("items", [])
            return {item["name"]: item["generation"] for item in items}

    return Cloud()


# The figures each version's manifest records: rollback-old as v1 manifests recorded them
# (metrics.validation), rollback-new through today's writer (artifact.metrics_entry).
LEGACY = {"validation": {"mAP_macro": 0.321, "roc_auc_macro": 0.765, "one_error": 0.4}}
CURRENT = artifact.metrics_entry(
    {key: {"mean": 0.5 + i / 100, "sd": 0.01} for i, key in enumerate(artifact.HEADLINE_KEYS)},
    {key: 0.6 for key in artifact.HEADLINE_KEYS},
)


def _versioned(edit_model, version: str, metrics: dict | None = None):
    """The tiny model published under another version name (same model bytes)."""
    return edit_model(version, lambda manifest: manifest.update(version=version, metrics=metrics or CURRENT))


def _serve(cloud, start_server, emulator, version: str) -> str:
    uri = f"gs://{cloud.bucket}/models/{version}/"
    cloud.urls[uri] = start_server(MODEL_URI=uri, STORAGE_EMULATOR_HOST=emulator.host).url
    return uri


def test_deploy_twice_changes_nothing_the_second_time_then_rollback(cloud, edit_model, start_server, emulator):
    old = _versioned(edit_model, "rollback-old", LEGACY)
    new = _versioned(edit_model, "rollback-new")
    old_uri, new_uri = (_serve(cloud, start_server, emulator, v) for v in ("rollback-old", "rollback-new"))

    first = cloud.make("deploy", MODEL_DIR=old)  # a fresh project: bucket, publish, function
    assert first.returncode == 0, first.stdout + first.stderr
    assert "smoke test passed" in first.stdout and "model" in first.stdout and "rollback-old" in first.stdout
    deploy = cloud.make("deploy", MODEL_DIR=new)
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    applies = [c for c in cloud.calls() if c["args"][1] == "apply"]
    assert applies[-1]["changed"] == ["google_cloudfunctions2_function.predict:MODEL_URI"]  # same code, new model
    objects, n_calls = cloud.objects(), len(cloud.calls())

    again = cloud.make("deploy", MODEL_DIR=new)  # the second run of the same deploy
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("unchanged gs://") == 2 and "uploaded" not in again.stdout
    assert "smoke test passed" in again.stdout and "rollback-new" in again.stdout
    second = cloud.calls()[n_calls:]
    assert [c["args"] for c in second] == [c["args"] for c in cloud.calls()[n_calls - len(second) : n_calls]]  # same commands
    assert all(c.get("changed", []) == [] for c in second)  # Terraform has nothing to do
    assert cloud.objects() == objects  # nothing written to the bucket

    before = len(cloud.calls())
    rollback = cloud.make("rollback", VERSION="rollback-old")
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert f"verified {old_uri}" in rollback.stdout and "rollback-old" in rollback.stdout.splitlines()[-1]
    calls = cloud.calls()[before:]
    (apply,) = [c for c in calls if c["args"][1] == "apply"]
    assert "-target=google_cloudfunctions2_function.predict" in apply["args"] and f"model_uri={old_uri}" in apply["args"]
    assert apply["changed"] == ["google_cloudfunctions2_function.predict:MODEL_URI"]  # only the served model changed
    assert cloud.objects() == objects

    listing = cloud.make("versions")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    # make versions shows the cross-validated means of SUMMARY_KEYS; an old manifest its validation figures
    assert artifact.SUMMARY_KEYS == ("mAP_macro", "roc_auc_macro", "one_error")
    assert [(r[0], r[-4:]) for r in rows] == [
        ("rollback-old", ["0.321", "0.765", "0.400", old_uri]),
        ("rollback-new", ["0.500", "0.510", "0.520", new_uri]),
    ]


def test_rollback_refuses_a_bad_target_before_applying(cloud, model_dir, edit_model, start_server, emulator):
    good = _serve(cloud, start_server, emulator, "test-1")
    assert cloud.make("deploy", MODEL_DIR=model_dir).returncode == 0
    broken = _versioned(edit_model, "broken")
    publish = [sys.executable, "-m", "train.publish", str(broken), cloud.bucket]
    assert subprocess.run(publish, cwd=ROOT, env=cloud.env, capture_output=True).returncode == 0
    data = bytearray((broken / "model.tflite").read_bytes())
    data[-50] ^= 0xFF
    emulator.put(cloud.bucket, "models/broken/model.tflite", bytes(data))
    emulator.put(cloud.bucket, "models/garbled/model.tflite", bytes(data))
    emulator.put(cloud.bucket, "models/garbled/manifest.json", b"{not json")

    before = len(cloud.calls())
    for variables, reason in [
        ({"VERSION": "nope"}, "model_not_found"),
        ({"VERSION": "broken"}, "model_integrity"),
        ({"VERSION": "garbled"}, "invalid_manifest"),
        ({"MODEL_URI": "gs://another-bucket/models/test-1/"}, "not a version directly under"),
        ({"MODEL_URI": f"gs://{cloud.bucket}/models/"}, "not a version directly under"),
    ]:
        refused = cloud.make("rollback", **variables)
        assert refused.returncode != 0 and reason in refused.stderr, (variables, refused.stderr)
    assert cloud.calls()[before:] == []  # terraform was never called
    assert requests.post(cloud.urls[good], data=b"x", timeout=10).status_code == 400  # still serving


def test_deploy_refuses_a_model_uri_that_does_not_verify(cloud, model_dir):
    assert cloud.make("deploy", MODEL_DIR=model_dir, MODEL_URI=f"gs://{cloud.bucket}/models/typo/").returncode != 0
    calls = cloud.calls()
    assert [c["args"][1] for c in calls] == ["init", "apply"]  # only the bucket apply ran, the function was not touched
    assert "-target=google_storage_bucket.models" in calls[1]["args"]


def test_smoke_test_fails_loudly_when_the_function_does_not_answer_200(start_server, tmp_path):
    missing = start_server(MODEL_URI=str(tmp_path / "no-model"))  # answers 503 model_unreadable
    done = subprocess.run(
        [sys.executable, "infra/smoke.py", missing.url, "--patience", "0"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "SMOKE TEST FAILED" in done.stderr and "HTTP 503" in done.stderr
    wrong = start_server()
    done = subprocess.run(
        [sys.executable, "infra/smoke.py", wrong.url, "--expect-version", "other"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "serves model test-1, expected other" in done.stderr
    done = subprocess.run(
        [sys.executable, "infra/smoke.py", wrong.url, "--expect-version", "test-1"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "genres" in done.stdout and "test-1" in done.stdout


def test_bootstrap_creates_a_versioned_state_bucket_once(cloud, emulator, tmp_path):
    state_bucket = f"state-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        done = cloud.make("bootstrap", STATE_BUCKET=state_bucket)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "created" not in done.stdout and "exists, versioned" in done.stdout
    assert requests.get(f"{emulator.host}/storage/v1/b/{state_bucket}", timeout=5).json().get("versioning", {}).get("enabled") is True
    assert "services enable serviceusage.googleapis.com" in (tmp_path / "gcloud.log").read_text()
    init = next(c["args"] for c in cloud.calls() if c["args"][1] == "init")
    assert f"-backend-config=bucket={state_bucket}" in init
