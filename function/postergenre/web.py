"""The demo page and the OpenAPI document, served by the function itself."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import flask

STATIC = Path(__file__).resolve().parent / "static"
OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"
# Self-contained page: nothing may load from elsewhere; fetch() only to this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=None)
def _read(path: Path) -> bytes:
    return path.read_bytes()


def page() -> flask.Response:
    response = flask.Response(_read(STATIC / "index.html"), 200, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-cache"
    return response


def asset(name: str) -> flask.Response | None:
    """The page's own script and stylesheet (same origin, so the CSP needs no 'unsafe-inline')."""
    if name not in ASSETS:
        return None
    response = flask.Response(_read(STATIC / name), 200, mimetype=ASSETS[name])
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def openapi() -> flask.Response:
    response = flask.Response(_read(OPENAPI), 200, mimetype="application/yaml")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
