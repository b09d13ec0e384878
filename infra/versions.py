"""Published model versions in the bucket: list them (make versions) and verify one before it is served.

The checks and the listing are function/postergenre/publishing.py's; the figures shown are each
manifest's headline metrics (function/postergenre/artifact.py: ``headline``, ``SUMMARY_KEYS``).
Usage: python infra/versions.py --bucket B [--prefix models] [--project P] [--verify gs://.../<version>/]
"""

from __future__ import annotations

import argparse
import sys

from postergenre import artifact, publishing
from postergenre.errors import ModelUnavailable

COLUMN = 13


def table(versions: list[publishing.Version]) -> str:
    """One line per version: name, publish time, the cross-validated SUMMARY_KEYS figures, MODEL_URI."""
    keys = artifact.SUMMARY_KEYS
    lines = [f"{'version':<20} {'published':<24} " + " ".join(f"{k:>{COLUMN}}" for k in keys) + "  MODEL_URI"]
    for v in versions:
        cells = " ".join(f"{v.metrics[k]:>{COLUMN}.3f}" if k in v.metrics else f"{'-':>{COLUMN}}" for k in keys)
        lines.append(f"{v.version:<20} {v.published:<24} {cells}  {v.uri}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", default="models")
    parser.add_argument("--project", default=None)
    parser.add_argument("--verify", metavar="MODEL_URI", help="verify this version instead of listing")
    args = parser.parse_args(argv)
    publishing.use_project(args.project)
    try:
        if args.verify:
            manifest = publishing.verify(args.verify, args.bucket, args.prefix)
            print(f"verified {args.verify}: {manifest.name} {manifest.version} sha256 {manifest.sha256}")
            return 0
        versions = publishing.list_versions(args.bucket, args.prefix)
    except (publishing.VersionError, ModelUnavailable) as exc:
        print(f"versions: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # no project / credentials / network: one line, not a traceback
        print(f"versions: error: cannot read gs://{args.bucket}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    if not versions:
        print(f"no published versions under gs://{args.bucket}/{artifact.prefix_root(args.prefix)}")
        return 0
    print(table(versions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
