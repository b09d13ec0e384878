"""Against a real functions-framework (gunicorn) server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.helpers.images import poster


def test_every_request_form(start_server):
    server = start_server()
    jpeg = poster("Red")
    b64 = base64.b64encode(jpeg).decode()
    forms = [
        {"data": jpeg, "headers": {"Content-Type": "image/jpeg"}},
        {"data": jpeg, "headers": {"Content-Type": "application/octet-stream"}},
        {"data": b64, "headers": {"Content-Type": "text/plain"}},
        {"data": "data:image/jpeg;base64," + b64, "headers": {"Content-Type": "text/plain"}},
        {"files": {"image": ("p.jpg", jpeg, "image/jpeg")}},
        {"json": {"image": b64}},
    ]
    for form in forms:
        response = requests.post(server.url + "/", timeout=30, **form)
        assert response.status_code == 200, response.text
        assert response.json()["genres"] == ["Red"]
        assert response.headers["Content-Type"] == "application/json"


def test_concurrent_clients_and_errors_stay_json(start_server):
    server = start_server(THREADS=8)
    bodies = [poster(c) for c in ("Red", "Green", "Blue")] + [b"garbage", b""]

    def post(i: int) -> tuple[int, dict]:
        r = requests.post(server.url, data=bodies[i % len(bodies)], timeout=30)
        return r.status_code, r.json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(post, range(80)))
    for i, (status, body) in enumerate(results):
        if i % len(bodies) < 3:
            assert status == 200 and body["genres"] == [("Red", "Green", "Blue")[i % len(bodies)]]
        else:
            assert status == 400 and body["error"]["code"]
    loads = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    assert sum(1 for line in loads if line.get("status") == 200 and line["httpRequest"]["requestMethod"] == "POST") == 48
    assert all({"severity", "request_id", "latency_ms", "status"} <= set(line) for line in loads if "status" in line)


def test_server_process_never_maps_tensorflow(start_server):
    server = start_server()
    assert requests.post(server.url, data=poster("Blue"), timeout=30).status_code == 200
    for pid in server.pids():
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "site-packages/tensorflow/" not in maps
        assert "litert" in maps or pid == server.proc.pid or "tflite_runtime" in maps
