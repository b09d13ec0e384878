"""HTTP entry point ``predict``: routing, CORS, JSON errors and one log line per request.

Decoding (imaging.py), request parsing (inputs.py), the model (model.py) and storage
(storage.py) live in their own modules. Nothing heavy happens at import time: gunicorn imports
this file before it forks, and the model is loaded by the first request that needs it.
"""

from __future__ import annotations

import json
import time

import flask
import functions_framework

from postergenre import allocator, answer, batch, budget, errors, inputs, logs, query, web
from postergenre.config import Settings
from postergenre.errors import CodedError, ModelUnavailable
from postergenre.loader import LazyModel

SETTINGS = Settings.from_env()
MODEL = LazyModel(SETTINGS.model_uri, SETTINGS.interpreters, SETTINGS.interpreter_threads, SETTINGS.storage_deadline_s)
DECODE_BUDGET = budget.DecodeBudget(SETTINGS.decode_budget_bytes, SETTINGS.busy_wait_s, SETTINGS.retry_after_s)
ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"
CLASSIFY_PATHS = ("/", "/analysis")  # /analysis/: the seed server's route, still used by its Flutter client
MAX_URL_BYTES = 8192  # what most servers and proxies accept; longer request lines get 414


def _json(body: dict, status: int = 200, headers: dict | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, separators=(",", ":")), status, mimetype="application/json")
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, code: str, message: str, headers: dict | None = None) -> flask.Response:
    return _json(errors.body(code, message), status, headers)


def _predictor():
    """The instance's predictor; a model that cannot be loaded is a 503 with Retry-After."""
    try:
        return MODEL.get()
    except ModelUnavailable as exc:
        retry = {"Retry-After": str(SETTINGS.retry_after_s)}
        raise CodedError(exc.code, "The model is not available right now; retry shortly.", 503, retry) from exc


def _classify(request: flask.Request) -> flask.Response:
    from postergenre import imaging  # numpy + Pillow: imported by the worker on first use (see loader.py)

    allocator.tune_allocator()
    limits = imaging.Limits(SETTINGS.decode_budget_bytes, SETTINGS.decode_cpu_seconds, SETTINGS.max_jpeg_scans, DECODE_BUDGET)
    explain_too = query.explain_requested(request.args)
    if (items := batch.instances(request, SETTINGS.max_upload_bytes, SETTINGS.max_batch)) is not None:
        return _json(batch.predict(items, _predictor, limits, explain_too))
    data = inputs.read_image_bytes(request, SETTINGS.max_upload_bytes)
    imaging.open_image(data, limits)  # reject non-images before touching the model
    predictor = _predictor()
    prediction = predictor.predict(imaging.decode(data, predictor.manifest.input, limits), explain_too)
    return _json(answer.single(prediction, predictor.manifest))


def _health() -> flask.Response:
    """Readiness without forcing a load: a cold instance says so instead of loading for seconds."""
    predictor = MODEL.loaded
    if predictor is not None:
        return _json({"status": "ready", "model": predictor.manifest.describe()})
    error = MODEL.last_error
    body = {"status": "failed" if error else "not_loaded", "model": None}
    if error:  # load messages name buckets and paths: the details go to the logs (loader.py), not to a public URL
        body["error"] = {"code": error.code, "message": "The model could not be loaded; the function's logs have the details."}
    return _json(body)


def _route(request: flask.Request) -> flask.Response:
    method, path = request.method, request.path.rstrip("/") or "/"
    if len(request.environ.get("RAW_URI") or request.full_path) > MAX_URL_BYTES:
        raise CodedError("uri_too_long", f"The request URL is longer than {MAX_URL_BYTES} bytes.", 414)
    if method == "OPTIONS":
        return flask.Response(status=204)
    if method in ("GET", "HEAD"):
        if path == "/healthz":
            return _health()
        if path == "/openapi.yaml":
            return web.openapi()
        if path.startswith("/static/") and (asset := web.asset(path.removeprefix("/static/"))):
            return asset
        if path == "/" and request.accept_mimetypes.accept_html:
            return web.page()
        if path == "/":
            raise CodedError("method_not_allowed", "POST an image to classify it (GET / with Accept: text/html shows the demo page).",
                             405, {"Allow": ALLOWED_METHODS})
        raise CodedError("not_found", f"No such resource: {logs.clip(path, 200)}.", 404)
    if method == "POST":
        if path not in CLASSIFY_PATHS:
            raise CodedError("not_found", f"No such resource: {logs.clip(path, 200)}; POST images to /.", 404)
        return _classify(request)
    raise CodedError("method_not_allowed", f"Method {method} is not allowed; POST an image.", 405, {"Allow": ALLOWED_METHODS})


def _cors(request: flask.Request, response: flask.Response) -> None:
    origin = request.headers.get("Origin")
    if "*" in SETTINGS.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin and origin in SETTINGS.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    response.headers["Access-Control-Expose-Headers"] = "X-Request-Id"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        asked = request.headers.get("Access-Control-Request-Headers", "Content-Type, X-Request-Id")
        response.headers["Access-Control-Allow-Headers"] = asked
        response.headers["Access-Control-Max-Age"] = "3600"


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    """Classify a posted movie poster; see README.md and openapi.yaml for the contract. Every log
    line of the request (the model's load included) links to its trace (logs.request_scope)."""
    with logs.request_scope(request.headers):
        return _handle(request)


def _handle(request: flask.Request) -> flask.Response:
    started = time.perf_counter()
    request_id = logs.request_id(request.headers)
    error_code = None
    try:
        response = _route(request)
    except CodedError as exc:
        error_code = exc.code
        response = _error(exc.status, exc.code, exc.message, exc.headers)
    except Exception as exc:  # a bug: answer JSON, log the type, never leak a stack trace
        error_code = errors.INTERNAL_CODE
        logs.emit("ERROR", "unhandled exception", request_id=request_id, exception=exc.__class__.__name__)
        response = _error(500, errors.INTERNAL_CODE, errors.INTERNAL_MESSAGE)
    _cors(request, response)
    response.headers["X-Request-Id"] = request_id
    predictor = MODEL.loaded
    logs.emit(
        "ERROR" if response.status_code >= 500 else "WARNING" if response.status_code >= 400 else "INFO",
        f"{request.method} {logs.clip(request.path, 200)} {response.status_code}",
        request_id=request_id,
        status=response.status_code,
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        model_version=predictor.manifest.version if predictor else None,
        error_code=error_code,
        httpRequest={
            "requestMethod": request.method,
            "requestUrl": request.path,  # clipped by logs.emit, like every string field
            "status": response.status_code,
            "requestSize": str(request.content_length or 0),
            "responseSize": str(response.calculate_content_length() or 0),
            "userAgent": request.headers.get("User-Agent", "")[:200],
            "protocol": request.environ.get("SERVER_PROTOCOL", ""),
            "latency": f"{time.perf_counter() - started:.4f}s",
        },
    )
    return response


def _route_everything_through_predict() -> None:
    """functions-framework adds routes of its own (/robots.txt, /favicon.ico) and Flask serves
    function/static/ at /static/; run those through ``predict`` too, so that every response gets
    our JSON errors, request id, log line and headers. The module is loaded inside the app's
    context (functions_framework.create_app), which is where the hook is registered."""
    if flask.has_app_context():
        app = flask.current_app
        app.before_request(lambda: None if flask.request.endpoint == "run" else predict(flask.request))


_route_everything_through_predict()
