"""HTTP request -> image bytes, for every request form our front ends use.

Raw bytes (image/*, application/octet-stream), base64 text with or without a ``data:`` URL
prefix, multipart/form-data with the file in field ``image``, and JSON ``{"image": "<base64>"}``.
Base64 is read as leniently as the seed's Flask server did, wherever it arrives: the older
Flutter client posts bare base64 labelled ``application/json`` (or a JSON string), not always
canonically padded. What it decodes to must still be an image (imaging.py checks).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import flask
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from postergenre.errors import CodedError

_DATA_URL = re.compile(rb"^\s*data:[^,]{0,200},", re.IGNORECASE)
_BASE64_TEXT = re.compile(rb"^[\"']?[A-Za-z0-9+/=_\-\s]+[\"']?$")
_URL_SAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


class InputError(CodedError):
    """A request whose body cannot be read as an image upload (HTTP 400 or 413)."""


def too_large(limit: int) -> InputError:
    return InputError("payload_too_large", f"The request body is larger than {limit} bytes.", 413)


def decode_base64(text: bytes | str) -> bytes:
    """Base64, standard or URL-safe, with whitespace and line breaks anywhere, missing or excess
    ``=`` padding, an optional data: URL prefix, optionally wrapped in quotes."""
    raw = text.encode("latin-1", "replace") if isinstance(text, str) else text
    raw = _DATA_URL.sub(b"", raw.strip().strip(b"\"'"), count=1)
    compact = raw.translate(_URL_SAFE_TO_STANDARD, b" \t\r\n\v\f").rstrip(b"=")  # one copy of a large body
    padding = -len(compact) % 4
    compact = compact + b"=" * padding if padding else compact
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("invalid_base64", "The body is not valid base64 image data.") from exc
    if not data:
        raise InputError("empty_body", "The request contained no image data.")
    return data


def _looks_like_base64(body: bytes, mimetype: str) -> bool:
    if _DATA_URL.match(body[:256]):
        return True
    if mimetype.startswith("text/"):
        return not body.startswith(_IMAGE_MAGIC)
    if body.startswith(_IMAGE_MAGIC):
        return False
    return bool(_BASE64_TEXT.match(body[:4096])) and bool(_BASE64_TEXT.match(body))


def _from_json(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except RecursionError as exc:
        raise InputError("invalid_json", "The JSON body is nested too deeply.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        if _looks_like_base64(body, ""):  # base64 labelled JSON (the Flutter client)
            return decode_base64(body)
        raise InputError("invalid_json", "The body is not valid JSON.") from exc
    if isinstance(payload, str):  # a JSON string holding the base64
        return decode_base64(payload)
    if not isinstance(payload, dict) or "image" not in payload:
        raise InputError("missing_image", 'JSON bodies must be an object with an "image" field holding base64 data.')
    if not isinstance(payload["image"], str):
        raise InputError("invalid_image_field", 'The "image" field must be a base64 string.')
    return decode_base64(payload["image"])


def _abandon_body(request: flask.Request) -> None:
    """Mark the body as read: functions-framework reads any unread body after the response is
    made (``read_request``), which would re-read a refused or stalled body and turn our 4xx into
    its own HTML 500. The server closes or drains the connection itself."""
    request._cached_data = b""


def _read_body(request: flask.Request, max_bytes: int) -> bytes:
    """The whole body, 413 past ``max_bytes``: a chunked body has no length to check up front,
    and Werkzeug stops reading it at the limit without saying so; one byte more tells."""
    if request.content_length is not None and request.content_length > max_bytes:
        _abandon_body(request)
        raise too_large(max_bytes)
    request.max_content_length = max_bytes
    request.max_form_memory_size = max_bytes  # a base64 form field may be as large as the body
    body = request.get_data(cache=True)  # forms are parsed from this cached copy
    if request.content_length is None and len(body) >= max_bytes and request.environ["wsgi.input"].read(1):
        raise too_large(max_bytes)
    return body


def read_body(request: flask.Request, max_bytes: int) -> bytes:
    """The raw body (cached on the request), as an InputError when it is over ``max_bytes`` (413),
    stalled (408) or cut short (400). Batches (batch.py) and single uploads read it here."""
    try:
        return _read_body(request, max_bytes)
    except RequestEntityTooLarge as exc:
        raise too_large(max_bytes) from exc
    except ClientDisconnected as exc:
        _abandon_body(request)
        if isinstance(exc.__context__, TimeoutError):  # the read timeout of function/serve.py
            raise InputError("request_timeout", "The request body stopped arriving.", 408) from exc
        raise InputError("incomplete_body", "The request body ended before its declared length.") from exc


def read_image_bytes(request: flask.Request, max_bytes: int) -> bytes:
    """The posted image's bytes, or an InputError (400 bad form, 413 over ``max_bytes``)."""
    mimetype = (request.mimetype or "").lower()
    body = read_body(request, max_bytes)
    try:
        if not body:
            data = b""
        elif mimetype == "multipart/form-data":
            upload = request.files.get("image")
            if upload is not None:
                data = upload.read()
            elif request.form.get("image"):
                data = decode_base64(request.form["image"])
            else:
                raise InputError("missing_file", "multipart/form-data requests need the image in a field named 'image'.")
        elif mimetype == "application/x-www-form-urlencoded" and request.form.get("image"):
            data = decode_base64(request.form["image"])
        elif mimetype == "application/json" or mimetype.endswith("+json"):
            data = _from_json(body)
        elif _looks_like_base64(body, mimetype):
            data = decode_base64(body)
        else:
            data = body
    except RequestEntityTooLarge as exc:  # the body fits (read_body checked): Werkzeug's part count tripped
        raise InputError("too_many_parts", f"The form has more than {request.max_form_parts} parts.", 413) from exc
    if not data:
        raise InputError("empty_body", "The request contained no image data.")
    return data
