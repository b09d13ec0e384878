"""A stand-in `terraform` for the deploy tests: records every call and acts on fake-gcs-server.

What it does per command, so that make deploy/rollback run end to end offline:
- init: selects the state of the -backend-config=prefix it is given (one state per prefix, as
  the GCS backend keeps them); -backend=false selects none. providers: nothing.
- apply: validates the variables with real Terraform on variables.tf (tests/infra/terraform_offline.py),
  then brings the selected state in line with them, as a plan would, and logs what changed:
  the foundations (bucket; the grants' time_sleep), the source object - replaced when its
  `source` path or its bytes change, as `source` forces a new object - the function's MODEL_URI,
  the notification channel. -target limits it as Terraform does: a targeted function apply
  still covers the object it depends on.
  FAKE_TF_BUILD_DENIED=N: the first N applies that build the function fail as Cloud Build does
  while the build account's grants propagate (provider issue 20571).
- output -raw NAME: function_url (the URL FAKE_TF_URLS maps the served model_uri to),
  source_object, model_uri, alert_email; exits 1 when nothing was applied yet, like terraform.
Environment: FAKE_TF_LOG (JSON lines), FAKE_TF_STATE (JSON), FAKE_TF_URLS (JSON), STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
sys.path.insert(0, str(ROOT))
from tests.infra.terraform_offline import Refused, evaluate  # noqa: E402

FOUNDATIONS = ["google_storage_bucket.models", "time_sleep.iam_propagation"]
FUNCTION = "google_cloudfunctions2_function.predict"
BUILD_DENIED = ("Error: Error waiting to create function: Error waiting for Creating function: Error code 13, message: "
                "Build failed with status: FAILURE and message: failed to Fetch: failed to download archive "
                "gs://gcf-v2-sources-1-r/f/function-source.zip: Access to bucket gcf-v2-sources-1-r denied. "
                "You must grant Storage Object Viewer permission to b@p.iam.gserviceaccount.com.")


def main(args: list[str]) -> int:
    store_path = Path(os.environ["FAKE_TF_STATE"])
    store = json.loads(store_path.read_text()) if store_path.exists() else {"prefix": None, "states": {}, "denied": None}
    entry: dict = {"args": args}
    command = args[1]
    variables = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-var")
    state = store["states"].setdefault(store["prefix"], {}) if store["prefix"] else None
    code = 0
    if command == "init":
        prefixes = [a.split("=", 2)[2] for a in args if a.startswith("-backend-config=prefix=")]
        store["prefix"] = prefixes[0] if prefixes else None
        entry["prefix"] = store["prefix"]
    elif command == "apply":
        if state is None:
            print("Error: Backend initialization required, please run \"terraform init\"", file=sys.stderr)
            code = 1
        else:
            try:
                evaluate({k: v for k, v in variables.items() if k != "source_zip"})
            except Refused as exc:
                print(f"Error: {exc}", file=sys.stderr)
                code = 1
            else:
                if store["denied"] is None:
                    store["denied"] = int(os.environ.get("FAKE_TF_BUILD_DENIED", "0"))
                targets = [a.split("=", 1)[1] for a in args if a.startswith("-target=")]
                entry["changed"], code = apply(state, store, variables, targets)
    elif command == "output":
        name = args[-1]
        if state and name == "function_url" and "model_uri" in state:
            print(json.loads(os.environ["FAKE_TF_URLS"])[state["model_uri"]])
        elif state and name in state:
            print(state[name])
        else:
            print(f"Error: Output {name!r} not found", file=sys.stderr)
            code = 1
    store_path.write_text(json.dumps(store))
    entry["rc"] = code
    with open(os.environ["FAKE_TF_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")
    return code


def apply(state: dict, store: dict, variables: dict, targets: list[str]) -> tuple[list[str], int]:
    host = os.environ["STORAGE_EMULATOR_HOST"]
    bucket = variables["bucket"]
    changed = []
    if state.get("bucket") != bucket:
        if requests.get(f"{host}/storage/v1/b/{bucket}", timeout=5).status_code == 404:
            requests.post(f"{host}/storage/v1/b", json={"name": bucket}, timeout=5).raise_for_status()
        state["bucket"] = bucket
        changed.append("google_storage_bucket.models")
    if not state.get("grants"):
        state["grants"] = True
        changed.append("time_sleep.iam_propagation")
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
            print(BUILD_DENIED, file=sys.stderr)
            return changed, 1
        state["model_uri"], state["tainted"] = variables["model_uri"], False
        changed.append(f"{FUNCTION}:MODEL_URI")
    if not targets and state.get("alert_email", "") != variables.get("alert_email", ""):
        state["alert_email"] = variables.get("alert_email", "")
        changed.append("google_monitoring_notification_channel.email")
    state.setdefault("alert_email", "")
    return changed, 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
