"""Issue 26: operating a deployment for months. Each numbered finding of the issue has a test here
that fails on the code before it, and the issue's "Done when" scenario runs end to end: the real
Makefile and scripts, fake-gcs-server as storage, a real function server as the URL, and the
stand-in terraform (fake_terraform.py), which refuses a changed backend without -reconfigure,
answers outputs from the last apply only and remembers no variable between applies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from infra import deploy
from infra.settings import Settings, SettingsError, Store
from postergenre import storage
from tests.conftest import ROOT
from tests.infra.fake_terraform import declared_variables
from tests.infra.terraform_offline import evaluate
from tests.infra.test_deploy import FAKE_TERRAFORM, _serve, _versioned, cloud, emulator  # noqa: F401 - fixtures
from tests.infra.test_infra import VALID, _hcl, _one

FUNCTION = "google_cloudfunctions2_function.predict"


def _full_applies(cloud) -> list[dict]:  # noqa: F811
    return [a for a in cloud.applies() if not any(arg.startswith("-target=") for arg in a["args"])]


def _publish(cloud, edit_model, version: str) -> None:  # noqa: F811
    """Another published version of the tiny model, as `make publish` would put it there."""
    folder = _versioned(edit_model, version)
    done = subprocess.run([sys.executable, "-m", "train.publish", str(folder), cloud.bucket], cwd=ROOT, env=cloud.env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_done_when(cloud, model_dir, edit_model, start_server, emulator):  # noqa: F811
    """The issue's scenario: deploy privately with an alert address, roll back, deploy plainly; then
    a second deployment (another region and bucket) and the first again, each on its own state."""
    first_bucket = cloud.bucket
    _serve(cloud, start_server, emulator, "test-1")
    older = _serve(cloud, start_server, emulator, "older")
    done = cloud.make("deploy", MODEL_DIR=model_dir, PRIVATE="1", ALERT_EMAIL="ops@example.com")
    assert done.returncode == 0, done.stdout + done.stderr
    _publish(cloud, edit_model, "older")
    done = cloud.make("rollback", VERSION="older")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "--private" in next(line for line in done.stdout.splitlines() if "infra/smoke.py" in line)
    done = cloud.make("deploy", MODEL_DIR=model_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  private                  True\n" in done.stdout.split("\n+ ")[0]  # printed before anything is applied
    last = _full_applies(cloud)[-1]
    assert (last["variables"]["allow_unauthenticated"], last["variables"]["alert_email"], last["variables"]["model_uri"]) == (
        "false", "ops@example.com", older)
    assert last["changed"] == []  # nothing re-opened, no model brought back
    # every apply names every variable Terraform declares: none is left to a default
    for apply in cloud.applies():
        assert {apply["args"][i + 1].split("=", 1)[0] for i, a in enumerate(apply["args"]) if a == "-var"} == set(declared_variables())

    cloud.bucket = f"models-{uuid.uuid4().hex[:8]}"
    _serve(cloud, start_server, emulator, "test-1")
    second = cloud.make("deploy", MODEL_DIR=model_dir, REGION="europe-west4")
    assert second.returncode == 0, second.stdout + second.stderr
    assert _full_applies(cloud)[-1]["variables"]["allow_unauthenticated"] == "true"  # its own settings, not the first's
    before = len(cloud.calls())
    cloud.bucket = first_bucket
    again = cloud.make("deploy")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [a["changed"] for a in cloud.applies(before)] == [[], []]
    assert _full_applies(cloud)[-1]["variables"]["model_uri"] == older
    inits = [c for c in cloud.calls() if c["args"][1] == "init"]
    assert len({c["state"] for c in inits}) == 2 and all("-reconfigure" in c["args"] for c in inits)
    assert not [c for c in inits if "-migrate-state" in c["args"] or "migrated" in c]


def test_1_a_plain_deploy_keeps_a_private_function_private(cloud, model_dir, start_server, emulator):  # noqa: F811
    _serve(cloud, start_server, emulator, "test-1")
    assert cloud.make("deploy", MODEL_DIR=model_dir, PRIVATE="1").returncode == 0
    done = cloud.make("deploy", MODEL_DIR=model_dir)
    assert done.returncode == 0, done.stderr
    assert _full_applies(cloud)[-1]["variables"]["allow_unauthenticated"] == "false"
    assert "--private" in next(line for line in done.stdout.splitlines() if "infra/smoke.py" in line)
    assert cloud.make("deploy", PRIVATE="0").returncode == 0  # opened only when asked
    assert _full_applies(cloud)[-1]["changed"] == ["google_cloud_run_service_iam_member.public_invoker"]


def test_2_a_plain_deploy_keeps_the_rolled_back_model(cloud, model_dir, edit_model, start_server, emulator):  # noqa: F811
    _serve(cloud, start_server, emulator, "test-1")
    older = _serve(cloud, start_server, emulator, "older")
    assert cloud.make("deploy", MODEL_DIR=model_dir).returncode == 0
    _publish(cloud, edit_model, "older")
    assert cloud.make("rollback", VERSION="older").returncode == 0
    hotfix = cloud.make("deploy", MODEL_DIR=model_dir)  # a code hotfix after the rollback
    assert hotfix.returncode == 0, hotfix.stderr
    assert _full_applies(cloud)[-1]["variables"]["model_uri"] == older and _full_applies(cloud)[-1]["changed"] == []
    refused = cloud.make("deploy", MODEL_URI=f"gs://{cloud.bucket}/models/test-1/")
    assert refused.returncode != 0 and "a deploy never changes the model" in refused.stderr


def test_3_a_plain_deploy_keeps_the_catalogue_grants(cloud, model_dir, start_server, emulator):  # noqa: F811
    _serve(cloud, start_server, emulator, "test-1")
    assert cloud.make("deploy", MODEL_DIR=model_dir, CATALOGUE_INPUT_BUCKET="posters", CATALOGUE_OUTPUT_BUCKET="results").returncode == 0
    assert cloud.make("deploy").returncode == 0
    last = _full_applies(cloud)[-1]
    assert (last["variables"]["catalogue_input_bucket"], last["variables"]["catalogue_output_bucket"]) == ("posters", "results")
    assert last["changed"] == []


def _fake(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FAKE_TF_STATE": str(tmp_path / "state.json"), "FAKE_TF_LOG": str(tmp_path / "log.jsonl")}
    return subprocess.run([sys.executable, str(FAKE_TERRAFORM), *args], env=env, capture_output=True, text=True, timeout=60)


def test_4_the_stand_in_terraform_refuses_a_changed_backend_without_reconfigure(tmp_path):
    init = ["-chdir=infra", "init", "-input=false", "-backend-config=bucket=s"]
    assert _fake(tmp_path, *init, "-backend-config=prefix=a").returncode == 0
    changed = _fake(tmp_path, *init, "-backend-config=prefix=b")
    assert changed.returncode == 1 and "Error: Backend configuration changed" in changed.stderr
    assert _fake(tmp_path, *init, "-reconfigure", "-backend-config=prefix=b").returncode == 0
    assert _fake(tmp_path, "-chdir=infra", "output", "-raw", "model_uri").returncode == 1  # nothing applied to b
    assert deploy._init(argparse_namespace()).cmd.count("-reconfigure") == 1


def argparse_namespace():
    import argparse

    return argparse.Namespace(project="p", region="r", function_name="f", bucket="b", state_bucket="")


def _dashboard(region: str = "europe-west1") -> dict:
    return json.loads(evaluate({**VALID, "region": region}, {"d": "jsonencode(local.dashboard)"})["d"])


def test_5_no_dashboard_tile_has_a_zero_position():
    tiles = _dashboard()["mosaicLayout"]["tiles"]
    assert [tile.get(key) for tile in tiles for key in ("xPos", "yPos") if key in tile and tile[key] == 0] == []
    places = {(tile.get("xPos", 0), tile.get("yPos", 0)) for tile in tiles}
    assert places == {(0, 0), (24, 0), (0, 16), (24, 16)}  # the same 2x2 layout


def test_6_alerts_and_dashboard_are_scoped_to_the_region():
    filters = [ds["timeSeriesQuery"]["timeSeriesFilter"]["filter"] for tile in _dashboard("us-central1")["mosaicLayout"]["tiles"]
               for ds in tile["widget"]["xyChart"]["dataSets"]]
    assert filters and all('resource.labels.location = "us-central1"' in f for f in filters)
    scoped = evaluate({**VALID, "region": "asia-east1"}, {"f": "local.service_filter"})["f"]
    assert 'resource.labels.location = "asia-east1"' in scoped  # the alert policies' filters start with it


def test_7_the_catalogue_resources_exist_only_with_its_buckets():
    parsed = _hcl("catalogue.tf")
    resources = {(kind, name): body for block in parsed["resource"] for kind, named in block.items() for name, body in named.items()}
    assert {k for k in resources} >= {("google_project_service", "dataflow"), ("google_service_account", "catalogue_worker"),
                                      ("google_project_iam_member", "catalogue_worker")}
    for key, body in resources.items():
        assert "count" in body and ("local.catalogue" in str(body["count"]) or "var.catalogue_" in str(body["count"])), key
    local = _one(parsed["locals"])["catalogue"]
    assert "var.catalogue_input_bucket" in local and "var.catalogue_output_bucket" in local
    moved = {_one(m)["from"].strip("${}") for m in parsed["moved"]}
    assert moved == {"google_service_account.catalogue_worker",
                     "google_project_iam_member.catalogue_worker", "google_storage_bucket_iam_member.catalogue_reads_models"}


# Each wording the provider is known to report for a build refused while grants propagate, quoted
# from its source (infra/README.md lists them); and failures that must not be retried.
REFUSED_BUILDS = {
    "terraform-provider-google issue 20571": "Error code 13, message: Build failed with status: FAILURE and message: failed to "
    "Fetch: failed to download archive gs://gcf-v2-sources-594424405950-us-central1/f/function-source.zip: Access to bucket "
    "gcf-v2-sources-594424405950-us-central1 denied. You must grant Storage Object Viewer permission to sa@p.iam.gserviceaccount.com.",
    "terraform-provider-google issue 21857": "Error: Error waiting to create function: Error waiting for Creating function: "
    "Error code 7, message: Could not build the function due to missing permissions. Error determining source provenance",
    "GoogleCloudPlatform/terraform-genai-knowledge-base issue 245": "FAILURE. Could not build the function due to a missing "
    "permission on the build service account",
}
NOT_PERMISSIONS = ["Error code 3, message: Build failed: pip install failed: No matching distribution found for tflite-runtime",
                   "Error: googleapi: Error 403: Permission denied on resource project p (the deployer's own role)"]


@pytest.mark.parametrize("source", sorted(REFUSED_BUILDS))
def test_8_every_known_permission_wording_is_retried(source):
    assert [w.source for w in deploy.BUILD_PERMISSION_WORDINGS if w.pattern.search(REFUSED_BUILDS[source])] == [source]
    assert source in (ROOT / "infra" / "README.md").read_text()


def test_8_other_build_failures_are_not_retried():
    assert not any(deploy.build_refused_for_permissions(message) for message in NOT_PERMISSIONS)


def test_8_a_deploy_retries_the_missing_permissions_wording(cloud, model_dir, start_server, emulator):  # noqa: F811
    _serve(cloud, start_server, emulator, "test-1")
    env = {"FAKE_TF_BUILD_DENIED": "1", "DEPLOY_BUILD_RETRY_WAIT_SECONDS": "0",
           "FAKE_TF_BUILD_DENIED_MESSAGE": REFUSED_BUILDS["terraform-provider-google issue 21857"]}
    done = cloud.make("deploy", env=env, MODEL_DIR=model_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [a["rc"] for a in cloud.applies()] == [0, 1, 0]


def test_9_terraform_bills_the_project_without_reading_adc():
    provider = _one(_one(_hcl("versions.tf")["provider"])["google"])
    assert provider["user_project_override"] is True and provider["billing_project"] == "${var.project}"
    readme = (ROOT / "infra" / "README.md").read_text()
    assert "issue 20459" in readme and "set-quota-project my-project\n" not in readme


def test_settings_refuse_a_lost_update(emulator, monkeypatch):  # noqa: F811
    """Two maintainers deploy at once: the one who writes second is refused, by the re-read (which
    catches it where the emulator ignores a precondition) and by the generation precondition alone."""
    monkeypatch.setattr(storage, "_client", None)  # a client made for this emulator must not outlive the test (module global)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.host)
    state = f"state-{uuid.uuid4().hex[:8]}"
    emulator.create_bucket(state)
    mine, theirs = Store(state, "d"), Store(state, "d")
    base = Settings(project="p", region="r", function_name="f", bucket="b")
    assert mine.load() is None and theirs.load() is None
    theirs.save(base.changed({"private": "1"}))
    with pytest.raises(SettingsError, match="changed while this command ran"):
        mine.save(base)
    mine.load()
    theirs.save(base.changed({"alert_email": "a@b.c"}))
    monkeypatch.setattr(Store, "check", lambda self: None)  # as if the re-read had raced: the precondition alone
    with pytest.raises(SettingsError, match="changed while this command ran"):
        mine.save(base)
    assert Store(state, "d").load().alert_email == "a@b.c"  # theirs survived


@pytest.mark.parametrize("given, message", [
    ({"memory_mb": "lots"}, "memory_mb='lots' is not a whole number"),
    ({"private": "maybe"}, "private='maybe': give 1 or 0"),
    ({"colour": "blue"}, "unknown setting 'colour'"),
    ({"region": "us-east1"}, "unknown setting 'region'"),  # the deployment itself is not a setting
    ({"alert_email": ""}, "alert_email is empty"),
])
def test_settings_are_parsed_by_type_with_clear_errors(given, message):
    with pytest.raises(SettingsError, match=message):
        Settings(project="p", region="r", function_name="f", bucket="b").changed(given)
    cleared = Settings(project="p", region="r", function_name="f", bucket="b", alert_email="a@b.c").changed({"alert_email": "none"})
    assert cleared.alert_email == ""
    with pytest.raises(SettingsError, match="memory_mb must be int"):
        Settings.from_json(b'{"project": "p", "region": "r", "function_name": "f", "bucket": "b", "memory_mb": "512"}', "x")


def test_every_variable_has_no_default_but_the_bundle_path():
    """The defaults of a new deployment live in one place (infra/settings.py): Terraform has none to fall back on."""
    declared = declared_variables()
    assert {name for name, default in declared.items() if default is not None} == {"source_zip"}
    assert set(Settings(project="p", region="r", function_name="f", bucket="b").tf_vars()) | {"source_zip"} == set(declared)


def test_the_prefix_stays_once_a_model_is_served():
    """The served version lives under the prefix (Terraform's precondition, --verify, rollback and
    promote all require it): a later deploy that names another prefix is refused before anything runs."""
    import argparse

    recorded = Settings(project="p", region="r", function_name="f", bucket="b", model_uri="gs://b/models/v1/")
    args = argparse.Namespace(action="deploy", model_uri="", version="")
    with pytest.raises(SettingsError, match="prefix is chosen by the first deploy"):
        deploy.choose(args, recorded, recorded.changed({"prefix": "other"}))
    assert deploy.choose(args, recorded, recorded.changed({"prefix": "models"})) == (recorded, False)
