"""A stand-in `terraform` for the deploy tests: records every call and acts on fake-gcs-server.

It behaves like Terraform 1.11 where deploy bugs live (issue 26):
- init: -backend-config=bucket/prefix select a state (one per bucket+prefix, as the GCS backend
  keeps them). A backend that differs from the one this working directory was initialised with
  fails with "Error: Backend configuration changed" unless -reconfigure (forget the old one) or
  -migrate-state (copy the old state into the new one, recorded as `migrated`) is given.
  -backend=false leaves the backend alone. providers: nothing.
- apply: the variables are exactly those of this command line (-var): nothing is
  remembered from an earlier apply; a variable not given takes its default from infra/*.tf, and one
  without a default fails as "No value for required variable". Real Terraform then validates
  them (tests/infra/terraform_offline.py) and the state is brought in line, as a plan would, with
  what changed logged: the foundations (bucket; the grants' time_sleep), the source object
  (replaced when its `source` path or bytes change), the function (MODEL_URI and its size
  settings), the allUsers invoker (allow_unauthenticated), the catalogue's resources (counted on
  its buckets), the notification channel. -target limits it as Terraform does: a targeted
  function apply still covers the object it depends on.
  FAKE_TF_BUILD_DENIED=N: the first N applies that build the function fail as Cloud Build does
  while the build account's grants propagate, with FAKE_TF_BUILD_DENIED_MESSAGE (default: the
  wording of provider issue 20571).
- output -raw NAME: from the outputs of the last successful apply only (as state holds them);
  exits 1 when nothing was applied yet, like terraform.
Environment: FAKE_TF_LOG (JSON lines), FAKE_TF_STATE (JSON), FAKE_TF_URLS (JSON), STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import hcl2
import requests

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
sys.path.insert(0, str(ROOT))
from tests.infra.terraform_offline import Refused, evaluate  # noqa: E402

FOUNDATIONS = ["google_storage_bucket.models", "time_sleep.iam_propagation"]
FUNCTION = "google_cloudfunctions2_function.predict"
FUNCTION_SETTINGS = ("memory_mb", "cpu", "concurrency", "max_instances", "allowed_origins")
BUILD_DENIED = ("Error: Error waiting to create function: Error waiting for Creating function: Error code 13, message: "
                "Build failed with status: FAILURE and message: failed to Fetch: failed to download archive "
                "gs://gcf-v2-sources-1-r/f/function-source.zip: Access to bucket gcf-v2-sources-1-r denied. "
                "You must grant Storage Object Viewer permission to b@p.iam.gserviceaccount.com.")


def declared_variables() -> dict[str, object]:
    """{name: default, or None when the variable has none} over infra/*.tf."""
    found: dict[str, object] = {}
    for tf in sorted(INFRA.glob("*.tf")):
        with tf.open() as handle:
            for block in hcl2.load(handle).get("variable", []):
                for name, body in block.items():
                    default = body.get("default")
                    found[name.strip('"')] = default.strip('"') if isinstance(default, str) else default
    return found


def variables_of(args: list[str]) -> dict[str, str]:
    """This command line's variables over the declared defaults; SystemExit as Terraform words a missing one."""
    given: dict[str, str] = {}
    for i, arg in enumerate(args):
        if arg.startswith("-var-file"):
            raise SystemExit("fake terraform: -var-file is not modelled (make deploy passes -var flags)")
        if arg == "-var":
            key, value = args[i + 1].split("=", 1)
            given[key] = value
    declared = declared_variables()
    if unknown := set(given) - set(declared):
        raise SystemExit(f"Error: Value for undeclared variable {sorted(unknown)[0]!r}")
    if missing := sorted(name for name, default in declared.items() if default is None and name not in given):
        raise SystemExit(f"Error: No value for required variable {missing[0]!r}")
    values = {name: str(default).lower() if isinstance(default, bool) else str(default) for name, default in declared.items()}
    return {**values, **given}


def init(args: list[str], store: dict, entry: dict) -> int:
    if "-backend=false" in args:
        return 0
    config = dict(a.split("=", 2)[1:] for a in args if a.startswith("-backend-config="))
    key = f"{config.get('bucket')}/{config.get('prefix')}"
    old = store["backend"]
    if old is not None and old != key:
        if "-migrate-state" in args:
            store["states"][key] = json.loads(json.dumps(store["states"].get(old, {})))
            entry["migrated"] = [old, key]
        elif "-reconfigure" not in args:
            print("Error: Backend configuration changed\n\nA change in the backend configuration has been detected, which may "
                  "require migrating existing state.\n\nIf you wish to attempt automatic migration of the state, use "
                  "\"terraform init -migrate-state\".\nIf you wish to store the current configuration with no changes to "
                  "the state, use \"terraform init -reconfigure\".", file=sys.stderr)
            return 1
    store["backend"] = key
    entry["state"] = key
    return 0


def main(args: list[str]) -> int:
    store_path = Path(os.environ["FAKE_TF_STATE"])
    store = json.loads(store_path.read_text()) if store_path.exists() else {"backend": None, "states": {}, "denied": None}
    entry: dict = {"args": args, "state": store["backend"]}
    command = args[1]
    state = store["states"].setdefault(store["backend"], {}) if store["backend"] else None
    code = 0
    if command == "init":
        code = init(args, store, entry)
    elif command == "apply":
        if state is None:
            print("Error: Backend initialization required, please run \"terraform init\"", file=sys.stderr)
            code = 1
        else:
            try:
                variables = variables_of(args)
                entry["variables"] = variables
                evaluate({k: v for k, v in variables.items() if k != "source_zip"})
            except (SystemExit, Refused) as exc:
                print(exc if isinstance(exc, SystemExit) else f"Error: {exc}", file=sys.stderr)
                code = 1
            else:
                if store["denied"] is None:
                    store["denied"] = int(os.environ.get("FAKE_TF_BUILD_DENIED", "0"))
                targets = [a.split("=", 1)[1] for a in args if a.startswith("-target=")]
                entry["changed"], code = apply(state, store, variables, targets)
    elif command == "output":
        name = args[-1]
        outputs = (state or {}).get("outputs", {})
        if name == "function_url" and outputs.get("model_uri"):
            print(json.loads(os.environ["FAKE_TF_URLS"])[state["model_uri"]])
        elif name in outputs:
            print(outputs[name])
        else:
            print(f"Error: Output {name!r} not found", file=sys.stderr)
            code = 1
    store_path.write_text(json.dumps(store))
    entry["rc"] = code
    with open(os.environ["FAKE_TF_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")
    return code


def _set(state: dict, key: str, value: object, resource: str, changed: list[str]) -> None:
    if state.get(key) != value:
        state[key] = value
        changed.append(resource)


def apply(state: dict, store: dict, variables: dict, targets: list[str]) -> tuple[list[str], int]:
    host = os.environ["STORAGE_EMULATOR_HOST"]
    bucket = variables["bucket"]
    changed: list[str] = []
    if state.get("bucket") != bucket and requests.get(f"{host}/storage/v1/b/{bucket}", timeout=5).status_code == 404:
        requests.post(f"{host}/storage/v1/b", json={"name": bucket}, timeout=5).raise_for_status()
    _set(state, "bucket", bucket, "google_storage_bucket.models", changed)
    _set(state, "grants", True, "time_sleep.iam_propagation", changed)
    if targets == FOUNDATIONS:
        return changed, 0
    if targets and targets != [FUNCTION]:
        raise SystemExit(f"fake terraform: unexpected targets {targets}")
    data = (INFRA / variables["source_zip"]).read_bytes()
    source_object = f"sources/function-{hashlib.md5(data).hexdigest()}.zip"
    if state.get("source_object") != source_object or state.get("source_zip") != variables["source_zip"]:
        url = f"{host}/upload/storage/v1/b/{bucket}/o"
        requests.post(url, params={"uploadType": "media", "name": source_object}, data=data, timeout=5).raise_for_status()
        state["source_object"], state["source_zip"] = source_object, variables["source_zip"]
        changed.append("google_storage_bucket_object.source")
    if state.get("model_uri") != variables["model_uri"] or state.get("tainted"):
        if store["denied"] > 0:  # the function is created, its build fails: Terraform taints it
            store["denied"] -= 1
            state["tainted"] = True
            print(os.environ.get("FAKE_TF_BUILD_DENIED_MESSAGE", BUILD_DENIED), file=sys.stderr)
            return changed, 1
        state["model_uri"], state["tainted"] = variables["model_uri"], False
        changed.append(f"{FUNCTION}:MODEL_URI")
    _set(state, "function_settings", {k: variables[k] for k in FUNCTION_SETTINGS}, f"{FUNCTION}:service_config", changed)
    if not targets:
        _set(state, "public", variables["allow_unauthenticated"] == "true", "google_cloud_run_service_iam_member.public_invoker", changed)
        _set(state, "alert_email", variables["alert_email"], "google_monitoring_notification_channel.email", changed)
        catalogue = {k: variables[k] for k in ("catalogue_input_bucket", "catalogue_output_bucket")}
        _set(state, "catalogue", catalogue, "catalogue (Dataflow API, worker account and grants)", changed)
    state["outputs"] = {"model_uri": variables["model_uri"], "alert_email": variables["alert_email"], "bucket": bucket,
                        "source_object": state["source_object"]}
    return changed, 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
