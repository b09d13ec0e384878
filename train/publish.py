"""python -m train.publish MODEL_DIR BUCKET [PREFIX] [--project P]: upload an artifact as an immutable version.

What publishing checks and guarantees (immutable, idempotent, manifest last) is in
function/postergenre/publishing.py. The last line printed is exactly
``MODEL_URI=gs://BUCKET/PREFIX/<version>/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from postergenre.publishing import PublishError, publish, use_project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.publish", description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("bucket")
    parser.add_argument("prefix", nargs="?", default="models")
    parser.add_argument("--project", default=None, help="Google Cloud project (default: GOOGLE_CLOUD_PROJECT or gcloud's)")
    args = parser.parse_args(argv)
    use_project(args.project)
    try:
        uri = publish(args.model_dir, args.bucket, args.prefix)
    except PublishError as exc:
        print(f"publish: error: {exc}", file=sys.stderr)
        return 1
    print(f"MODEL_URI={uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
