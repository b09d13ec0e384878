"""Configuration from environment variables (documented in README.md), each parsed by its type.

An unset or empty variable takes its default. A value that is not of the variable's type (a
fraction for a whole number, text for a number) or lies outside its range is an error
(``ConfigError``, naming the variable, the value and what it accepts), raised when the function
starts: a deployment with a typo fails to become ready, and the previous revision keeps
serving, instead of running with a setting nobody chose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from postergenre import budget

BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
GEN2_MAX_REQUEST_BYTES = 32 * 1024 * 1024


class ConfigError(ValueError):
    """An environment variable that cannot be used as it is."""


def _number(name: str, kind: type[int] | type[float], default: int | float, low: int | float, high: int | float) -> int | float:
    """The variable ``name`` as ``kind`` within [low, high]; ``default`` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # NaN fails the range test too
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name}={raw!r} is not {what} from {low} to {high} (unset: {default}).")
    return value


def env_int(name: str, default: int, low: int, high: int) -> int:
    """A whole-number setting (also infra/deploy.py's), ConfigError when it is bad."""
    return int(_number(name, int, default, low, high))


def _float(name: str, default: float, low: float, high: float) -> float:
    return float(_number(name, float, default, low, high))


def warm_base_mb() -> int:
    """The warm serving processes' memory the decode budget leaves room for (see budget.BASE_MB)."""
    return env_int("WARM_BASE_MB", budget.BASE_MB, 0, 32768)


@dataclass(frozen=True)
class Settings:
    model_uri: str
    max_upload_bytes: int
    decode_budget_bytes: int
    decode_cpu_seconds: float
    max_jpeg_scans: int
    busy_wait_s: float
    allowed_origins: tuple[str, ...]
    retry_after_s: int
    interpreters: int
    interpreter_threads: int
    storage_deadline_s: int
    max_batch: int  # instances per batch request (see batch.py)
    read_timeout_s: float  # per socket read, function/serve.py only
    port: int  # function/serve.py only; Cloud Functions passes PORT to its own server

    @classmethod
    def from_env(cls) -> Settings:
        origins = tuple(o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "*").split(",") if o.strip()) or ("*",)
        threads = env_int("THREADS", (os.cpu_count() or 1) * 4, 1, 1024)  # gunicorn's worker threads (functions-framework reads it too)
        memory_mb = env_int("MEMORY_MB", 512, 128, 32768)  # the instance's memory, set by Terraform
        return cls(
            model_uri=os.environ.get("MODEL_URI", "").strip() or str(BUNDLED_MODEL_DIR),
            max_upload_bytes=env_int("MAX_UPLOAD_BYTES", 10 * 1024 * 1024, 1, GEN2_MAX_REQUEST_BYTES),
            decode_budget_bytes=budget.decode_budget_bytes(memory_mb, warm_base_mb()),
            decode_cpu_seconds=_float("DECODE_CPU_SECONDS", 3.0, 0.01, 600.0),
            max_jpeg_scans=env_int("MAX_JPEG_SCANS", 100, 1, 100_000),
            busy_wait_s=_float("BUSY_WAIT_SECONDS", 5.0, 0.0, 600.0),
            allowed_origins=origins,
            retry_after_s=env_int("RETRY_AFTER_SECONDS", 5, 1, 3600),
            interpreters=env_int("INTERPRETERS", min(os.cpu_count() or 1, threads), 1, 64),
            interpreter_threads=env_int("INTERPRETER_THREADS", 1, 1, 64),
            storage_deadline_s=env_int("STORAGE_DEADLINE_SECONDS", 30, 1, 600),
            max_batch=env_int("MAX_BATCH", 16, 1, 256),
            read_timeout_s=_float("READ_TIMEOUT_SECONDS", 10.0, 0.1, 3600.0),
            port=env_int("PORT", 8080, 1, 65535),
        )
