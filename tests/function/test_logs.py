"""Log lines as Cloud Logging reads them: trace fields, httpRequest, and never image bytes."""

from __future__ import annotations

import base64
import json

from tests.helpers.images import poster

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
HEADER = {"X-Cloud-Trace-Context": f"{TRACE_ID}/12345678901234567;o=1"}


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_every_line_of_a_request_links_to_its_trace(make_app, tmp_path, capsys):
    """The request's line and the model-load line it caused carry the trace of that request."""
    app, _ = make_app(GOOGLE_CLOUD_PROJECT="my-project", MODEL_URI=str(tmp_path / "no-model"))
    capsys.readouterr()
    assert app.test_client().post("/", data=poster("Red"), headers=HEADER).status_code == 503
    lines = _lines(capsys)
    load, request = next(x for x in lines if x["message"] == "model load failed"), lines[-1]
    for line in (load, request):
        assert line["logging.googleapis.com/trace"] == f"projects/my-project/traces/{TRACE_ID}"
        assert line["logging.googleapis.com/spanId"] == f"{12345678901234567:016x}" == "002bdc545d6b4b87"
        assert line["logging.googleapis.com/trace_sampled"] is True
    assert request["request_id"] == TRACE_ID and request["severity"] == "ERROR"


def test_http_request_fields_and_no_image_bytes(make_app, capsys):
    app, _ = make_app(GOOGLE_CLOUD_PROJECT="my-project")
    body = base64.b64encode(poster("Red"))
    capsys.readouterr()
    response = app.test_client().post("/?explain=1", data=body, content_type="text/plain", headers={**HEADER, "User-Agent": "ua/1"})
    assert response.status_code == 200
    lines = _lines(capsys)
    http = lines[-1]["httpRequest"]
    assert http["requestMethod"] == "POST" and http["requestUrl"] == "/" and http["status"] == 200
    assert http["requestSize"] == str(len(body)) and http["responseSize"] == str(len(response.get_data()))
    assert http["userAgent"] == "ua/1" and http["latency"].endswith("s") and float(http["latency"][:-1]) >= 0
    text = json.dumps(lines)
    assert body.decode()[:40] not in text and "/9j/" not in text  # no image bytes, raw or base64


def test_no_trace_without_a_project_or_a_valid_header(make_app, capsys, monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    app, _ = make_app()
    client = app.test_client()
    capsys.readouterr()
    client.post("/", data=poster("Red"), headers=HEADER)  # make serve: no project, so no trace link
    assert "logging.googleapis.com/trace" not in _lines(capsys)[-1]
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    for bad in ("not-a-trace", f"{TRACE_ID[:-1]}/1;o=1", f"{TRACE_ID}/1;o=1\nX: y", "x" * 5000):
        client.post("/", data=poster("Red"), headers={"X-Cloud-Trace-Context": bad.replace("\n", "")})
        line = _lines(capsys)[-1]
        assert "logging.googleapis.com/trace" not in line, bad
    client.post("/", data=poster("Red"), headers={"X-Cloud-Trace-Context": TRACE_ID})  # no span, no sampling flag
    line = _lines(capsys)[-1]
    assert line["logging.googleapis.com/trace"].endswith(TRACE_ID) and "logging.googleapis.com/spanId" not in line


def test_trace_fields_outside_a_request_are_not_kept(make_app, capsys):
    """The scope ends with the request: a later line (another request without a header) has none."""
    from postergenre import logs

    app, _ = make_app(GOOGLE_CLOUD_PROJECT="my-project")
    client = app.test_client()
    client.post("/", data=poster("Red"), headers=HEADER)
    capsys.readouterr()
    client.post("/", data=poster("Red"))
    logs.emit("INFO", "outside")
    assert all("logging.googleapis.com/trace" not in line for line in _lines(capsys))
