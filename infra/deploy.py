"""make deploy: build the bundle, create the bucket, publish the model, apply Terraform.

With --dry-run every command is printed (the publish and both applies included) and nothing runs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def plan(args: argparse.Namespace) -> list[list[str]]:
    tf_vars = ["-var", f"project={args.project}", "-var", f"region={args.region}", "-var", f"bucket={args.bucket}"]
    approve = ["-auto-approve"] if args.auto_approve else []
    apply = ["terraform", "-chdir=infra", "apply", "-input=false", *approve]
    steps = [
        [args.python, "infra/bundle.py", "build/function-source.zip"],
        ["terraform", "-chdir=infra", "init", "-input=false"],
        [*apply, "-target=google_storage_bucket.models", *tf_vars],
    ]
    if not args.model_uri:
        steps.append([args.python, "-m", "train.publish", args.model_dir, args.bucket, args.prefix])
    steps.append([*apply, *tf_vars, "-var", f"model_uri={args.model_uri or '{MODEL_URI}'}", "-var", "source_zip=../build/function-source.zip"])
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--model-dir", default="function/model")
    parser.add_argument("--prefix", default="models")
    parser.add_argument("--model-uri", default="", help="serve an already published version (skips the publish)")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--auto-approve", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.dry_run and not args.model_uri:
        version = json.loads((ROOT / args.model_dir / "manifest.json").read_text())["version"]
        planned_uri = f"gs://{args.bucket}/{args.prefix.strip('/')}/{version}/"
    model_uri = args.model_uri
    for step in plan(args):
        step = [part.replace("{MODEL_URI}", model_uri or (planned_uri if args.dry_run else "")) for part in step]
        print(("DRY RUN: " if args.dry_run else "+ ") + shlex.join(step), flush=True)
        if args.dry_run:
            continue
        if "train.publish" in step:
            done = subprocess.run(step, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            print(done.stdout, end="")
            if done.returncode != 0:
                return done.returncode
            model_uri = done.stdout.strip().splitlines()[-1].removeprefix("MODEL_URI=")
        elif subprocess.run(step, cwd=ROOT).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
