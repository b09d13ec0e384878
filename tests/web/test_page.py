"""The demo page in Debian's Chromium (Playwright) against a real functions-framework server,
and every example in openapi.yaml answered as documented."""

from __future__ import annotations

import base64
import json
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


def _canvas_alpha(page) -> list[list[int]]:
    """The overlay canvas's own pixels (rows x cols), alpha channel only."""
    return page.evaluate("""() => {
        const c = document.getElementById("heatmap");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        return Array.from({length: c.height}, (_, r) => Array.from({length: c.width}, (_, x) => d[4 * (r * c.width + x) + 3]));
    }""")


def _argmax(grid) -> tuple[int, int]:
    flat = [v for row in grid for v in row]
    i = flat.index(max(flat))
    return divmod(i, len(grid[0]))


def test_heatmap_overlay_follows_the_chosen_genre(browser, start_server, tmp_path):
    """Desktop layout: the poster keeps its aspect ratio; a genre chip overlays that genre's heatmap,
    drawn from the JSON the page received."""
    from tests.helpers.images import block_poster
    from tests.helpers.tiny_model import GRID

    server = start_server()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(server.url + "/")
    upload = tmp_path / "poster.png"
    cells = {"Red": (1, 3), "Green": (4, 0)}
    upload.write_bytes(block_poster({cell: colour for colour, cell in cells.items()}, GRID, background=(255, 255, 0), size=(300, 450)))
    with page.expect_response(lambda r: "explain=1" in r.url) as answer:
        page.set_input_files("input[type=file]", str(upload))
    explanations = answer.value.json()["explanations"]
    chips = page.get_by_test_id("genres").get_by_role("button")
    chips.first.wait_for(timeout=15000)
    assert sorted(chips.all_inner_texts()) == ["Green", "Red"]
    heatmap = page.get_by_test_id("heatmap")
    assert heatmap.is_hidden()

    box = page.locator("#preview").bounding_box()
    assert abs(box["width"] / box["height"] - 300 / 450) < 0.01, box  # not stretched
    seen = {}
    for genre in ("Red", "Green"):
        page.get_by_role("button", name=genre).click()
        assert heatmap.is_visible() and heatmap.get_attribute("data-genre") == genre
        assert page.get_by_role("button", name=genre).get_attribute("aria-pressed") == "true"
        assert heatmap.bounding_box() == page.locator("#preview").bounding_box()  # exactly over the poster
        alpha = _canvas_alpha(page)
        expected = explanations[genre]["heatmap"]
        assert (len(alpha), len(alpha[0])) == GRID
        assert all(abs(a - round(190 * v)) <= 1 for row_a, row_v in zip(alpha, expected) for a, v in zip(row_a, row_v))
        assert _argmax(alpha) == cells[genre]
        seen[genre] = alpha
        ARTEFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / f"page-heatmap-{genre.lower()}.png"), full_page=True)
    assert seen["Red"] != seen["Green"]
    page.get_by_role("button", name="Green").click()  # the chosen chip again: overlay off
    assert heatmap.is_hidden()
    context.close()


def test_page_with_a_model_without_explanations(browser, start_server, plain_model_dir, tmp_path):
    server = start_server(MODEL_URI=plain_model_dir)
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    upload = tmp_path / "poster.jpg"
    upload.write_bytes(poster("Green"))
    page.set_input_files("input[type=file]", str(upload))
    chips = page.get_by_test_id("genres").get_by_role("button")
    chips.first.wait_for(timeout=15000)
    assert chips.all_inner_texts() == ["Green"] and chips.first.is_disabled()
    assert page.get_by_test_id("error").is_hidden() and page.get_by_test_id("heatmap").is_hidden()
    context.close()


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
    assert "http" not in (FUNCTION_DIR / "postergenre" / "static" / "index.html").read_text().replace("http-equiv", "")


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


def _fill(value, b64: str):
    """The example with every "<base64 of poster.jpg>" placeholder filled in, at any depth."""
    if isinstance(value, str):
        return value.replace("<base64 of poster.jpg>", b64)
    if isinstance(value, dict):
        return {k: _fill(v, b64) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, b64) for v in value]
    return value


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
        body = json.dumps(_fill(value, b64))
    headers = {"Content-Type": ctype} if ctype else {}
    if path == "/" and method == "get":
        headers["Accept"] = "application/json"
    response = requests.request(method.upper(), server.url + path, data=body, headers=headers, timeout=30)
    assert str(response.status_code) in statuses, (response.status_code, response.text[:300])
    if response.headers.get("Content-Type", "").startswith("application/json"):
        payload = response.json()
        if response.status_code == 200 and path == "/" and "instances" in (value or {}):
            slots = payload["predictions"]
            assert len(slots) == len(value["instances"]) and set(payload) == {"predictions", "model"}
            assert [set(slot) for slot in slots] == [{"genres", "scores", "model", "thresholds"}, {"error"}, {"genres", "scores", "model", "thresholds"}]
        elif response.status_code == 200 and path == "/":
            assert {"genres", "scores", "model", "result"} <= set(payload)
        elif response.status_code >= 400:
            assert {"code", "message"} <= set(payload["error"])
    if name in ("notString", "missing"):
        assert response.status_code == 400
