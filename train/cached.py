"""Arrays computed once and kept in build/cache: named by a digest of everything they depend on.

Backbone features, out-of-fold scores and teacher scores are the expensive steps of a training run
on a small CPU; each is stored under ``<prefix>-<digest of its key>.npy`` with the seconds it took
next to it (``.json``), so a re-run reuses it and the report can still say what it cost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def path(cache: Path, prefix: str, key: dict) -> Path:
    """Where the array of ``key`` lives."""
    return cache / f"{prefix}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.npy"


def load_or_compute(cache: Path | None, prefix: str, key: dict | None, compute: Callable[[], np.ndarray], what: str
                    ) -> tuple[np.ndarray, float | None]:
    """(the array, the seconds computing it took: None for caches made before that was recorded).

    Without ``cache`` or ``key`` (random weights in tests) it is computed and not stored; a new
    array is written under a temporary name and renamed, so an interrupted run leaves no half file."""
    start = time.monotonic()
    if cache is None or key is None:
        return compute(), round(time.monotonic() - start, 1)
    target = path(cache, prefix, key)
    side = target.with_suffix(".json")
    if target.exists():
        print(f"{what}: {target}", flush=True)
        return np.load(target), (json.loads(side.read_text())["seconds"] if side.exists() else None)
    out = compute()
    seconds = round(time.monotonic() - start, 1)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.rename(target)
    side.write_text(json.dumps({"seconds": seconds}), encoding="utf-8")
    print(f"{what}: {target} ({seconds:.0f} s)", flush=True)
    return out, seconds


def fill_memmap(target: Path, shape: tuple[int, ...], fill: Callable[[np.ndarray], T]) -> T:
    """Create a float16 array of ``shape`` on disk, let ``fill`` write it in place (it may not fit in memory),
    then publish it under ``target`` by a rename; returns what ``fill`` returns."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npy")
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
    result = fill(array)
    array.flush()
    del array
    tmp.rename(target)
    return result
