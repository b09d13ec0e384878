"""Configuration from environment variables, with safe defaults (documented in README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent / "model"
GEN2_MAX_REQUEST_BYTES = 32 * 1024 * 1024


def _int(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        value = default
    return min(max(value, low), high)


@dataclass(frozen=True)
class Settings:
    model_uri: str
    max_upload_bytes: int
    max_image_pixels: int
    allowed_origins: tuple[str, ...]
    retry_after_s: int
    interpreters: int
    interpreter_threads: int
    storage_deadline_s: int
    max_batch: int = 16  # instances per batch request (see batch.py)

    @classmethod
    def from_env(cls) -> "Settings":
        origins = tuple(o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "*").split(",") if o.strip()) or ("*",)
        threads = _int("THREADS", (os.cpu_count() or 1) * 4, 1, 1024)
        return cls(
            model_uri=os.environ.get("MODEL_URI", "").strip() or str(BUNDLED_MODEL_DIR),
            max_upload_bytes=_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024, 1, GEN2_MAX_REQUEST_BYTES),
            max_image_pixels=_int("MAX_IMAGE_PIXELS", 40_000_000, 1, 500_000_000),
            allowed_origins=origins,
            retry_after_s=_int("RETRY_AFTER_SECONDS", 5, 1, 3600),
            interpreters=_int("INTERPRETERS", min(os.cpu_count() or 1, threads), 1, 64),
            interpreter_threads=_int("INTERPRETER_THREADS", 1, 1, 64),
            storage_deadline_s=_int("STORAGE_DEADLINE_SECONDS", 30, 1, 600),
            max_batch=_int("MAX_BATCH", 16, 1, 256),
        )
