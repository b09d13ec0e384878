"""The instance's model, loaded on first use, once, under a lock.

This module is light on purpose: gunicorn's master imports main.py (and so this file) before it
forks the worker, and everything imported there is resident twice. numpy, Pillow and LiteRT are
imported by the worker when the first request needs them.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from postergenre import logs
from postergenre.errors import ModelUnavailable

if TYPE_CHECKING:
    from postergenre.model import Predictor


class LazyModel:
    """Loads the predictor on first use, under a lock, once per instance.

    A failed load is not cached: the requests waiting on that attempt fail fast with it, and the
    next request after them tries again.
    """

    def __init__(self, uri: str, pool_size: int = 2, num_threads: int = 1, deadline_s: float = 30.0) -> None:
        self.uri = uri
        self._args = (pool_size, num_threads, deadline_s)
        self._lock = threading.Lock()
        self._predictor: Predictor | None = None
        self._failure: tuple[float, ModelUnavailable] | None = None
        self.loads = 0

    @property
    def loaded(self) -> Predictor | None:
        return self._predictor

    @property
    def last_error(self) -> ModelUnavailable | None:
        return self._failure[1] if self._failure else None

    def get(self) -> Predictor:
        predictor = self._predictor
        if predictor is not None:
            return predictor
        arrived = time.monotonic()
        with self._lock:
            if self._predictor is not None:
                return self._predictor
            if self._failure and self._failure[0] >= arrived:
                raise self._failure[1]  # a load failed while this request waited for it
            self.loads += 1
            try:
                from postergenre.model import load

                self._predictor = load(self.uri, *self._args)
            except Exception as exc:  # any load fault is a 503, never a crash
                error = exc if isinstance(exc, ModelUnavailable) else ModelUnavailable("model_unavailable", f"Model load failed: {exc.__class__.__name__}.")
                self._failure = (time.monotonic(), error)
                logs.emit("ERROR", "model load failed", uri=self.uri, error_code=error.code, detail=error.message)
                raise error from exc
            self._failure = None
            return self._predictor
