"""The demo page in Debian's Chromium (Playwright) against a real functions-framework server,
and every example in openapi.yaml answered as documented."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import yaml

from tests.conftest import FUNCTION_DIR, ROOT
from tests.helpers.images import poster

CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = ROOT / "test-artifacts"


def _remote_hosts(urls: list[str]) -> set[str]:
    """Hosts of network requests (blob: and data: URLs never leave the page)."""
    return {urlparse(u).hostname for u in urls if urlparse(u).scheme not in ("blob", "data")}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is missing: make test installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page_on_server(browser, start_server):
    server = start_server()
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url + "/")
    yield server, page, requested
    context.close()


def test_page_classifies_a_poster(page_on_server, tmp_path):
    server, page, requested = page_on_server
    upload = tmp_path / "poster.jpg"
    upload.write_bytes(poster("Blue", size=(300, 450)))
    assert page.get_by_label("Choose a poster or drop it here").count() == 1  # labelled input
    page.set_input_files("input[type=file]", str(upload))
    genres = page.get_by_test_id("genres")
    genres.locator("li").first.wait_for(timeout=15000)
    assert genres.inner_text().split() == ["Blue"]
    assert page.locator("#scores tbody tr").count() == 3
    assert page.locator(".mark").count() == 3  # each genre's threshold is marked
    assert "test-1" in page.locator("#meta").inner_text() and " ms" in page.locator("#meta").inner_text()
    assert page.get_by_test_id("error").is_hidden()
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "page-classified.png"), full_page=True)
    assert _remote_hosts(requested) == {"127.0.0.1"}, requested


def test_page_shows_api_error_for_text_file(page_on_server, tmp_path):
    server, page, requested = page_on_server
    upload = tmp_path / "notes.txt"
    upload.write_text("just some notes, not a poster")
    page.set_input_files("input[type=file]", str(upload))
    error = page.get_by_test_id("error")
    error.wait_for(state="visible", timeout=15000)
    assert "not a supported image" in error.inner_text()
    assert page.get_by_test_id("genres").locator("li").count() == 0
    assert _remote_hosts(requested) == {"127.0.0.1"}, requested


def test_html_security_headers(start_server):
    server = start_server()
    response = requests.get(server.url + "/", headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "connect-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    for asset in ("static/app.js", "static/app.css"):
        assert requests.get(f"{server.url}/{asset}", timeout=10).status_code == 200
    assert "http" not in (FUNCTION_DIR / "static" / "index.html").read_text().replace("http-equiv", "")


def _examples() -> list[tuple[str, str, str, object, set[str]]]:
    """(method, path, content type, example value, documented statuses) for every example."""
    spec = yaml.safe_load((FUNCTION_DIR / "openapi.yaml").read_text())
    found = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            for ctype, media in op.get("requestBody", {}).get("content", {}).items():
                for name, example in media.get("examples", {}).items():
                    found.append((method, path, ctype, example.get("value", example.get("externalValue")), statuses, name))
            if "requestBody" not in op:
                found.append((method, path, "", None, statuses, "no body"))
    return found


@pytest.mark.parametrize("case", _examples(), ids=lambda c: f"{c[0]} {c[1]} {c[2]} {c[5]}")
def test_openapi_examples_answered_as_documented(start_server, case):
    method, path, ctype, value, statuses, name = case
    server = start_server()
    jpeg = poster("Red")
    b64 = base64.b64encode(jpeg).decode()
    body = None
    if isinstance(value, str):
        body = jpeg if value == "poster.jpg" else value.replace("<base64 of poster.jpg>", b64)
    elif isinstance(value, dict):
        body = json.dumps({k: (v.replace("<base64 of poster.jpg>", b64) if isinstance(v, str) else v) for k, v in value.items()})
    headers = {"Content-Type": ctype} if ctype else {}
    if path == "/" and method == "get":
        headers["Accept"] = "application/json"
    response = requests.request(method.upper(), server.url + path, data=body, headers=headers, timeout=30)
    assert str(response.status_code) in statuses, (response.status_code, response.text[:300])
    if response.headers.get("Content-Type", "").startswith("application/json"):
        payload = response.json()
        if response.status_code == 200 and path == "/":
            assert {"genres", "scores", "model", "result"} <= set(payload)
        elif response.status_code >= 400:
            assert {"code", "message"} <= set(payload["error"])
    if name in ("notString", "missing"):
        assert response.status_code == 400
