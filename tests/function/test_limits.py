"""Issue 11 through the real server (functions-framework + gunicorn, no mocks): memory per request
at the deployed settings, CPU bounds, the seed's Flutter client, and the smaller HTTP findings."""

from __future__ import annotations

import base64
import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers.images import many_scans_jpeg, poster
from tests.helpers.server import FUNCTION_DIR, ServerProcess, serve_command
from tests.helpers.worst import just_over, worst_inputs

MEMORY_MB = 512  # the deployed settings (infra default): 512 MiB, 2 requests at once
THREADS = 2


@pytest.fixture
def deployed(start_server):
    """The bundled model (its real memory) at the deployed memory and concurrency, warmed up."""
    server = start_server(MODEL_URI="", MEMORY_MB=MEMORY_MB, THREADS=THREADS)
    with ThreadPoolExecutor(THREADS) as pool:  # every interpreter of the pool created
        assert set(pool.map(lambda _: requests.post(server.url, data=poster("Red"), timeout=60).status_code, range(4 * THREADS))) == {200}
    return server


def test_worst_accepted_inputs_stay_under_instance_memory(deployed):
    server = deployed
    base = server.rss_bytes()
    inputs = [(worst, worst.encode()) for worst in worst_inputs(MEMORY_MB)]
    server.reset_peak()

    def post(item) -> tuple[str, int, dict]:
        worst, data = item
        r = requests.post(server.url, data=data, headers={"Content-Type": worst.content_type}, timeout=120)
        return worst.name, r.status_code, r.json()

    alone = [post(item) for item in inputs]
    assert [(name, status) for name, status, _ in alone] == [(w.name, 200) for w, _ in inputs], alone
    with ThreadPoolExecutor(THREADS) as pool:
        together = list(pool.map(post, inputs * 2))
    # waiting for the decode budget is the design; a budgeted 503 is allowed, nothing else
    assert all(status == 200 or (status == 503 and body["error"]["code"] == "busy") for _, status, body in together), together
    assert sum(status == 200 for _, status, _ in together) >= len(inputs)
    peak = server.peak_rss_bytes()
    assert peak < MEMORY_MB * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB, base {base / 2**20:.0f} MiB"

    over = just_over(MEMORY_MB)
    r = requests.post(server.url, data=over.encode(), headers={"Content-Type": over.content_type}, timeout=60)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "too_many_pixels")

    time.sleep(1)
    after = server.rss_bytes()
    assert after < base + 48 * 1024 * 1024, f"after {after / 2**20:.0f} MiB, base {base / 2**20:.0f} MiB"


def test_high_resolution_jpeg_is_classified(start_server):
    server = start_server(MEMORY_MB=MEMORY_MB, THREADS=THREADS)
    big = poster("Green", size=(6000, 9000), quality=85)
    r = requests.post(server.url, data=big, headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert r.status_code == 200 and r.json()["genres"] == ["Green"], r.text


def test_pathological_jpeg_scans_are_refused_without_decoding(start_server):
    server = start_server(MEMORY_MB=MEMORY_MB, THREADS=THREADS)
    started = time.monotonic()
    r = requests.post(server.url, data=many_scans_jpeg(10_000), headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "too_many_scans")
    assert time.monotonic() - started < 10  # decoding it in full takes far longer (tests/README.md, Records)
    r = requests.post(server.url, data=many_scans_jpeg(12), headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert r.status_code == 200


def test_decode_cpu_deadline_stops_the_decoder(start_server):
    # scans allowed, CPU allowance 1 s: the worker gives up instead of decoding to the end
    server = start_server(MAX_JPEG_SCANS=100_000, DECODE_CPU_SECONDS=1)
    slow = many_scans_jpeg(10_000)
    started = time.monotonic()
    r = requests.post(server.url, data=slow, headers={"Content-Type": "image/jpeg"}, timeout=120)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "image_too_complex")
    assert time.monotonic() - started < 20
    assert requests.post(server.url, data=poster("Blue"), timeout=30).json()["genres"] == ["Blue"]


def test_busy_budget_gives_503_with_retry_after(start_server):
    # a tiny instance: one large PNG fills the decode budget; with no wait the second is refused
    server = start_server(MEMORY_MB=400, THREADS=4, BUSY_WAIT_SECONDS=0, RETRY_AFTER_SECONDS=3)
    large = worst_inputs(400)[2]
    data = large.encode()

    def post(_: int) -> requests.Response:
        return requests.post(server.url, data=data, headers={"Content-Type": large.content_type}, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(post, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 503}, statuses  # 4 at once, each taking the whole budget
    for r in responses:
        if r.status_code == 503:
            assert r.json()["error"]["code"] == "busy" and r.headers["Retry-After"] == "3"


def _flutter_bodies(jpeg: bytes) -> dict[str, str]:
    """How the seed's Flutter app (and sloppier copies of it) post a poster: base64 text."""
    b64 = base64.b64encode(jpeg).decode()
    return {
        "canonical": b64,
        "unpadded": b64.rstrip("="),
        "excess padding": b64 + "==",
        "line breaks": "\r\n".join(b64[i : i + 76] for i in range(0, len(b64), 76)) + "\n",
        "url-safe": base64.urlsafe_b64encode(jpeg).decode().rstrip("="),
        "data URL": "data:image/jpeg;base64," + b64,
        "JSON string": json.dumps(b64),
        "surrounding whitespace": "  \n" + b64 + " \n",
    }


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain; charset=utf-8", None])
def test_legacy_flutter_client(start_server, content_type):
    server = start_server()
    jpeg = poster("Red", size=(333, 500))
    for name, body in _flutter_bodies(jpeg).items():
        headers = {"Content-Type": content_type} if content_type else {}
        for path in ("/analysis/", "/analysis", "/"):
            r = requests.post(server.url + path, data=body.encode(), headers=headers, timeout=30)
            assert r.status_code == 200, (name, path, r.text)
            assert r.json()["result"] == ["Red"]
    r = requests.post(server.url + "/analysis/", json={"image": _flutter_bodies(jpeg)["line breaks"]}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.post(server.url + "/analysis/", data=base64.b64encode(b"not an image"), headers={"Content-Type": "application/json"}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "not_an_image")
    r = requests.post(server.url + "/upload", data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


def test_http_findings(start_server):
    server = start_server(MAX_UPLOAD_BYTES=1024 * 1024)
    # chunked body over the limit: 413, not a silently truncated classification
    chunks = (poster("Red") if i == 0 else b"\0" * 65536 for i in range(40))
    r = requests.post(server.url, data=chunks, headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "payload_too_large")
    # chunked under the limit still works
    r = requests.post(server.url, data=iter([poster("Blue")]), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert r.status_code == 200 and r.json()["genres"] == ["Blue"]
    # too many multipart parts: an honest 413
    files = [(f"f{i}", ("x", b"x", "text/plain")) for i in range(1500)] + [("image", ("p.jpg", poster("Red"), "image/jpeg"))]
    r = requests.post(server.url, files=files, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_many_parts"), r.text
    # JSON nested far too deep: 400, not a RecursionError 500
    r = requests.post(server.url, data="[" * 100_000 + "]" * 100_000, headers={"Content-Type": "application/json"}, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")
    # a 1 MB URL: 414, not echoed back or logged in full
    r = requests.get(server.url + "/" + "a" * 1_000_000, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (414, "uri_too_long") and len(r.content) < 1000
    r = requests.get(server.url + "/" + "b" * 5000, timeout=30)
    assert r.status_code == 404 and len(r.content) < 1000
    assert max(len(line) for line in server.log_lines()) < 16_384


@pytest.mark.parametrize("path", ["/robots.txt", "/favicon.ico", "/static/nothing.js", "/static/index.html"])
def test_every_route_goes_through_the_app(start_server, path):
    server = start_server()
    r = requests.get(server.url + path, headers={"X-Request-Id": "route-test"}, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert r.headers["X-Request-Id"] == "route-test"
    r = requests.get(server.url + "/static/app.js", timeout=30)
    assert r.status_code == 200 and r.headers["X-Content-Type-Options"] == "nosniff" and "X-Request-Id" in r.headers
    assert "Content-Security-Policy" in r.headers
    logged = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    assert any(line.get("request_id") == "route-test" and line["httpRequest"]["requestUrl"] == path for line in logged)


def test_stalled_clients_do_not_block_others(model_dir, tmp_path):
    """`make serve` (function/serve.py): partial headers and unfulfilled Content-Length from more
    clients than there are threads; the server answers others once the reads time out."""
    server = ServerProcess(serve_command(), {"MODEL_URI": model_dir, "THREADS": 2, "READ_TIMEOUT_SECONDS": 2}, FUNCTION_DIR, tmp_path / "serve.log")
    server.wait_ready()
    stalled = []
    for i in range(6):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        stalled.append(s)
    try:
        r = requests.post(server.url, data=poster("Green"), timeout=30)
        assert r.status_code == 200 and r.json()["genres"] == ["Green"]
        answers = [s.recv(4096) for s in stalled[::2]]  # the unfulfilled bodies got 408
        assert all(a.startswith(b"HTTP/1.1 408") and b"request_timeout" in a for a in answers), answers
    finally:
        for s in stalled:
            s.close()
        server.stop()
