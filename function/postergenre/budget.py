"""The memory model of one request, and the process-wide budget of decode memory that enforces it.

Why: an instance over its memory limit is killed with every request in flight, and a 300 KB
PNG can unpack to hundreds of MB. So every decode states its cost from the image header before
a pixel is decoded, and the process admits decodes only while their costs fit in what the
instance has left.

Cost of one decode (bytes), from the header (``estimate``), measured per format and mode by
``tests/bench/run.py --memory-only`` (peak RSS minus warm base, see function/README.md "Limits"):

* Pillow stores a decoded pixel in 1 byte (modes 1, L, P), 2 (I;16) or 4 (all others), plus
  one row pointer per line (8 bytes, ``ROW_BYTES`` allows for the copies' rows too).
* What is alive at full size on the way to the model input (imaging.decode): the decoded image,
  and at most one full-size copy: P/PA/1 are converted before resizing (P: 1 + 4, 1: 1 + 1),
  alpha images are premultiplied by Pillow's resize (4 + 4), 16-bit/float images are resized as
  they are (2 or 4). RGB, L, CMYK, YCbCr are resized directly (no copy). Alpha is flattened,
  modes converted and EXIF rotation applied at the model's input size, where they cost nothing.
  ``BYTES_PER_PIXEL`` holds the peak per mode, with WebP's extra decoder-side canvases and libtiff's strip buffers.
* JPEG is decoded at the reduced scale libjpeg's draft mode picks (1/2, 1/4, 1/8, never below the
  input size), so the pixel terms use the decoded size; but a JPEG with more than one scan
  (progressive) keeps every DCT coefficient of the full-size image: 2 bytes per coefficient,
  i.e. 2 bytes per pixel per component at that component's sampling.
* The encoded bytes twice: the request body and, for base64 bodies, the decoded copy.

Budget: the instance's ``MEMORY_MB`` minus the measured warm processes (``BASE_MB``: gunicorn,
Python, Flask, Pillow, numpy, LiteRT and the model's interpreters) minus a safety margin
(``MARGIN_MB``: allocator slack, response buffers, request bodies in flight) is the decode budget
of the process. One request may use all of it (decoding less is preferred to rejecting more);
requests whose costs together exceed it wait up to ``BUSY_WAIT_SECONDS`` for earlier ones to
finish, then get 503 ``busy`` with Retry-After. Anything that alone exceeds the budget gets 400
``too_many_pixels`` without being decoded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from postergenre.allocator import release_free_memory
from postergenre.errors import CodedError

MIB = 1024 * 1024
# Warm serving processes with the bundled model and 2 interpreters, both signatures allocated:
# Python, Flask, numpy, Pillow and LiteRT, plus the model's bytes once and its weights widened to
# fp32 in every interpreter, so it grows with the model. Measured by make bench ("base_mb" in
# tests/bench/results/memory-*.json): re-measure when the model changes, with either runtime
# (`--function-python .venv-tflite/bin/python` for the tflite-runtime fallback; make
# test-function-tflite runs it with a conservative WARM_BASE_MB=330).
BASE_MB = 295
MARGIN_MB = 48
ROW_BYTES = 16
FIXED_BYTES = 8 * MIB  # decoder state, small buffers, the model-sized outputs
# Peak bytes alive per decoded pixel, by the mode Pillow opens the image in (see module docstring).
BYTES_PER_PIXEL = {"1": 2, "L": 1, "P": 5, "I;16": 6, "I;16L": 6, "I;16B": 6, "I;16N": 6}
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
DEFAULT_BYTES_PER_PIXEL = 4
ALPHA_BYTES_PER_PIXEL = 8
PALETTE_ALPHA_BYTES_PER_PIXEL = 9
WEBP_EXTRA_BYTES_PER_PIXEL = 8  # libwebp's animation decoder keeps two canvases of its own
TIFF_EXTRA_BYTES_PER_PIXEL = 1  # libtiff's strip buffers (rounded up from make bench --memory-only)


def estimate(
    fmt: str, mode: str, decoded_size: tuple[int, int], transparency: bool = False, coefficient_bytes: int = 0, encoded_bytes: int = 0
) -> int:
    """Peak bytes one decode holds beyond the warm process (see the module docstring); the request
    body and its base64-decoded copy (``2 * encoded_bytes``) are alive meanwhile too."""
    width, height = decoded_size
    if mode in ALPHA_MODES:
        per_pixel = ALPHA_BYTES_PER_PIXEL
    elif mode == "P" and transparency:
        per_pixel = PALETTE_ALPHA_BYTES_PER_PIXEL
    else:
        per_pixel = BYTES_PER_PIXEL.get(mode, DEFAULT_BYTES_PER_PIXEL)
    per_pixel += {"WEBP": WEBP_EXTRA_BYTES_PER_PIXEL, "TIFF": TIFF_EXTRA_BYTES_PER_PIXEL}.get(fmt, 0)
    return width * height * per_pixel + height * ROW_BYTES + coefficient_bytes + 2 * encoded_bytes + FIXED_BYTES


def decode_budget_bytes(memory_mb: int, base_mb: int = BASE_MB) -> int:
    """What the process may spend on decoding at once: instance memory minus base and margin."""
    return max(memory_mb - base_mb - MARGIN_MB, 16) * MIB


class Busy(CodedError):
    """The decode budget stayed full for the whole wait (HTTP 503 with Retry-After)."""

    status = 503


class DecodeBudget:
    """A counter of decode bytes in flight: ``reserve`` blocks while the sum would exceed ``total``."""

    def __init__(self, total: int, wait_s: float, retry_after_s: int) -> None:
        self.total = total
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self.in_flight = 0
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def reserve(self, cost: int) -> Iterator[None]:
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while self.in_flight and self.in_flight + cost > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(
                        "busy",
                        "The server is decoding other large images; retry shortly.",
                        headers={"Retry-After": str(self.retry_after_s)},
                    )
                self._cond.wait(left)
            self.in_flight += cost
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= cost
                idle = self.in_flight == 0
                self._cond.notify_all()
            if idle:
                release_free_memory()
