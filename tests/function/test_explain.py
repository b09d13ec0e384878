"""Explanations (?explain=1): the tiny model's 6x4 class evidence map, normalised per genre."""

from __future__ import annotations

import json

import numpy as np
import pytest

from postergenre import explain, model
from tests.helpers.images import block_poster, poster
from tests.helpers.tiny_model import GRID


def _explained(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"genres", "scores", "model", "thresholds", "explanations", "result"}
    assert set(body["explanations"]) == set(body["genres"])  # one per returned genre
    for entry in body["explanations"].values():
        assert (entry["rows"], entry["cols"]) == GRID
        grid = np.array(entry["heatmap"])
        assert grid.shape == GRID
        assert grid.min() >= 0 and grid.max() <= 1
    return body


@pytest.mark.parametrize("flag", ["1", "true", "yes", "TRUE", ""])
def test_explain_adds_a_heatmap_per_returned_genre(client, flag):
    body = _explained(client.post(f"/?explain={flag}", data=poster("Green"), content_type="image/jpeg"))
    assert body["genres"] == ["Green"]
    assert np.array(body["explanations"]["Green"]["heatmap"]).max() == 1.0  # min-max normalised


@pytest.mark.parametrize(("colour", "cell"), [("Red", (0, 0)), ("Red", (4, 1)), ("Blue", (5, 3)), ("Green", (2, 2))])
def test_heatmap_peaks_where_the_colour_is(client, colour, cell):
    body = _explained(client.post("/?explain=1", data=block_poster({cell: colour}, GRID), content_type="image/png"))
    assert body["genres"] == [colour]
    grid = np.array(body["explanations"][colour]["heatmap"])
    assert np.unravel_index(grid.argmax(), grid.shape) == cell
    assert grid[cell] == 1.0 and np.delete(grid.ravel(), np.ravel_multi_index(cell, GRID)).max() < 0.5


def test_each_returned_genre_gets_its_own_map(client):
    """Yellow reads as Red and Green to the tiny model; a red and a green block tell the maps apart."""
    image = block_poster({(1, 3): "Red", (4, 0): "Green"}, GRID, background=(255, 255, 0))
    body = _explained(client.post("/?explain=1", data=image, content_type="image/png"))
    assert sorted(body["genres"]) == ["Green", "Red"]
    for colour, cell in (("Red", (1, 3)), ("Green", (4, 0))):
        grid = np.array(body["explanations"][colour]["heatmap"])
        assert np.unravel_index(grid.argmax(), GRID) == cell


@pytest.mark.parametrize("flag", ["0", "false", "no", "off"])
def test_without_explain_the_response_is_unchanged(client, flag):
    jpeg = poster("Blue")
    plain = client.post("/", data=jpeg, content_type="image/jpeg")
    off = client.post(f"/?explain={flag}", data=jpeg, content_type="image/jpeg")
    assert plain.get_json().keys() == {"genres", "scores", "model", "thresholds", "result"}
    assert off.get_data() == plain.get_data()


def test_same_answer_as_a_model_without_the_output(make_app, plain_model_dir):
    """Adding the explanation output changes nothing else: same genres and scores, same JSON shape."""
    jpeg = poster("Red")
    with_output = make_app()[0].test_client().post("/", data=jpeg).get_json()
    without = make_app(MODEL_URI=plain_model_dir)[0].test_client().post("/", data=jpeg).get_json()
    assert with_output.keys() == without.keys()
    assert {k: with_output[k] for k in ("genres", "scores", "thresholds", "result")} == {k: without[k] for k in ("genres", "scores", "thresholds", "result")}


def test_every_request_form_can_explain(client):
    import base64
    import io

    jpeg = poster("Red")
    b64 = base64.b64encode(jpeg).decode()
    forms = [
        {"data": jpeg, "content_type": "image/jpeg"},
        {"data": b64, "content_type": "text/plain"},
        {"data": {"image": (io.BytesIO(jpeg), "p.jpg", "image/jpeg")}, "content_type": "multipart/form-data"},
        {"data": {"image": b64}},
        {"json": {"image": b64}},
    ]
    for form in forms:
        assert _explained(client.post("/?explain=1", **form))["genres"] == ["Red"]


def test_model_without_the_output_serves_but_cannot_explain(make_app, plain_model_dir):
    client = make_app(MODEL_URI=plain_model_dir)[0].test_client()
    assert client.post("/", data=poster("Red")).get_json()["genres"] == ["Red"]
    response = client.post("/?explain=1", data=poster("Red"))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "explanations_unavailable"
    assert client.post("/", data=poster("Blue")).status_code == 200  # still serving


def test_invalid_explain_flag_is_400(client):
    response = client.post("/?explain=maybe", data=poster("Red"))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_explain"


def test_normalisation_per_genre_and_flat_maps():
    maps = np.zeros((2, 3, 2), np.float32)
    maps[..., 0] = [[-4, -2, 0], [2, 4, 6]]  # 10 logits of range
    maps[..., 1] = 3.0  # flat: no spatial information
    out = explain.heatmaps(maps, ["A", "B"], ["B", "A"])
    assert list(out) == ["B", "A"]
    assert out["A"] == {"rows": 2, "cols": 3, "heatmap": [[0.0, 0.2, 0.4], [0.6, 0.8, 1.0]]}
    assert out["B"]["heatmap"] == [[0.0] * 3] * 2


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        ({"rows": 5, "cols": 4, "method": "cam"}, "model_invalid"),  # does not match the 6x4 tensor
        ({"rows": 6, "cols": 3}, "model_invalid"),
        ({"rows": "six", "cols": 4}, "invalid_manifest"),
        ({"cols": 4}, "invalid_manifest"),
        ({"rows": 0, "cols": 4}, "invalid_manifest"),
        ([6, 4], "invalid_manifest"),
    ],
)
def test_manifest_grid_must_match_the_tensor(copy_model, entry, code):
    root = copy_model()
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["explanations"] = entry
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(model.ModelUnavailable) as err:
        model.load(str(root))
    assert err.value.code == code


def test_manifest_claiming_explanations_for_a_model_without_them(plain_model_dir, tmp_path):
    import shutil

    root = tmp_path / "model"
    shutil.copytree(plain_model_dir, root)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "explanations": {"rows": 6, "cols": 4, "method": "cam"}}))
    with pytest.raises(model.ModelUnavailable) as err:
        model.load(str(root))
    assert err.value.code == "model_invalid"


def test_outputs_found_by_shape_not_name_or_order():
    scores, maps, feats = {"shape": np.array([1, 3])}, {"shape": np.array([1, 6, 4, 3])}, {"shape": np.array([1, 6, 4, 8])}
    for details in ({"a": scores, "f": feats}, {"f": feats, "a": scores}, {"a": scores}):
        assert explain.find_scores(details, 3) == "a"
    for bad in ({"f": feats}, {"a": scores, "c": scores}, {"b": {"shape": np.array([1, 5])}}):
        with pytest.raises(ValueError):
            explain.find_scores(bad, 3)
    assert explain.find_map({"m": maps}, 3) == ("m", (6, 4))
    for bad in ({"m": maps, "a": scores}, {"f": feats}, {"a": scores}, {}):
        with pytest.raises(ValueError):
            explain.find_map(bad, 3)


def test_plain_requests_never_run_the_explainer(model_dir):
    """The map is computed only when asked for: plain requests run the scoring signature alone
    (no map among its outputs); explain requests also run the explainer, on the scoring run's
    feature outputs (the backbone runs once); scores are the same either way."""
    predictor = model.load(str(model_dir), pool_size=1)
    runners = predictor._pool.get_nowait()
    calls = []
    explainer = runners[predictor.explaining.key]
    runners[predictor.explaining.key] = lambda **features: calls.append(sorted(features)) or explainer(**features)
    predictor._pool.put(runners)
    scoring_outputs = runners[predictor.scoring.key].get_output_details()
    assert set(scoring_outputs) == {predictor.scoring.output, *predictor.explaining.inputs}  # scores and features, no map
    pixels = np.zeros((1, 48, 32, 3), np.float32)
    pixels[:, :16, :, 2] = 255  # blue block at the top
    plain = predictor.predict(pixels)
    assert calls == []
    explained = predictor.predict(pixels, explain_too=True)
    assert calls == [sorted(predictor.explaining.inputs)]
    assert plain.scores == explained.scores and plain.genres == explained.genres
    assert explained.explanations is not None and plain.explanations is None


def test_models_exported_before_the_explain_signature_still_explain(model_dir, legacy_model_dir):
    """A published version whose one signature returns the scores and the map (the export before
    the explain signature) serves and explains the same as today's (rollback keeps working)."""
    pixels = np.zeros((1, 48, 32, 3), np.float32)
    pixels[:, 24:, :, 0] = 255  # red block at the bottom
    legacy, current = model.load(str(legacy_model_dir)), model.load(str(model_dir))
    assert legacy.explaining.key == legacy.scoring.key
    old, new = legacy.predict(pixels, explain_too=True), current.predict(pixels, explain_too=True)
    assert old.genres == new.genres == ["Red"]
    np.testing.assert_allclose(old.explanations["Red"]["heatmap"], new.explanations["Red"]["heatmap"], atol=1e-3)
