"""Every crafted input gets its documented status, JSON errors with a code, and no hang."""

from __future__ import annotations

import pytest
import requests

from tests.hostile.corpus import Case, cases

CASES = cases()


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    from tests.conftest import Server

    srv = Server({"MODEL_URI": str(model_dir)}, tmp_path_factory.mktemp("corpus") / "server.log")
    yield srv
    srv.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case(server, case: Case):
    headers = dict(case.headers)
    if case.content_type:
        headers["Content-Type"] = case.content_type
    response = requests.request(case.method, server.url + "/", data=case.data, files=case.files, headers=headers, timeout=10)
    assert response.status_code == case.status, response.text[:300]
    assert response.headers.get("X-Request-Id")
    if case.status == 200:
        body = response.json()
        assert body["genres"] and set(body["genres"]) <= set(body["scores"])
    elif case.status >= 400:
        error = response.json()["error"]
        assert error["message"] and "Traceback" not in error["message"] and "File \"" not in error["message"]
        if case.code:
            assert error["code"] == case.code
    # the server is still up and classifying after every case
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200
