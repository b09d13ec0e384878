"""Structured JSON log lines on stdout, the format Cloud Logging parses. Never image bytes.

Inside a request (``request_scope``) every line carries Cloud Logging's trace fields, taken from
the X-Cloud-Trace-Context header Google's front end sets ("TRACE_ID/SPAN_ID;o=1") and the project
in GOOGLE_CLOUD_PROJECT (Terraform sets it: Cloud Functions gen2 does not), so the console
groups a request's lines under its trace: ``logging.googleapis.com/trace``
(projects/PROJECT/traces/TRACE_ID), ``.../spanId`` (the header's decimal span id as the 16 hex
digits Cloud Logging expects) and ``.../trace_sampled``. Without a project (make serve) the
lines have the request id only.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import sys
import threading
import types
import uuid
from collections.abc import Iterator, Mapping

_lock = threading.Lock()
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_TRACE_CONTEXT = re.compile(r"^([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([01]))?$")
_PROJECT_ID = re.compile(r"^[a-z][-a-z0-9:.]{4,61}[a-z0-9]$")  # includes domain-scoped ids (example.com:project)
TRACE = "logging.googleapis.com/trace"
SPAN = "logging.googleapis.com/spanId"
SAMPLED = "logging.googleapis.com/trace_sampled"
_NO_FIELDS: Mapping[str, object] = types.MappingProxyType({})
_request_fields: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar("request_fields", default=_NO_FIELDS)
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


def trace_fields(headers: Mapping[str, str], project: str | None = None) -> dict[str, object]:
    """Cloud Logging's trace fields for a request, or {} (no or malformed header, no project id)."""
    project = (os.environ.get("GOOGLE_CLOUD_PROJECT", "") if project is None else project).strip()
    found = _TRACE_CONTEXT.match(headers.get("X-Cloud-Trace-Context", "").strip())
    if not found or not _PROJECT_ID.match(project):
        return {}
    trace, span, sampled = found.groups()
    fields: dict[str, object] = {TRACE: f"projects/{project}/traces/{trace.lower()}"}
    if span and 0 < int(span) < 2**64:
        fields[SPAN] = f"{int(span):016x}"
    if sampled is not None:
        fields[SAMPLED] = sampled == "1"
    return fields


@contextlib.contextmanager
def request_scope(headers: Mapping[str, str]) -> Iterator[None]:
    """Every line emitted inside (model loads and storage retries too) gets the request's trace fields."""
    token = _request_fields.set(trace_fields(headers))
    try:
        yield
    finally:
        _request_fields.reset(token)


def emit(severity: str, message: str, **fields) -> None:
    record = {"severity": severity, "message": message, **_request_fields.get(), **fields}
    line = json.dumps(_clipped(record), default=str, separators=(",", ":"))
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
