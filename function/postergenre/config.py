"""Configuration from environment variables, with safe defaults (documented in README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from postergenre import budget

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
GEN2_MAX_REQUEST_BYTES = 32 * 1024 * 1024


def _int(name: str, default: int, low: int, high: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        value = default
    return min(max(value, low), high)


def warm_base_mb() -> int:
    """The warm serving processes' memory the decode budget leaves room for (see budget.BASE_MB)."""
    return _int("WARM_BASE_MB", budget.BASE_MB, 0, 32768)


@dataclass(frozen=True)
class Settings:
    model_uri: str
    max_upload_bytes: int
    memory_mb: int
    threads: int
    decode_budget_bytes: int
    decode_cpu_seconds: float
    max_jpeg_scans: int
    busy_wait_s: float
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
        memory_mb = _int("MEMORY_MB", 512, 128, 32768)  # the instance's memory, set by Terraform
        return cls(
            model_uri=os.environ.get("MODEL_URI", "").strip() or str(BUNDLED_MODEL_DIR),
            max_upload_bytes=_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024, 1, GEN2_MAX_REQUEST_BYTES),
            memory_mb=memory_mb,
            threads=threads,
            decode_budget_bytes=budget.decode_budget_bytes(memory_mb, warm_base_mb()),
            decode_cpu_seconds=_int("DECODE_CPU_SECONDS", 3, 1, 600),
            max_jpeg_scans=_int("MAX_JPEG_SCANS", 100, 1, 100_000),
            busy_wait_s=_int("BUSY_WAIT_SECONDS", 5, 0, 600),
            allowed_origins=origins,
            retry_after_s=_int("RETRY_AFTER_SECONDS", 5, 1, 3600),
            interpreters=_int("INTERPRETERS", min(os.cpu_count() or 1, threads), 1, 64),
            interpreter_threads=_int("INTERPRETER_THREADS", 1, 1, 64),
            storage_deadline_s=_int("STORAGE_DEADLINE_SECONDS", 30, 1, 600),
            max_batch=_int("MAX_BATCH", 16, 1, 256),
        )
