"""The one error shape the API returns: {"error": {"code": ..., "message": ...}} with a status."""

from __future__ import annotations


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
