"""After an apply: post a poster to the function's URL and show what it answers.

Fails (exit 1) unless the answer is 200 with genres from the expected model version. A fresh
revision loads its model on the first request, and a fresh invoker binding (allUsers, or the
caller's own for a private function) can take a while to apply, so a 503/429/502/504, a 401/403
or a refused connection is retried for a bounded time (--patience) first; anything else fails at
once, and so does the last retryable answer when the time is up.
Usage: python infra/smoke.py URL [--expect-version V] [--private]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time

import requests

RETRYABLE = {429, 502, 503, 504}
NOT_YET_ALLOWED = {401, 403}  # an IAM binding still propagating (first deploy)


def poster() -> bytes:
    """A 200x300 JPEG made here: the smoke test needs no file and no network but the function's."""
    from PIL import Image

    image = Image.new("RGB", (200, 300), (30, 60, 120))
    image.paste((220, 180, 40), (40, 60, 160, 240))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def smoke(url: str, expect_version: str | None = None, token: str | None = None, patience_s: float = 180.0) -> tuple[bool, str]:
    """(passed, one-line report)."""
    headers = {"Content-Type": "image/jpeg", "User-Agent": "postergenre-smoke"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    deadline = time.monotonic() + patience_s
    while True:
        try:
            response = requests.post(url, data=poster(), headers=headers, timeout=60)
            if response.status_code not in RETRYABLE | NOT_YET_ALLOWED or time.monotonic() > deadline:
                break
            detail = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            if time.monotonic() > deadline:
                return False, f"SMOKE TEST FAILED: {url} did not answer ({exc.__class__.__name__})"
            detail = exc.__class__.__name__
        print(f"smoke: {detail}, retrying", file=sys.stderr, flush=True)
        time.sleep(3)
    if response.status_code != 200:
        hint = (f" for {patience_s:.0f} s: the invoker binding is missing or not applied yet (private function: the caller"
                " needs roles/run.invoker, see infra/README.md)") if response.status_code in NOT_YET_ALLOWED else ""
        return False, f"SMOKE TEST FAILED: {url} answered HTTP {response.status_code}{hint}: {response.text[:300]}"
    try:
        body = response.json()
        genres, version = body["genres"], body["model"]["version"]
    except (ValueError, KeyError, TypeError):
        return False, f"SMOKE TEST FAILED: {url} answered 200 without genres and model: {response.text[:300]}"
    if expect_version and version != expect_version:
        return False, f"SMOKE TEST FAILED: {url} serves model {version}, expected {expect_version}"
    return True, f"smoke test passed: {url} -> genres {genres}, model {body['model'].get('name')} {version}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--expect-version", default=None)
    parser.add_argument("--private", action="store_true",
                        help="authenticate with `gcloud auth print-identity-token` (allow_unauthenticated=false)")
    parser.add_argument("--patience", type=float, default=180.0, help="seconds to keep retrying 5xx/429/401/403 and connection errors")
    args = parser.parse_args(argv)
    token = None
    if args.private:
        done = subprocess.run(["gcloud", "auth", "print-identity-token"], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"SMOKE TEST FAILED: no ID token from gcloud: {done.stderr.strip()[:300]}", file=sys.stderr)
            return 1
        token = done.stdout.strip()
    passed, report = smoke(args.url, args.expect_version, token, args.patience)
    print(report, file=sys.stdout if passed else sys.stderr, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
