"""The one error shape the API returns: {"error": {"code": ..., "message": ...}} with a status."""

from __future__ import annotations

# What a bug is answered with (HTTP 500): no detail, never a stack trace.
INTERNAL_CODE = "internal"
INTERNAL_MESSAGE = "Unexpected server error."


def body(code: str, message: str) -> dict:
    """The error object, as a response body or as one slot of a batch or catalogue output."""
    return {"error": {"code": code, "message": message}}


class CodedError(Exception):
    """An expected failure with a stable machine-readable ``code`` and a human ``message``."""

    status = 400

    def __init__(self, code: str, message: str, status: int | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or self.status
        self.headers = headers or {}


class ModelUnavailable(CodedError, RuntimeError):
    """The model cannot be served right now (HTTP 503); a later request retries the load."""

    status = 503
