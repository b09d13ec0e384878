"""Structured JSON log lines on stdout, the format Cloud Logging parses. Never image bytes."""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid

_lock = threading.Lock()
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
# Cloud Logging drops entries over 256 KB: every string field is clipped, so a line stays small
# whatever a client sends (a 1 MB URL, a huge User-Agent).
MAX_FIELD_CHARS = 2048


def clip(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text) - limit} more]"


def _clipped(value):
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, dict):
        return {key: _clipped(item) for key, item in value.items()}
    return value


def request_id(headers) -> str:
    """Trace id from X-Cloud-Trace-Context ("TRACE/SPAN;o=1"), else a sane X-Request-Id, else new."""
    trace = headers.get("X-Cloud-Trace-Context", "").split("/", 1)[0].strip()
    if _SAFE_ID.match(trace):
        return trace
    given = headers.get("X-Request-Id", "").strip()
    return given if _SAFE_ID.match(given) else uuid.uuid4().hex


def emit(severity: str, message: str, **fields) -> None:
    line = json.dumps(_clipped({"severity": severity, "message": message, **fields}), default=str, separators=(",", ":"))
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
