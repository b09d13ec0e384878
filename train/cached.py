"""Arrays computed once and kept in build/cache: named by a digest of everything they depend on.

Backbone features and out-of-fold scores are the expensive steps of a training run
on a small CPU; each is stored under ``<prefix>-<digest of its key>.npy`` with the seconds it took
next to it (``.json``), so a re-run reuses it and the report can still say what it cost.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


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
    if target.exists():
        print(f"{what}: {target}", flush=True)
        return np.load(target), seconds(cache, prefix, key)
    out = compute()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npy")
    np.save(tmp, out)
    return out, _publish(tmp, target, start, what)


def load_or_fill(cache: Path | None, prefix: str, key: dict | None, shape: tuple[int, ...], fill: Callable[[np.ndarray], None],
                 what: str) -> np.ndarray:
    """A float16 array of ``shape`` that ``fill`` writes in place: memory-mapped from its cache file when ``key`` is
    given (made on disk first, under a temporary name, and published by a rename; read-only afterwards), else in memory.
    The seconds filling took are kept next to the file, like load_or_compute's."""
    if cache is None or key is None:
        out = np.zeros(shape, np.float16)
        fill(out)
        return out
    target = path(cache, prefix, key)
    if not target.exists():
        start = time.monotonic()
        cache.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp.npy")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
        fill(array)
        array.flush()
        del array
        _publish(tmp, target, start, what)
    else:
        print(f"{what}: {target}", flush=True)
    out = np.load(target, mmap_mode="r")
    if out.shape != shape:
        raise ValueError(f"{target} holds {out.shape}, expected {shape}: remove it")
    return out


def _publish(tmp: Path, target: Path, start: float, what: str) -> float:
    """Rename a finished array into place (an interrupted run leaves no half file) and record the seconds it took."""
    tmp.rename(target)
    took = round(time.monotonic() - start, 1)
    target.with_suffix(".json").write_text(json.dumps({"seconds": took}), encoding="utf-8")
    print(f"{what}: {target} ({took:.0f} s)", flush=True)
    return took


def seconds(cache: Path | None, prefix: str, key: dict | None) -> float | None:
    """What computing a cached array took when it was made (None: not cached, or made before that was recorded)."""
    side = None if cache is None or key is None else path(cache, prefix, key).with_suffix(".json")
    return json.loads(side.read_text())["seconds"] if side is not None and side.exists() else None
