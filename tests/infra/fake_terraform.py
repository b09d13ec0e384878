"""A stand-in `terraform` for the deploy tests: records every call and acts on fake-gcs-server.

What it does per command, so that make deploy/rollback run end to end offline:
- init, providers: nothing (recorded only).
- apply: validates model_uri as variables.tf does, then brings its state in line with the
  variables - creates the bucket, uploads the source bundle as sources/function-<md5>.zip,
  records model_uri - and logs which of them changed (a real plan's "N to change").
- output -raw NAME: function_url (the URL FAKE_TF_URLS maps the served model_uri to),
  source_object, model_uri; exits 1 when nothing was applied yet, like terraform.
Environment: FAKE_TF_LOG (JSON lines), FAKE_TF_STATE (JSON), FAKE_TF_URLS (JSON), STORAGE_EMULATOR_HOST.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

import requests

INFRA = Path(__file__).resolve().parents[2] / "infra"
# The validation regex of variable "model_uri", read from variables.tf itself.
MODEL_URI_RE = re.search(r'regex\("(.+?)", var\.model_uri\)', (INFRA / "variables.tf").read_text()).group(1).replace("\\\\", "\\")


def main(args: list[str]) -> int:
    state_path = Path(os.environ["FAKE_TF_STATE"])
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    entry: dict = {"args": args}
    command = args[1]
    variables = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-var")
    code = 0
    if command == "apply":
        if not re.fullmatch(MODEL_URI_RE, variables.get("model_uri", "")):
            print("Error: Invalid value for variable model_uri", file=sys.stderr)
            code = 1
        else:
            entry["changed"] = apply(state, variables, targets=[a.split("=", 1)[1] for a in args if a.startswith("-target=")])
            state_path.write_text(json.dumps(state))
    elif command == "output":
        name = args[-1]
        if name == "function_url" and "model_uri" in state:
            print(json.loads(os.environ["FAKE_TF_URLS"])[state["model_uri"]])
        elif name in state:
            print(state[name])
        else:
            print(f"Error: Output {name!r} not found", file=sys.stderr)
            code = 1
    entry["rc"] = code
    with open(os.environ["FAKE_TF_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")
    return code


def apply(state: dict, variables: dict, targets: list[str]) -> list[str]:
    host = os.environ["STORAGE_EMULATOR_HOST"]
    bucket = variables["bucket"]
    changed = []
    if state.get("bucket") != bucket:
        if requests.get(f"{host}/storage/v1/b/{bucket}", timeout=5).status_code == 404:
            requests.post(f"{host}/storage/v1/b", json={"name": bucket}, timeout=5).raise_for_status()
        state["bucket"] = bucket
        changed.append("google_storage_bucket.models")
    if targets == ["google_storage_bucket.models"]:
        return changed
    data = (INFRA / variables["source_zip"]).read_bytes()
    source_object = f"sources/function-{hashlib.md5(data).hexdigest()}.zip"
    if state.get("source_object") != source_object:
        url = f"{host}/upload/storage/v1/b/{bucket}/o"
        requests.post(url, params={"uploadType": "media", "name": source_object}, data=data, timeout=5).raise_for_status()
        state["source_object"] = source_object
        changed.append("google_storage_bucket_object.source")
    if state.get("model_uri") != variables["model_uri"]:
        state["model_uri"] = variables["model_uri"]
        changed.append("google_cloudfunctions2_function.predict:MODEL_URI")
    return changed


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
