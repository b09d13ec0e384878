"""Property-based: whatever body and content type arrive, the answer is never a 5xx."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.images import poster

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "image/jpeg",
        "image/png",
        "application/octet-stream",
        "text/plain",
        "application/json",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded",
        "text/html; charset=utf-8",
        "weird/type",
    ]
)
JPEG = poster("Red")
BODIES = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=500).map(str.encode),
    st.binary(max_size=200).map(lambda b: JPEG[: len(JPEG) // 2] + b),  # a JPEG that goes bad
    st.binary(max_size=200).map(lambda b: b"data:image/png;base64," + base64.b64encode(b)),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(["image", "x"]), c, max_size=2),
        max_leaves=6,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_never_a_server_error(client, body, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post("/", data=body, **kwargs)
    assert response.status_code < 500, (response.status_code, response.get_data()[:200])
    if response.status_code >= 400:
        assert response.get_json()["error"]["code"]
