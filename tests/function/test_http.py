"""The HTTP contract through create_app(...).test_client(): request forms, JSON, errors, CORS."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading

import pytest

from tests.conftest import FUNCTION_DIR, ROOT
from tests.helpers.images import poster


def _ok(response, colour: str) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"genres", "scores", "model", "thresholds", "result"}
    assert body["genres"][0] == colour
    assert body["result"] == body["genres"]
    assert set(body["scores"]) == {"Red", "Green", "Blue"}
    assert body["model"]["version"] == "test-1" and len(body["model"]["sha256"]) == 64
    return body


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    return body


@pytest.mark.parametrize("colour", ["Red", "Green", "Blue"])
def test_raw_bytes_classified_by_colour(client, colour):
    body = _ok(client.post("/", data=poster(colour), content_type="image/jpeg"), colour)
    assert body["scores"][colour] > 0.9
    assert body["genres"] == [colour]


def test_octet_stream_and_no_content_type(client):
    _ok(client.post("/", data=poster("Blue", fmt="PNG"), content_type="application/octet-stream"), "Blue")
    _ok(client.post("/", data=poster("Green", fmt="PNG")), "Green")


@pytest.mark.parametrize("prefix", ["", "data:image/jpeg;base64,"])
@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", "application/octet-stream", None])
def test_base64_text_bodies(client, prefix, content_type):
    text = prefix + base64.b64encode(poster("Red")).decode()
    kwargs = {"content_type": content_type} if content_type else {}
    _ok(client.post("/", data=text, **kwargs), "Red")


def test_base64_with_line_breaks_and_urlsafe(client):
    raw = base64.b64encode(poster("Green")).decode()
    wrapped = "\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    _ok(client.post("/", data=wrapped, content_type="text/plain"), "Green")
    _ok(client.post("/", data=base64.urlsafe_b64encode(poster("Green")).rstrip(b"="), content_type="text/plain"), "Green")


def test_multipart_field_image(client):
    data = {"image": (io.BytesIO(poster("Blue")), "poster.jpg", "image/jpeg")}
    _ok(client.post("/", data=data, content_type="multipart/form-data"), "Blue")


def test_multipart_without_image_field(client):
    data = {"other": (io.BytesIO(poster("Blue")), "poster.jpg")}
    _error(client.post("/", data=data, content_type="multipart/form-data"), 400, "missing_file")


def test_form_urlencoded_image_field(client):
    encoded = base64.b64encode(poster("Red")).decode()
    _ok(client.post("/", data={"image": encoded}), "Red")


@pytest.mark.parametrize("prefix", ["", "data:image/png;base64,"])
def test_json_image(client, prefix):
    payload = {"image": prefix + base64.b64encode(poster("Green", fmt="PNG")).decode()}
    _ok(client.post("/", json=payload), "Green")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "missing_image"),
        ('{"img": "x"}', "missing_image"),
        ('{"image": 42}', "invalid_image_field"),
        ('{"image": null}', "invalid_image_field"),
        ('{"image": "%%%not-base64%%%"}', "invalid_base64"),
        ('{"image": ""}', "empty_body"),
    ],
)
def test_json_errors(client, body, code):
    _error(client.post("/", data=body, content_type="application/json"), 400, code)


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        (b"", "image/jpeg", "empty_body"),
        (b"\x00", "application/octet-stream", "not_an_image"),
        (b"GIF89a-garbage-that-is-not-a-gif", "image/gif", "not_an_image"),
        (b"%PDF-1.4 fake pdf", "application/pdf", "not_an_image"),
        ("<html><body>hi</body></html>", "text/html", "invalid_base64"),
        ("hello, world!", "text/plain", "invalid_base64"),
        ("this is not an image", "text/plain", "not_an_image"),  # valid base64 letters, garbage bytes
    ],
)
def test_bad_bodies_are_400(client, data, content_type, code):
    _error(client.post("/", data=data, content_type=content_type), 400, code)


def test_truncated_jpeg_is_400(client):
    jpeg = poster("Red", size=(600, 900))
    _error(client.post("/", data=jpeg[: len(jpeg) // 2], content_type="image/jpeg"), 400, "undecodable_image")


def test_decompression_bomb_is_400(client):
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")  # ~50 KB file, 400 megapixels
    assert len(out.getvalue()) < 200_000
    _error(client.post("/", data=out.getvalue(), content_type="image/png"), 400, "too_many_pixels")


def test_body_over_limit_is_413(make_app):
    app, _ = make_app(MAX_UPLOAD_BYTES=1000)
    _error(app.test_client().post("/", data=b"\xff" * 5000, content_type="image/jpeg"), 413, "payload_too_large")
    _error(app.test_client().post("/", data=b"\xff" * 5000, content_type="multipart/form-data; boundary=x"), 413, "payload_too_large")


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_405(client, method):
    response = client.open("/", method=method, data=b"x")
    _error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_get_root_without_html_is_405_json(client):
    _error(client.get("/", headers={"Accept": "application/json"}), 405, "method_not_allowed")


def test_unknown_path_is_404(client):
    _error(client.get("/nope", headers={"Accept": "application/json"}), 404, "not_found")


def test_cors_preflight_and_headers(client):
    pre = client.options("/", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert pre.headers["Access-Control-Allow-Headers"] == "content-type"
    assert client.post("/", data=b"").headers["Access-Control-Allow-Origin"] == "*"


def test_allowed_origins_list(make_app):
    app, _ = make_app(ALLOWED_ORIGINS="https://a.example, https://b.example")
    c = app.test_client()
    ok = c.post("/", data=poster("Red"), headers={"Origin": "https://b.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in ok.headers["Vary"]
    assert "Access-Control-Allow-Origin" not in c.post("/", data=poster("Red"), headers={"Origin": "https://evil.example"}).headers


def test_healthz_does_not_force_a_load(make_app):
    app, main = make_app()
    c = app.test_client()
    assert c.get("/healthz").get_json() == {"status": "not_loaded", "model": None}
    assert main.MODEL.loads == 0
    c.post("/", data=poster("Red"))
    health = c.get("/healthz").get_json()
    assert health["status"] == "ready" and health["model"]["version"] == "test-1"


def test_request_id_from_trace_header(client):
    response = client.post("/", data=poster("Red"), headers={"X-Cloud-Trace-Context": "abc123def/1;o=1"})
    assert response.headers["X-Request-Id"] == "abc123def"
    assert len(client.post("/", data=b"").headers["X-Request-Id"]) == 32


def test_log_line_per_request_without_image_bytes(client, capsys):
    capsys.readouterr()
    client.post("/", data=base64.b64encode(poster("Red")), content_type="text/plain", headers={"X-Request-Id": "req-1"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    entry = next(line for line in lines if line.get("request_id") == "req-1")
    assert entry["severity"] == "INFO" and entry["status"] == 200 and entry["model_version"] == "test-1"
    assert entry["latency_ms"] >= 0
    assert "/9j/" not in json.dumps(lines)  # no base64 JPEG content in the logs


def test_concurrent_first_requests_load_once(make_app):
    app, main = make_app()
    results: list[int] = []
    barrier = threading.Barrier(12)

    def hit():
        c = app.test_client()
        barrier.wait()
        results.append(c.post("/", data=poster("Blue")).status_code)

    threads = [threading.Thread(target=hit) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 12
    assert main.MODEL.loads == 1


def test_failed_load_gives_503_then_recovers(make_app, copy_model):
    broken = copy_model()
    good = (broken / "model.tflite").read_bytes()
    (broken / "model.tflite").write_bytes(good[: len(good) // 2])  # truncated: sha256 mismatch
    app, main = make_app(MODEL_URI=broken, RETRY_AFTER_SECONDS=7)
    c = app.test_client()
    response = c.post("/", data=poster("Red"))
    _error(response, 503, "model_integrity")
    assert response.headers["Retry-After"] == "7"
    assert c.get("/healthz").get_json()["status"] == "failed"
    (broken / "model.tflite").write_bytes(good)
    _ok(c.post("/", data=poster("Red")), "Red")
    assert main.MODEL.loads == 2


def test_missing_model_is_503(make_app, tmp_path):
    app, _ = make_app(MODEL_URI=tmp_path / "nothing-here")
    _error(app.test_client().post("/", data=poster("Red")), 503, "model_unreadable")


def test_bad_input_does_not_load_the_model(make_app):
    app, main = make_app()
    app.test_client().post("/", data=b"not an image at all \x00\x01")
    assert main.MODEL.loads == 0


def test_serving_never_imports_tensorflow(model_dir):
    """Fresh interpreter with TensorFlow installed: import, load and predict, then look."""
    code = f"""
import sys, functions_framework
app = functions_framework.create_app(target="predict", source={str(FUNCTION_DIR / "main.py")!r})
from tests.helpers.images import poster
r = app.test_client().post("/", data=poster("Red"))
assert r.status_code == 200, r.data
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={"MODEL_URI": str(model_dir), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_import_is_light():
    """gunicorn's master imports main.py before forking: numpy, Pillow and LiteRT must wait for
    the worker's first request (each would otherwise be resident in both processes)."""
    code = "import sys, main; print(sorted(m for m in ('numpy', 'PIL', 'ai_edge_litert', 'tflite_runtime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=FUNCTION_DIR, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
