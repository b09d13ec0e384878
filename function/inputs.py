"""HTTP request -> image bytes, for every request form our front ends use.

Raw bytes (image/*, application/octet-stream), base64 text with or without a ``data:`` URL
prefix (the older Flutter client), multipart/form-data with the file in field ``image``, and
JSON ``{"image": "<base64>"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import flask
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from errors import CodedError

_DATA_URL = re.compile(rb"^\s*data:[^,]{0,200},", re.IGNORECASE)
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/=_\-\s]+$")
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


class InputError(CodedError):
    """A request whose body cannot be read as an image upload (HTTP 400 or 413)."""


def too_large(limit: int) -> InputError:
    return InputError("payload_too_large", f"The request body is larger than {limit} bytes.", 413)


def decode_base64(text: bytes | str) -> bytes:
    """Base64 (standard or URL-safe, padding optional, whitespace ignored), optional data: URL prefix."""
    raw = text.encode("latin-1", "replace") if isinstance(text, str) else text
    raw = _DATA_URL.sub(b"", raw, count=1)
    compact = re.sub(rb"\s+", b"", raw).replace(b"-", b"+").replace(b"_", b"/")
    compact += b"=" * (-len(compact) % 4)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError("invalid_base64", "The body is not valid base64 image data.") from exc
    if not data:
        raise InputError("empty_body", "The request contained no image data.")
    return data


def _looks_like_base64(body: bytes, mimetype: str) -> bool:
    if mimetype.startswith("text/") or _DATA_URL.match(body[:256]):
        return True
    if body.startswith(_IMAGE_MAGIC):
        return False
    return bool(_BASE64_TEXT.match(body[:4096])) and bool(_BASE64_TEXT.match(body))


def _from_json(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("invalid_json", "The body is not valid JSON.") from exc
    if not isinstance(payload, dict) or "image" not in payload:
        raise InputError("missing_image", 'JSON bodies must be an object with an "image" field holding base64 data.')
    if not isinstance(payload["image"], str):
        raise InputError("invalid_image_field", 'The "image" field must be a base64 string.')
    return decode_base64(payload["image"])


def read_image_bytes(request: flask.Request, max_bytes: int) -> bytes:
    """The posted image's bytes, or an InputError (400 bad form, 413 over ``max_bytes``)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large(max_bytes)
    request.max_content_length = max_bytes  # also bounds chunked bodies and form parsing
    mimetype = (request.mimetype or "").lower()
    try:
        body = request.get_data(cache=True)  # forms below are parsed from this cached copy
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
    except RequestEntityTooLarge as exc:
        raise too_large(max_bytes) from exc
    except ClientDisconnected as exc:
        raise InputError("incomplete_body", "The request body ended before its declared length.") from exc
    if not data:
        raise InputError("empty_body", "The request contained no image data.")
    return data
