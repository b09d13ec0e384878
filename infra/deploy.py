"""make deploy / make rollback / make bootstrap: the steps, in order, each one a command.

deploy:    bundle -> terraform init (GCS state of this deployment) -> apply the foundations
           (APIs, bucket, service accounts, their grants and the wait for those grants to
           propagate) -> publish (a no-op when the version is already there) -> verify the
           version -> apply everything (a build that fails on the build account's permissions is
           retried: grants can take minutes to reach Cloud Build) -> smoke test on the function's URL.
rollback:  verify the target version -> terraform init -> fetch the source bundle that is
           deployed now into the path deploy uses -> apply the function only, with that same
           code and the new MODEL_URI -> smoke test (expects the target version).
bootstrap: enable the APIs Terraform itself needs -> create the versioned state bucket ->
           terraform init (providers only) -> lock the providers for every maintainer's platform.

A deployment is (project, region, function name, bucket): its Terraform state lives under its
own prefix of the state bucket, so two deployments in one project never share a state.
Every run is repeatable: a second `make deploy` with nothing changed publishes nothing and
Terraform finds nothing to change. With --dry-run the commands are printed and nothing runs.
Environment: DEPLOY_BUILD_RETRIES (default 2), DEPLOY_BUILD_RETRY_WAIT_SECONDS (default 120).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = "build/function-source.zip"
STATE_ROOT = "postergenre/state"
# Terraform itself calls these before it can enable anything (google_project_service).
BOOTSTRAP_APIS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "storage.googleapis.com")
LOCK_PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64")
# What the first apply creates before anything is published: the bucket, and the wait that
# depends on every IAM grant (main.tf), which pulls in the APIs, accounts and grants.
FOUNDATIONS = ("google_storage_bucket.models", "time_sleep.iam_propagation")
# A build refused for the build account's permissions: the grants had not reached Cloud Build yet
# (provider issue 20571). Terraform reports it as "Build failed ... denied ... permission".
BUILD_PERMISSION_ERROR = re.compile(r"Build failed.*(denied|permission)", re.IGNORECASE | re.DOTALL)
KEEP_ALERT_EMAIL = "{ALERT_EMAIL}"  # filled from the deployed state when ALERT_EMAIL= is not given
NO_ALERT_EMAIL = "none"


@dataclass
class Step:
    cmd: list[str]
    capture: str | None = None  # name of a {PLACEHOLDER} filled from this step's last stdout line
    optional: bool = False  # a failed capture leaves the placeholder empty instead of stopping
    retry_on: re.Pattern | None = None  # output that makes a failed step worth running again


def _env_int(name: str, default: int, low: int, high: int) -> int:
    """An integer setting from the environment; a bad value is an error, not a silent default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"deploy: error: {name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SystemExit(f"deploy: error: {name}={value} is outside {low}..{high}")
    return value


def _state_bucket(args: argparse.Namespace) -> str:
    return args.state_bucket or f"{args.project}-tfstate"


def state_prefix(args: argparse.Namespace) -> str:
    """The state's prefix in the state bucket: one per deployment (region, function name, bucket)."""
    return f"{STATE_ROOT}/{args.region}/{args.function_name}/{args.bucket}"


def _tf_vars(args: argparse.Namespace, model_uri: str) -> list[str]:
    pairs = {"project": args.project, "region": args.region, "bucket": args.bucket, "prefix": args.prefix,
             "function_name": args.function_name, "model_uri": model_uri, "source_zip": f"../{BUNDLE}",
             "alert_email": KEEP_ALERT_EMAIL if not args.alert_email else "" if args.alert_email == NO_ALERT_EMAIL else args.alert_email}
    if args.private:
        pairs["allow_unauthenticated"] = "false"
    return [part for key, value in pairs.items() for part in ("-var", f"{key}={value}")]


def _init(args: argparse.Namespace) -> list[Step]:
    """terraform init against this deployment's state, then (unless ALERT_EMAIL= was given) the
    alert address it has, so that a deploy without ALERT_EMAIL= keeps the notification channel."""
    backend = [f"-backend-config=bucket={_state_bucket(args)}", f"-backend-config=prefix={state_prefix(args)}"]
    steps = [Step(["terraform", "-chdir=infra", "init", "-input=false", *backend])]
    if not args.alert_email:
        steps.append(Step(["terraform", "-chdir=infra", "output", "-raw", "alert_email"], capture="ALERT_EMAIL", optional=True))
    return steps


def _apply(args: argparse.Namespace, *extra: str) -> list[str]:
    return ["terraform", "-chdir=infra", "apply", "-input=false", *(["-auto-approve"] if args.auto_approve else []), *extra]


def _verify(args: argparse.Namespace, uri: str) -> Step:
    where = ["--project", args.project, "--bucket", args.bucket, "--prefix", args.prefix]
    return Step([args.python, "infra/versions.py", *where, "--verify", uri])


def _smoke(args: argparse.Namespace, version: str) -> list[Step]:
    return [
        Step(["terraform", "-chdir=infra", "output", "-raw", "function_url"], capture="URL"),
        Step([args.python, "infra/smoke.py", "{URL}", "--expect-version", version, *(["--private"] if args.private else [])]),
    ]


def target_version(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def deploy_plan(args: argparse.Namespace) -> list[Step]:
    if args.model_uri:
        uri = args.model_uri
    else:  # the version is known before the publish: it is in the artifact's manifest
        from postergenre import artifact
        from postergenre.errors import ModelUnavailable

        try:
            manifest = artifact.parse_manifest((ROOT / args.model_dir / artifact.MANIFEST_FILE).read_bytes())
        except (OSError, ModelUnavailable) as exc:
            raise SystemExit(f"deploy: error: {args.model_dir} is not a model artifact: {exc}") from exc
        uri = artifact.version_uri(args.bucket, args.prefix, manifest.version)
    steps = [
        Step([args.python, "infra/bundle.py", BUNDLE]),
        *_init(args),
        Step(_apply(args, *(f"-target={t}" for t in FOUNDATIONS), *_tf_vars(args, uri))),
    ]
    if not args.model_uri:
        steps.append(Step([args.python, "-m", "train.publish", args.model_dir, args.bucket, args.prefix, "--project", args.project]))
    everything = Step(_apply(args, *_tf_vars(args, uri)), retry_on=BUILD_PERMISSION_ERROR)
    return [*steps, _verify(args, uri), everything, *_smoke(args, target_version(uri))]


def rollback_plan(args: argparse.Namespace) -> list[Step]:
    """The deployed bundle is fetched into the same path a deploy uploads from: the source
    object's `source` argument (main.tf) stays the same string with the same bytes, so Terraform
    keeps the object and changes only MODEL_URI, and the next deploy finds the object unchanged."""
    if not (args.model_uri or args.version):
        raise SystemExit("rollback needs MODEL_URI=gs://BUCKET/PREFIX/<version>/ or VERSION=<version> (make versions lists them)")
    from postergenre import artifact

    uri = args.model_uri or artifact.version_uri(args.bucket, args.prefix, args.version)
    return [
        _verify(args, uri),  # before anything changes
        *_init(args),
        Step(["terraform", "-chdir=infra", "output", "-raw", "source_object"], capture="SOURCE_OBJECT"),
        Step([args.python, "infra/bundle.py", "--fetch", f"gs://{args.bucket}/{{SOURCE_OBJECT}}", BUNDLE]),
        Step(_apply(args, "-target=google_cloudfunctions2_function.predict", *_tf_vars(args, uri)), retry_on=BUILD_PERMISSION_ERROR),
        *_smoke(args, target_version(uri)),
    ]


def bootstrap_plan(args: argparse.Namespace) -> list[Step]:
    """No deployment yet, so no state to open: init fetches the providers only."""
    return [
        Step(["gcloud", "services", "enable", *BOOTSTRAP_APIS, f"--project={args.project}"]),
        Step([args.python, "infra/bootstrap.py", "--project", args.project, "--region", args.region,
              "--state-bucket", _state_bucket(args)]),
        Step(["terraform", "-chdir=infra", "init", "-input=false", "-backend=false"]),
        Step(["terraform", "-chdir=infra", "providers", "lock", *(f"-platform={p}" for p in LOCK_PLATFORMS)]),
    ]


def _run_streaming(cmd: list[str]) -> tuple[int, str]:
    """Run with the output shown as it comes (in chunks, so Terraform's approval prompt, which
    ends without a newline, shows too), keeping its last 64 KB for the retry decision."""
    kept = bytearray()
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 4096):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            kept = (kept + chunk)[-65536:]
    return proc.returncode, kept.decode(errors="replace")


def _run_step(step: Step, cmd: list[str]) -> int:
    if step.retry_on is None:
        return subprocess.run(cmd, cwd=ROOT).returncode
    retries = _env_int("DEPLOY_BUILD_RETRIES", 2, 0, 10)
    wait_s = _env_int("DEPLOY_BUILD_RETRY_WAIT_SECONDS", 120, 0, 900)
    for attempt in range(retries + 1):
        code, output = _run_streaming(cmd)
        if code == 0 or attempt == retries or not step.retry_on.search(output):
            return code
        print(f"deploy: the build was refused for the build account's permissions (IAM grants still propagating); "
              f"retrying in {wait_s} s ({attempt + 1} of {retries})", file=sys.stderr, flush=True)
        time.sleep(wait_s)
    return code


def run(steps: list[Step], dry_run: bool) -> int:
    values: dict[str, str] = {}
    for step in steps:
        cmd = list(step.cmd)
        for name, value in values.items():
            cmd = [part.replace("{" + name + "}", value) for part in cmd]
        print(("DRY RUN: " if dry_run else "+ ") + shlex.join(cmd), flush=True)
        if dry_run:
            continue
        if step.capture:
            done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE if step.optional else None, text=True)
            lines = done.stdout.strip().splitlines()
            if step.optional and (done.returncode != 0 or not lines):
                values[step.capture] = ""
                continue
            if done.returncode != 0 or not lines:
                print(f"deploy: error: `{shlex.join(cmd)}` failed (has `make deploy` run for this deployment?)", file=sys.stderr)
                return 1
            values[step.capture] = lines[-1].strip()
        elif _run_step(step, cmd) != 0:
            print(f"deploy: error: step failed: {shlex.join(cmd)}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("deploy", "rollback", "bootstrap"))
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", default="")
    parser.add_argument("--function-name", default="postergenre", help="the Cloud Function's name (make FUNCTION=)")
    parser.add_argument("--alert-email", default="",
                        help=f"address the alerts notify (make ALERT_EMAIL=); {NO_ALERT_EMAIL!r} removes it; unset keeps the deployed one")
    parser.add_argument("--state-bucket", default="", help="Terraform state bucket (default PROJECT-tfstate)")
    parser.add_argument("--model-dir", default="function/model")
    parser.add_argument("--prefix", default="models")
    parser.add_argument("--model-uri", default="", help="deploy: serve this published version (no publish); rollback: the target")
    parser.add_argument("--version", default="", help="rollback: the target version under gs://BUCKET/PREFIX/")
    parser.add_argument("--private", action="store_true", help="no allUsers invoker (org policy iam.allowedPolicyMemberDomains)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--auto-approve", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.action in ("deploy", "rollback") and not args.bucket:
        parser.error(f"{args.action} needs --bucket")
    plan = {"deploy": deploy_plan, "rollback": rollback_plan, "bootstrap": bootstrap_plan}[args.action](args)
    return run(plan, args.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
