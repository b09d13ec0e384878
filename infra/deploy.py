"""make deploy / make rollback / make bootstrap: the steps, in order, each one a command.

deploy:    bundle -> terraform init (GCS state) -> apply the bucket (and the APIs it needs) ->
           publish (a no-op when the version is already there) -> verify the version ->
           apply everything -> smoke test on the function's URL.
rollback:  verify the target version -> terraform init -> fetch the source bundle that is
           deployed now -> apply the function only, with that same code and the new MODEL_URI ->
           smoke test (expects the target version).
bootstrap: enable the APIs Terraform itself needs -> create the versioned state bucket ->
           terraform init -> lock the provider for every maintainer's platform.

Every run is repeatable: a second `make deploy` with nothing changed publishes nothing and
Terraform finds nothing to change. With --dry-run the commands are printed and nothing runs.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = "build/function-source.zip"
DEPLOYED_BUNDLE = "build/deployed-source.zip"
STATE_PREFIX = "postergenre/state"
# Terraform itself calls these before it can enable anything (google_project_service).
BOOTSTRAP_APIS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "storage.googleapis.com")
LOCK_PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64")


@dataclass
class Step:
    cmd: list[str]
    capture: str | None = None  # name of a {PLACEHOLDER} filled from this step's last stdout line


def _state_bucket(args: argparse.Namespace) -> str:
    return args.state_bucket or f"{args.project}-tfstate"


def _tf_vars(args: argparse.Namespace, model_uri: str, source_zip: str = f"../{BUNDLE}") -> list[str]:
    pairs = {"project": args.project, "region": args.region, "bucket": args.bucket, "prefix": args.prefix, "model_uri": model_uri, "source_zip": source_zip}
    if args.private:
        pairs["allow_unauthenticated"] = "false"
    return [part for key, value in pairs.items() for part in ("-var", f"{key}={value}")]


def _init(args: argparse.Namespace) -> Step:
    return Step(["terraform", "-chdir=infra", "init", "-input=false", f"-backend-config=bucket={_state_bucket(args)}", f"-backend-config=prefix={STATE_PREFIX}"])


def _apply(args: argparse.Namespace, *extra: str) -> list[str]:
    return ["terraform", "-chdir=infra", "apply", "-input=false", *(["-auto-approve"] if args.auto_approve else []), *extra]


def _verify(args: argparse.Namespace, uri: str) -> Step:
    return Step([args.python, "infra/versions.py", "--project", args.project, "--bucket", args.bucket, "--prefix", args.prefix, "--verify", uri])


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
        _init(args),
        Step(_apply(args, "-target=google_storage_bucket.models", *_tf_vars(args, uri))),
    ]
    if not args.model_uri:
        steps.append(Step([args.python, "-m", "train.publish", args.model_dir, args.bucket, args.prefix, "--project", args.project]))
    return [*steps, _verify(args, uri), Step(_apply(args, *_tf_vars(args, uri))), *_smoke(args, target_version(uri))]


def rollback_plan(args: argparse.Namespace) -> list[Step]:
    if not (args.model_uri or args.version):
        raise SystemExit("rollback needs MODEL_URI=gs://BUCKET/PREFIX/<version>/ or VERSION=<version> (make versions lists them)")
    from postergenre import artifact

    uri = args.model_uri or artifact.version_uri(args.bucket, args.prefix, args.version)
    return [
        _verify(args, uri),  # before anything changes
        _init(args),
        Step(["terraform", "-chdir=infra", "output", "-raw", "source_object"], capture="SOURCE_OBJECT"),
        Step([args.python, "infra/bundle.py", "--fetch", f"gs://{args.bucket}/{{SOURCE_OBJECT}}", DEPLOYED_BUNDLE]),
        Step(_apply(args, "-target=google_cloudfunctions2_function.predict", *_tf_vars(args, uri, f"../{DEPLOYED_BUNDLE}"))),
        *_smoke(args, target_version(uri)),
    ]


def bootstrap_plan(args: argparse.Namespace) -> list[Step]:
    return [
        Step(["gcloud", "services", "enable", *BOOTSTRAP_APIS, f"--project={args.project}"]),
        Step([args.python, "infra/bootstrap.py", "--project", args.project, "--region", args.region, "--state-bucket", _state_bucket(args)]),
        _init(args),
        Step(["terraform", "-chdir=infra", "providers", "lock", *(f"-platform={p}" for p in LOCK_PLATFORMS)]),
    ]


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
            done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                print(f"deploy: error: `{shlex.join(cmd)}` failed (has `make deploy` run in this project?)", file=sys.stderr)
                return 1
            values[step.capture] = lines[-1].strip()
        elif subprocess.run(cmd, cwd=ROOT).returncode != 0:
            print(f"deploy: error: step failed: {shlex.join(cmd)}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("deploy", "rollback", "bootstrap"))
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", default="")
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
