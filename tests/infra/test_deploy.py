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
    gcloud_log = tmp_path / "gcloud.log"
    (bin_dir / "gcloud").write_text(
        f"#!/bin/sh\necho \"$@\" >> {gcloud_log}\n[ \"$1 $2\" = 'auth print-identity-token' ] && echo fake-id-token\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)

    state_bucket = f"state-{uuid.uuid4().hex[:8]}"
    emulator.create_bucket(state_bucket)  # what make bootstrap creates

    class Cloud:
        bucket = f"models-{uuid.uuid4().hex[:8]}"
        state = state_bucket
        log = tmp_path / "terraform.log"
        urls: dict[str, str] = {}
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STORAGE_EMULATOR_HOST": emulator.host,
            "FAKE_TF_LOG": str(tmp_path / "terraform.log"),
            "FAKE_TF_STATE": str(tmp_path / "terraform.json"),
        }

        def make(self, target: str, env: dict | None = None, **variables) -> subprocess.CompletedProcess:
            args = {"PROJECT": "p", "REGION": "europe-west1", "BUCKET": self.bucket, "STATE_BUCKET": self.state, "AUTO_APPROVE": "1",
                    **variables}
            env = {**self.env, "FAKE_TF_URLS": json.dumps(self.urls), **(env or {})}
            command = ["make", "-s", target, *(f"{k}={v}" for k, v in args.items())]
            return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

        def applies(self, since: int = 0) -> list[dict]:
            return [c for c in self.calls()[since:] if c["args"][1] == "apply"]

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


MODEL_CHANGE = ["google_cloudfunctions2_function.predict:MODEL_URI"]


def test_deploy_twice_changes_nothing_the_second_time_then_promote_and_rollback(cloud, edit_model, start_server, emulator):
    old = _versioned(edit_model, "rollback-old", LEGACY)
    new = _versioned(edit_model, "rollback-new")
    old_uri, new_uri = (_serve(cloud, start_server, emulator, v) for v in ("rollback-old", "rollback-new"))

    first = cloud.make("deploy", MODEL_DIR=old)  # a fresh project: bucket, publish, function
    assert first.returncode == 0, first.stdout + first.stderr
    assert "smoke test passed" in first.stdout and "model" in first.stdout and "rollback-old" in first.stdout
    promote = cloud.make("promote", MODEL_DIR=new)  # publish the bundled model and serve it, same code
    assert promote.returncode == 0, promote.stdout + promote.stderr
    assert cloud.applies()[-1]["changed"] == MODEL_CHANGE and "rollback-new" in promote.stdout.splitlines()[-1]
    objects, n_calls = cloud.objects(), len(cloud.calls())

    for _ in range(2):  # a deploy of the same code twice: nothing to publish, nothing to change
        before = len(cloud.calls())
        again = cloud.make("deploy", MODEL_DIR=old)  # MODEL_DIR is read by the first deploy and promote only
        assert again.returncode == 0, again.stdout + again.stderr
        assert "unchanged gs://" not in again.stdout and "uploaded" not in again.stdout  # no publish step at all
        assert "smoke test passed" in again.stdout and "rollback-new" in again.stdout
        assert all(c.get("changed", []) == [] for c in cloud.calls()[before:])  # Terraform has nothing to do
    second = cloud.calls()[before:]
    assert [c["args"] for c in second] == [c["args"] for c in cloud.calls()[n_calls : n_calls + len(second)]]  # same commands
    assert cloud.objects() == objects  # nothing written to the bucket

    before = len(cloud.calls())
    rollback = cloud.make("rollback", VERSION="rollback-old")
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert f"verified {old_uri}" in rollback.stdout and "rollback-old" in rollback.stdout.splitlines()[-1]
    calls = cloud.calls()[before:]
    (apply,) = [c for c in calls if c["args"][1] == "apply"]
    assert "-target=google_cloudfunctions2_function.predict" in apply["args"] and f"model_uri={old_uri}" in apply["args"]
    assert apply["changed"] == MODEL_CHANGE  # only the served model changed
    assert cloud.objects() == objects  # the source object was neither replaced nor re-uploaded

    listing = cloud.make("versions")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    # make versions shows the cross-validated means of SUMMARY_KEYS; an old manifest its validation figures
    assert artifact.SUMMARY_KEYS == ("mAP_macro", "roc_auc_macro", "one_error")
    assert [(r[0], r[-4:]) for r in rows] == [
        ("rollback-old", ["0.321", "0.765", "0.400", old_uri]),
        ("rollback-new", ["0.500", "0.510", "0.520", new_uri]),
    ]
    shown = cloud.make("settings")
    assert shown.returncode == 0, shown.stderr
    history = [line.split() for line in shown.stdout.splitlines() if "model change" in line]
    assert [(h[3], h[5], h[6]) for h in history] == [("(none)", old_uri, "(deploy)"), (old_uri, new_uri, "(promote)"),
                                                     (new_uri, old_uri, "(rollback)")]


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
    assert [c["args"][1] for c in calls] == ["init", "apply"]  # only the foundations apply ran, the function was not touched
    assert "-target=google_storage_bucket.models" in calls[1]["args"] and "-target=time_sleep.iam_propagation" in calls[1]["args"]


def test_first_deploy_waits_out_iam_propagation_without_a_retry_by_hand(cloud, model_dir, start_server, emulator):
    """Issue 18, findings 1-2: the grants and their wait are applied before anything is published,
    and a build still refused for the build account's permissions is retried by deploy itself."""
    _serve(cloud, start_server, emulator, "test-1")
    retry_fast = {"FAKE_TF_BUILD_DENIED": "1", "DEPLOY_BUILD_RETRY_WAIT_SECONDS": "0"}
    done = cloud.make("deploy", env=retry_fast, MODEL_DIR=model_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test passed" in done.stdout and "retrying in 0 s (1 of 2)" in done.stderr
    applies = cloud.applies()
    assert [a["rc"] for a in applies] == [0, 1, 0]  # foundations, the refused build, the retry
    assert applies[0]["changed"] == ["google_storage_bucket.models", "time_sleep.iam_propagation"]
    assert "google_cloudfunctions2_function.predict:MODEL_URI" in applies[2]["changed"]


def test_a_build_that_keeps_failing_fails_the_deploy_loudly(cloud, model_dir, start_server, emulator):
    _serve(cloud, start_server, emulator, "test-1")
    env = {"FAKE_TF_BUILD_DENIED": "9", "DEPLOY_BUILD_RETRIES": "1", "DEPLOY_BUILD_RETRY_WAIT_SECONDS": "0"}
    done = cloud.make("deploy", env=env, MODEL_DIR=model_dir)
    assert done.returncode != 0 and "deploy: error: step failed: terraform" in done.stderr
    assert [a["rc"] for a in cloud.applies()] == [0, 1, 1]  # one retry, then it stops
    assert not [c for c in cloud.calls() if c["args"][1:3] == ["-chdir=infra", "output"] and c["args"][-1] == "function_url"]
    bad = cloud.make("deploy", env={"DEPLOY_BUILD_RETRIES": "many"}, MODEL_DIR=model_dir)
    assert bad.returncode != 0 and "DEPLOY_BUILD_RETRIES='many' is not a whole number" in bad.stderr


def test_each_deployment_has_its_own_state(cloud, model_dir, start_server, emulator):
    """Issue 18, finding 5: another bucket, region or function name is another state, never a
    plan that replaces the first deployment."""
    _serve(cloud, start_server, emulator, "test-1")
    assert cloud.make("deploy", MODEL_DIR=model_dir).returncode == 0
    first_bucket = cloud.bucket
    cloud.bucket = f"models-{uuid.uuid4().hex[:8]}"
    _serve(cloud, start_server, emulator, "test-1")
    other = cloud.make("deploy", MODEL_DIR=model_dir, FUNCTION="postergenre-eu", REGION="europe-west4")
    assert other.returncode == 0, other.stdout + other.stderr
    states = [c["state"] for c in cloud.calls() if c["args"][1] == "init"]
    assert states == [f"{cloud.state}/postergenre/state/europe-west1/postergenre/{first_bucket}",
                      f"{cloud.state}/postergenre/state/europe-west4/postergenre-eu/{cloud.bucket}"]
    assert cloud.applies()[-2]["changed"] == ["google_storage_bucket.models", "time_sleep.iam_propagation"]  # created, not moved
    before = len(cloud.calls())
    cloud.bucket = first_bucket
    again = cloud.make("deploy", MODEL_DIR=model_dir)
    assert again.returncode == 0, again.stderr
    assert [a["changed"] for a in cloud.applies(before)] == [[], []]  # the first deployment is as it was


def test_the_alert_address_is_kept_until_changed(cloud, model_dir, start_server, emulator):
    _serve(cloud, start_server, emulator, "test-1")
    channel = "google_monitoring_notification_channel.email"
    assert cloud.make("deploy", MODEL_DIR=model_dir, ALERT_EMAIL="oncall@example.com").returncode == 0
    assert channel in cloud.applies()[-1]["changed"]
    for variables, changed in [({}, False), ({"ALERT_EMAIL": "none"}, True), ({}, False)]:
        before = len(cloud.calls())
        done = cloud.make("deploy", MODEL_DIR=model_dir, **variables)
        assert done.returncode == 0, done.stderr
        assert (channel in cloud.applies(before)[-1]["changed"]) is changed, variables
    refused = cloud.make("deploy", MODEL_DIR=model_dir, ALERT_EMAIL="not-an-address")
    assert refused.returncode != 0 and "alert_email must be an e-mail address" in refused.stderr


def _smoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "infra/smoke.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_smoke_test_fails_loudly_when_the_function_does_not_answer_200(start_server, tmp_path):
    missing = start_server(MODEL_URI=str(tmp_path / "no-model"))  # answers 503 model_unreadable
    done = _smoke(missing.url, "--patience", "0")
    assert done.returncode == 1 and "SMOKE TEST FAILED" in done.stderr and "HTTP 503" in done.stderr
    wrong = start_server()
    done = _smoke(wrong.url, "--expect-version", "other")
    assert done.returncode == 1 and "serves model test-1, expected other" in done.stderr
    done = _smoke(wrong.url, "--expect-version", "test-1")
    assert done.returncode == 0 and "genres" in done.stdout and "test-1" in done.stdout


def test_smoke_test_waits_for_a_fresh_invoker_binding(tmp_path):
    """Issue 18, finding 3: 403 while allUsers' binding propagates, then 200; and 403 that never
    ends still fails loudly when the patience runs out."""
    import http.server
    import threading

    answers = iter([403, 401, 200])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            status = next(answers, 403)
            body = json.dumps({"genres": ["Drama"], "model": {"name": "m", "version": "v1"}} if status == 200 else {"error": {}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        done = _smoke(url, "--expect-version", "v1", "--patience", "30")
        assert done.returncode == 0, done.stderr
        assert done.stderr.count("HTTP 40") == 2 and "smoke test passed" in done.stdout
        never = _smoke(url, "--expect-version", "v1", "--patience", "4")
        assert never.returncode == 1 and "SMOKE TEST FAILED" in never.stderr and "HTTP 403" in never.stderr
        assert "invoker binding" in never.stderr
    finally:
        server.shutdown()


def test_bootstrap_creates_a_versioned_state_bucket_once(cloud, emulator, tmp_path):
    state_bucket = f"state-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        done = cloud.make("bootstrap", STATE_BUCKET=state_bucket)
        assert done.returncode == 0, done.stdout + done.stderr
    assert "created" not in done.stdout and "exists, versioned" in done.stdout
    assert requests.get(f"{emulator.host}/storage/v1/b/{state_bucket}", timeout=5).json().get("versioning", {}).get("enabled") is True
    assert "services enable serviceusage.googleapis.com" in (tmp_path / "gcloud.log").read_text()
    init = next(c["args"] for c in cloud.calls() if c["args"][1] == "init")
    assert "-backend=false" in init  # no deployment yet: providers only (each deploy opens its own state)
