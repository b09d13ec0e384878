"""Batch requests in the Vertex AI shape; each poster is answered as a single request is (answer.py).

``POST /`` with JSON ``{"instances": [{"b64": "<base64>"} | {"image": "<base64>"}, ...]}`` ->
``{"predictions": [<answer> | {"error": {...}}, ...], "model": {...}}`` in request order. A slot
that is not a readable image gets its own error; the others are still answered (HTTP 200).

Limits (the same model as a single request): the body is bounded by MAX_UPLOAD_BYTES, so the
JSON text and its parsed strings hold at most about twice that; instances are decoded one at a
time and each one's text is released once decoded, so the pixel memory of a batch is that of one
poster. MAX_BATCH bounds how long one request holds a worker: about MAX_BATCH x the latency of one
poster (measured by make bench, with and without explanations: tests/bench/results/, see tests/README.md).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

import flask

from postergenre import answer, errors, inputs
from postergenre.inputs import InputError

if TYPE_CHECKING:
    from postergenre.imaging import Limits
    from postergenre.model import Predictor

INSTANCE_FIELDS = ("b64", "image")


def instances(request: flask.Request, max_bytes: int, max_batch: int) -> list | None:
    """The request's instances when it is a batch (a JSON object with "instances"), else None."""
    mimetype = (request.mimetype or "").lower()
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        return None
    body = inputs.read_body(request, max_bytes)  # cached: a single-image JSON body is parsed from it again
    if b'"instances"' not in body:  # base64 has no quotes: cheap test before parsing
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None  # the single-image path reports invalid_json
    except RecursionError as exc:  # absurdly deep nesting
        raise InputError("invalid_json", "The body nests JSON too deeply.") from exc
    if not isinstance(payload, dict) or "instances" not in payload:
        return None
    items = payload["instances"]
    if not isinstance(items, list):
        raise InputError("invalid_instances", '"instances" must be a list of {"b64": "<base64>"} objects.')
    if not items:
        raise InputError("empty_batch", '"instances" is empty: send at least one poster.')
    if len(items) > max_batch:
        raise InputError("too_many_instances", f"A batch holds at most {max_batch} instances; this one has {len(items)}.")
    return items


def instance_bytes(item: object) -> bytes:
    """One instance -> image bytes; every base64 form a single request accepts is accepted."""
    value = next((item[f] for f in INSTANCE_FIELDS if f in item), None) if isinstance(item, dict) else None
    if isinstance(value, dict):  # Vertex AI nests binary data as {"image": {"b64": ...}}
        value = value.get("b64")
    if not isinstance(value, str):
        raise InputError("invalid_instance", 'Each instance must be {"b64": "<base64>"} or {"image": "<base64>"}.')
    return inputs.decode_base64(value)


def predict(items: list, get_predictor: Callable[[], Predictor], limits: Limits, explain_too: bool) -> dict:
    """Answer every instance in order. Bad instances fail alone; a model fault (503) or a model
    that cannot explain (400) fails the whole request. The model is loaded by the first readable
    instance, so a batch of garbage never loads it."""
    from postergenre import imaging

    predictions: list[dict] = []
    predictor = None
    for i, item in enumerate(items):
        items[i] = None  # release this instance's text as soon as it is decoded
        try:
            data = instance_bytes(item)
            del item
            imaging.open_image(data, limits)
            predictor = predictor or get_predictor()
            pixels = imaging.decode(data, predictor.manifest.input, limits)
        except (InputError, imaging.ImageError) as exc:
            predictions.append(errors.body(exc.code, exc.message))
            continue
        predictions.append(answer.poster(predictor.predict(pixels, explain_too), predictor.manifest))
    return {"predictions": predictions, "model": predictor.manifest.describe() if predictor else None}
