"""glibc's allocator, tuned so that memory freed after a large decode goes back to the system.

Why: the decode budget (budget.py) assumes that an instance returns to its warm base between
bursts; with glibc's defaults freed image memory stays in the process (RSS never falls).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

_libc = None
_tuned = False


def tune_allocator() -> None:
    """Make freed image memory go back to the system (RSS returns to the base after a burst).

    Pillow allocates images in 16 MiB blocks through malloc; glibc raises its mmap threshold after
    the first large free, so later blocks land in heap arenas that are never returned. A fixed
    threshold keeps large blocks in mmap (unmapped on free), and Pillow keeps no block cache.
    """
    global _libc, _tuned
    if _tuned:
        return
    _tuned = True
    from PIL import Image

    Image.core.set_blocks_max(0)
    path = ctypes.util.find_library("c")
    try:
        _libc = ctypes.CDLL(path) if path else None
        if _libc is not None:
            _libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD 1 MiB: fixed, disables the dynamic raise
    except (OSError, AttributeError):  # not glibc (musl, macOS): the allocator stays as it is
        _libc = None


def release_free_memory() -> None:
    """Return freed heap pages to the system (glibc malloc_trim); a no-op elsewhere."""
    if _libc is not None:
        with contextlib.suppress(AttributeError):
            _libc.malloc_trim(0)
