"""The Terraform state bucket (make bootstrap): created once per project, before the first deploy.

Terraform cannot keep its own state in a bucket it creates, so this bucket is made here, with
the storage client the function uses: private (uniform access, public access prevention) and
versioned, so an overwritten or deleted state can be recovered. Running it again is a no-op
that re-checks those settings (and turns versioning on if someone turned it off).
Usage: python infra/bootstrap.py --project P --region R --state-bucket S
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from postergenre import storage  # (the function's storage client policy: emulator or default credentials)

ROOT = Path(__file__).resolve().parent.parent


def ensure_state_bucket(name: str, region: str) -> str:
    """Create the bucket, or check an existing one; returns what was done."""
    from google.api_core import exceptions as gexc

    client = storage.client()
    bucket = client.bucket(name)
    if bucket.exists():
        bucket.reload()
        if bucket.versioning_enabled:
            return f"state bucket gs://{name} exists, versioned"
        bucket.versioning_enabled = True
        bucket.patch()
        return f"state bucket gs://{name} exists; versioning turned on"
    bucket.versioning_enabled = True
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = "enforced"
    try:
        client.create_bucket(bucket, location=region)
    except gexc.Conflict as exc:  # bucket names are global: someone else's project has it
        raise RuntimeError(f"bucket name {name} is taken by another project; choose STATE_BUCKET=") from exc
    return f"state bucket gs://{name} created in {region}, versioned"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--state-bucket", required=True)
    args = parser.parse_args(argv)
    os.environ["GOOGLE_CLOUD_PROJECT"] = args.project  # the project the client creates the bucket in
    try:
        print(ensure_state_bucket(args.state_bucket, args.region))
    except Exception as exc:  # no credentials, no permission, name taken: one line, not a traceback
        print(f"bootstrap: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
