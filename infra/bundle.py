"""Build the Cloud Functions source bundle: function/ only, without the bundled model or caches.

In the cloud the model comes from the bucket (MODEL_URI), so the bundle stays small.
Usage: python3 infra/bundle.py build/function-source.zip
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

FUNCTION_DIR = Path(__file__).resolve().parent.parent / "function"
EXCLUDED_DIRS = {"model", "__pycache__", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".tflite"}


def files(root: Path = FUNCTION_DIR) -> list[str]:
    """Relative paths that go into the bundle, sorted."""
    chosen = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not EXCLUDED_DIRS & set(rel.parts[:-1]) and path.suffix not in EXCLUDED_SUFFIXES:
            chosen.append(rel.as_posix())
    return chosen


def build(out: Path, root: Path = FUNCTION_DIR) -> list[str]:
    """Write a reproducible zip (fixed timestamps, sorted entries) and return its file list."""
    out.parent.mkdir(parents=True, exist_ok=True)
    names = files(root)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            bundle.writestr(info, (root / name).read_bytes(), zipfile.ZIP_DEFLATED)
    return names


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/function-source.zip")
    print(f"{target}: {len(build(target))} files")
