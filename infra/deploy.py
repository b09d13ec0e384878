"""make deploy / rollback / promote / settings / bootstrap: the steps, in order, each one a command.

Every command but bootstrap starts from the deployment's settings (infra/settings.py), kept beside
its Terraform state: the command line changes the settings it names, the result is printed, and
every apply gets every variable from it (-var flags, none left to a default).
deploy:    bundle -> terraform init -reconfigure (this deployment's GCS state) -> apply the
           foundations (APIs, bucket, service accounts, their grants and the wait for those grants
           to propagate) -> publish the bundled model (first deploy only) -> verify the served
           version -> apply everything (a build refused for the build account's permissions is
           retried: grants can take minutes to reach Cloud Build) -> record the settings -> smoke test.
           The served model is the one the settings name; only the first deploy chooses it.
rollback / promote: (promote without VERSION: publish the bundled model) -> verify the target ->
           terraform init -> fetch the source bundle deployed now into the path deploy uses ->
           apply the function only, same code, new MODEL_URI -> record the change -> smoke test.
settings:  print the recorded settings and the served model's history; change nothing.
bootstrap: enable the APIs Terraform itself needs -> create the versioned state bucket ->
           terraform init (providers only) -> lock the providers for every maintainer's platform.

A deployment is (project, region, function name, bucket): its Terraform state and settings live
under its own prefix of the state bucket, and `init -reconfigure` (never -migrate-state) switches
this checkout to it, so deployments can be deployed in any order and never share a state.
With --dry-run the commands are printed and nothing runs.
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
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script (make): infra.settings is a sibling module
from infra.settings import Settings, SettingsError, Store  # noqa: E402

BUNDLE = "build/function-source.zip"
STATE_ROOT = "postergenre/state"
# Terraform itself calls these before it can enable anything (google_project_service).
BOOTSTRAP_APIS = ("serviceusage.googleapis.com", "cloudresourcemanager.googleapis.com", "storage.googleapis.com")
LOCK_PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64")
# What the first apply creates before anything is published: the bucket, and the wait that
# depends on every IAM grant (main.tf), which pulls in the APIs, accounts and grants.
FOUNDATIONS = ("google_storage_bucket.models", "time_sleep.iam_propagation")
FUNCTION = "google_cloudfunctions2_function.predict"


@dataclass(frozen=True)
class Wording:
    """A message with which a function build fails while the build account's grants propagate."""

    pattern: re.Pattern
    source: str  # where this wording was reported (infra/README.md lists them)


BUILD_PERMISSION_WORDINGS = (
    Wording(re.compile(r"Build failed.*Access to bucket \S+ denied", re.DOTALL), "terraform-provider-google issue 20571"),
    Wording(re.compile(r"Could not build the function due to missing permissions"), "terraform-provider-google issue 21857"),
    Wording(re.compile(r"Could not build the function due to a missing permission on the build service account"),
            "GoogleCloudPlatform/terraform-genai-knowledge-base issue 245"),
)


def build_refused_for_permissions(output: str) -> bool:
    return any(w.pattern.search(output) for w in BUILD_PERMISSION_WORDINGS)


@dataclass
class Step:
    cmd: list[str]  # a command; for an action step, what is printed
    capture: str | None = None  # name of a {PLACEHOLDER} filled from this step's last stdout line
    retry_on: Callable[[str], bool] | None = None  # output that makes a failed step worth running again
    action: Callable[[], None] | None = None  # run in this process instead of cmd (recording the settings)


def _env_int(name: str, default: int, low: int, high: int) -> int:
    """An integer setting from the environment, parsed as the function parses its own; a bad value is an error."""
    from postergenre import config

    try:
        return config.env_int(name, default, low, high)
    except config.ConfigError as exc:
        raise SystemExit(f"deploy: error: {exc}") from None


def _state_bucket(args: argparse.Namespace) -> str:
    return args.state_bucket or f"{args.project}-tfstate"


def state_prefix(args: argparse.Namespace) -> str:
    """The state's prefix in the state bucket: one per deployment (region, function name, bucket)."""
    return f"{STATE_ROOT}/{args.region}/{args.function_name}/{args.bucket}"


def _tf_vars(settings: Settings) -> list[str]:
    pairs = {**settings.tf_vars(), "source_zip": f"../{BUNDLE}"}
    return [part for key, value in pairs.items() for part in ("-var", f"{key}={value}")]


def _init(args: argparse.Namespace) -> Step:
    """-reconfigure: this checkout may last have been initialised for another deployment, and
    Terraform stops on a changed backend unless told to forget it (never -migrate-state, which
    would copy that deployment's state into this one's)."""
    backend = [f"-backend-config=bucket={_state_bucket(args)}", f"-backend-config=prefix={state_prefix(args)}"]
    return Step(["terraform", "-chdir=infra", "init", "-input=false", "-reconfigure", *backend])


def _apply(args: argparse.Namespace, settings: Settings, *targets: str) -> list[str]:
    approve = ["-auto-approve"] if args.auto_approve else []
    return ["terraform", "-chdir=infra", "apply", "-input=false", *approve, *(f"-target={t}" for t in targets), *_tf_vars(settings)]


def _verify(args: argparse.Namespace, settings: Settings) -> Step:
    where = ["--project", args.project, "--bucket", settings.bucket, "--prefix", settings.prefix]
    return Step([args.python, "infra/versions.py", *where, "--verify", settings.model_uri])


def _publish(args: argparse.Namespace, settings: Settings) -> Step:
    return Step([args.python, "-m", "train.publish", args.model_dir, settings.bucket, settings.prefix, "--project", args.project])


def _record(store: Store, settings: Settings) -> Step:
    return Step(["record settings", store.uri], action=lambda: store.save(settings))


def _smoke(args: argparse.Namespace, settings: Settings) -> list[Step]:
    return [
        Step(["terraform", "-chdir=infra", "output", "-raw", "function_url"], capture="URL"),
        Step([args.python, "infra/smoke.py", "{URL}", "--expect-version", target_version(settings.model_uri),
              *(["--private"] if settings.private else [])]),
    ]


def target_version(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def bundled_uri(args: argparse.Namespace, settings: Settings) -> str:
    """The version MODEL_DIR will be published as: it is in the artifact's manifest."""
    from postergenre import artifact
    from postergenre.errors import ModelUnavailable

    try:
        manifest = artifact.parse_manifest((ROOT / args.model_dir / artifact.MANIFEST_FILE).read_bytes())
    except (OSError, ModelUnavailable) as exc:
        raise SystemExit(f"deploy: error: {args.model_dir} is not a model artifact: {exc}") from exc
    return artifact.version_uri(settings.bucket, settings.prefix, manifest.version)


def deploy_plan(args: argparse.Namespace, store: Store, settings: Settings, publish: bool) -> list[Step]:
    """The served model is settings.model_uri: published here only on the first deploy."""
    return [
        Step([args.python, "infra/bundle.py", BUNDLE]),
        _init(args),
        Step(["check settings unchanged", store.uri], action=store.check),
        Step(_apply(args, settings, *FOUNDATIONS)),
        *([_publish(args, settings)] if publish else []),
        _verify(args, settings),
        Step(_apply(args, settings), retry_on=build_refused_for_permissions),
        _record(store, settings),
        *_smoke(args, settings),
    ]


def model_plan(args: argparse.Namespace, store: Store, settings: Settings, publish: bool) -> list[Step]:
    """rollback / promote. The deployed bundle is fetched into the same path a deploy uploads from:
    the source object's `source` argument (main.tf) stays the same string with the same bytes, so
    Terraform keeps the object and changes only MODEL_URI, and the next deploy finds it unchanged."""
    return [
        *([_publish(args, settings)] if publish else []),
        _verify(args, settings),  # before anything changes
        _init(args),
        Step(["terraform", "-chdir=infra", "output", "-raw", "source_object"], capture="SOURCE_OBJECT"),
        Step([args.python, "infra/bundle.py", "--fetch", f"gs://{settings.bucket}/{{SOURCE_OBJECT}}", BUNDLE]),
        Step(["check settings unchanged", store.uri], action=store.check),
        Step(_apply(args, settings, FUNCTION), retry_on=build_refused_for_permissions),
        _record(store, settings),
        *_smoke(args, settings),
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
        if code == 0 or attempt == retries or not step.retry_on(output):
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
        if step.action:
            try:
                step.action()
            except SettingsError as exc:
                print(f"deploy: error: {exc}", file=sys.stderr)
                return 1
        elif step.capture:
            done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines:
                print(f"deploy: error: `{shlex.join(cmd)}` failed (has `make deploy` run for this deployment?)", file=sys.stderr)
                return 1
            values[step.capture] = lines[-1].strip()
        elif _run_step(step, cmd) != 0:
            print(f"deploy: error: step failed: {shlex.join(cmd)}", file=sys.stderr)
            return 1
    return 0


def _load(store: Store, dry_run: bool) -> Settings | None:
    try:
        return store.load()
    except SettingsError:
        raise
    except Exception as exc:  # no credentials, no access: one line, not a traceback
        if not dry_run:
            raise SystemExit(f"deploy: error: cannot read {store.uri}: {exc.__class__.__name__}: {exc}") from None
        print(f"deploy: warning: cannot read {store.uri} ({exc.__class__.__name__}); showing a first deploy", file=sys.stderr)
        return None


def choose(args: argparse.Namespace, recorded: Settings | None, settings: Settings) -> tuple[Settings, bool]:
    """The settings to apply with the model they serve, and whether MODEL_DIR is published first.
    Only the first deploy, rollback and promote choose the model; a later deploy keeps it."""
    from postergenre import artifact

    deployed = recorded is not None and recorded.model_uri != ""
    if args.action == "deploy":
        if deployed:
            if args.model_uri:
                raise SettingsError(f"this deployment serves {settings.model_uri}; a deploy never changes the model: "
                                    "use make promote (a newer version) or make rollback (an older one)")
            if settings.prefix != recorded.prefix:
                # Terraform's precondition, versions.py --verify, rollback and promote all require the
                # served version under the prefix: a new one would stop every later command.
                raise SettingsError(f"prefix is chosen by the first deploy: this deployment serves {recorded.model_uri} "
                                    f"under prefix {recorded.prefix!r}; publish elsewhere with make publish PREFIX=..., "
                                    "not by changing the deployment's prefix")
            return settings, False
        return settings.serving(args.model_uri or bundled_uri(args, settings), "deploy"), not args.model_uri
    if not deployed:
        raise SettingsError(f"nothing deployed yet at {state_prefix(args)}: run make deploy first")
    if args.action == "rollback" and not (args.model_uri or args.version):
        raise SettingsError("rollback needs MODEL_URI=gs://BUCKET/PREFIX/<version>/ or VERSION=<version> (make versions lists them)")
    target = args.model_uri or (artifact.version_uri(settings.bucket, settings.prefix, args.version) if args.version else "")
    return settings.serving(target or bundled_uri(args, settings), args.action), not target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("deploy", "rollback", "promote", "settings", "bootstrap"))
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", default="")
    parser.add_argument("--function-name", default="postergenre", help="the Cloud Function's name (make FUNCTION=)")
    parser.add_argument("--state-bucket", default="", help="Terraform state bucket (default PROJECT-tfstate)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="deploy: change one remembered setting (make PRIVATE=1, ALERT_EMAIL=..., MEMORY_MB=...)")
    parser.add_argument("--model-dir", default="function/model", help="the bundled model: first deploy, promote without a version")
    parser.add_argument("--model-uri", default="", help="first deploy, rollback, promote: serve this published version")
    parser.add_argument("--version", default="", help="rollback, promote: the version under gs://BUCKET/PREFIX/")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--auto-approve", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "bootstrap":
        return run(bootstrap_plan(args), args.dry_run)
    if not args.bucket:
        parser.error(f"{args.action} needs --bucket")
    from postergenre import publishing

    publishing.use_project(args.project)
    store = Store(_state_bucket(args), state_prefix(args))
    try:
        recorded = _load(store, args.dry_run)
        if args.action == "settings":
            if recorded is None:
                raise SettingsError(f"no deployment recorded at {store.uri} (make deploy records one)")
            print(f"{store.uri} (generation {store.generation}):\n{recorded.describe()}")
            return 0
        if recorded is not None and recorded.project != args.project:
            raise SettingsError(f"{store.uri} belongs to project {recorded.project!r}, not {args.project!r}")
        given = {name.lower(): value for name, _, value in (item.partition("=") for item in args.set)}
        if given and args.action != "deploy":
            raise SettingsError(f"{args.action} changes the served model only; change {', '.join(given)} with make deploy")
        base = recorded or Settings(project=args.project, region=args.region, function_name=args.function_name, bucket=args.bucket)
        settings, publish = choose(args, recorded, base.changed(given))
    except SettingsError as exc:
        print(f"deploy: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.action}: the settings applied ({store.uri}):\n{settings.describe(recorded)}", flush=True)
    plan = deploy_plan if args.action == "deploy" else model_plan
    return run(plan(args, store, settings, publish), args.dry_run)


if __name__ == "__main__":
    raise SystemExit(main())
