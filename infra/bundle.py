"""The Cloud Functions source bundle: git-tracked files of function/, without the bundled model.

Only tracked files go in (``git ls-files``), so a stray ``function/.env``, a local venv or a
cache never reaches the cloud; in the cloud the model comes from the bucket (MODEL_URI).
The zip is byte-identical on every machine for the same files: entries sorted by name (as
strings, never by the platform's path order), fixed timestamps, modes and creator system, and
stored, not deflated - deflate output depends on the zlib build, so two maintainers with the
same tree would upload different objects and Cloud Functions would rebuild. The object name
(an md5, see main.tf) and the function therefore change only when the code does; the bundle is a
few hundred KB either way. (.gitattributes keeps the files' line endings LF on every
checkout, so a Windows clone with core.autocrlf bundles the same bytes too.)

Usage: python infra/bundle.py build/function-source.zip
       python infra/bundle.py --fetch gs://BUCKET/sources/function-<md5>.zip OUT.zip   (make rollback)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "function"
EXCLUDED_DIRS = {"model", "__pycache__", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".tflite"}


def files(root: Path = FUNCTION_DIR) -> list[str]:
    """Tracked files under ``root`` (relative, sorted), minus the bundled model and caches."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(f"{root} is not in a git checkout: the bundle holds tracked files only") from exc
    chosen = []
    for rel in (Path(name) for name in sorted(listed.decode().split("\0")) if name):
        if not EXCLUDED_DIRS & set(rel.parts[:-1]) and rel.suffix not in EXCLUDED_SUFFIXES and (root / rel).is_file():
            chosen.append(rel.as_posix())
    return chosen


def build(out: Path, root: Path = FUNCTION_DIR) -> list[str]:
    """Write the zip (the same bytes on every machine, see the module docstring); returns its file list."""
    out.parent.mkdir(parents=True, exist_ok=True)
    names = files(root)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as bundle:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.create_system = 3  # "Unix": ZipInfo says 0 on Windows, and the byte is in every header
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            bundle.writestr(info, (root / name).read_bytes())
    return names


def fetch(uri: str, out: Path) -> None:
    """Download a deployed bundle; its name carries its md5 (see main.tf), which must match."""
    from postergenre import storage

    bucket, name = storage.parse_uri(uri)
    name = name.rstrip("/")
    data = storage.client().bucket(bucket).blob(name).download_as_bytes()
    expected = Path(name).stem.removeprefix("function-")
    if hashlib.md5(data).hexdigest() != expected:
        raise RuntimeError(f"{uri} does not match the md5 in its name")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--fetch":
        try:
            fetch(sys.argv[2], Path(sys.argv[3]))
        except Exception as exc:  # not deployed, no access: one line, not a traceback
            print(f"bundle: error: cannot fetch {sys.argv[2]}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"{sys.argv[3]}: the deployed source {sys.argv[2]}")
    else:
        target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/function-source.zip")
        print(f"{target}: {len(build(target))} files")
