"""Structured JSON log lines on stdout, the format Cloud Logging parses. Never image bytes."""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid

_lock = threading.Lock()
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


def request_id(headers) -> str:
    """Trace id from X-Cloud-Trace-Context ("TRACE/SPAN;o=1"), else a sane X-Request-Id, else new."""
    trace = headers.get("X-Cloud-Trace-Context", "").split("/", 1)[0].strip()
    if _SAFE_ID.match(trace):
        return trace
    given = headers.get("X-Request-Id", "").strip()
    return given if _SAFE_ID.match(given) else uuid.uuid4().hex


def emit(severity: str, message: str, **fields) -> None:
    line = json.dumps({"severity": severity, "message": message, **fields}, default=str, separators=(",", ":"))
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
