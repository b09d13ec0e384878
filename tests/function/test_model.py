"""Model loading: manifest validation, integrity, the interpreter pool and its fallback import."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from postergenre import model


def test_loads_and_predicts(model_dir):
    predictor = model.load(str(model_dir))
    red = np.zeros((1, 48, 32, 3), np.float32)
    red[..., 0] = 230
    prediction = predictor.predict(red)
    assert prediction.genres == ["Red"]
    assert prediction.scores["Red"] > 0.9 > prediction.scores["Blue"]


def test_never_empty_returns_top_label(model_dir):
    predictor = model.load(str(model_dir))
    grey = np.full((1, 48, 32, 3), 128, np.float32)  # no colour passes its 0.5 threshold
    prediction = predictor.predict(grey)
    assert len(prediction.genres) == 1
    assert prediction.genres[0] == max(prediction.scores, key=prediction.scores.get)


def test_tampered_model_refused(copy_model):
    root = copy_model()
    data = bytearray((root / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(model.ModelUnavailable) as err:
        model.load(str(root))
    assert err.value.code == "model_integrity"


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.pop("labels"),
        lambda m: m["thresholds"].pop("Red"),
        lambda m: m["thresholds"].update(Red=1.5),
        lambda m: m.update(labels=["Red", "Red", "Blue"]),
        lambda m: m["input"].update(height=47),
    ],
)
def test_bad_manifest_refused(copy_model, change):
    root = copy_model()
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(model.ModelUnavailable):
        model.load(str(root))


def test_pool_serves_threads_concurrently(model_dir):
    predictor = model.load(str(model_dir), pool_size=3)
    colours = {"Red": 0, "Green": 1, "Blue": 2}
    errors: list[str] = []

    def work(name: str) -> None:
        pixels = np.zeros((1, 48, 32, 3), np.float32)
        pixels[..., colours[name]] = 230
        for _ in range(50):
            got = predictor.predict(pixels).genres
            if got != [name]:
                errors.append(f"{name}: {got}")

    threads = [threading.Thread(target=work, args=(c,)) for c in colours for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_interpreter_backend_is_the_expected_one():
    """`make test` runs this suite twice: with ai-edge-litert and with tflite-runtime + numpy<2."""
    expected = os.environ.get("EXPECT_INTERPRETER", "ai_edge_litert")
    assert model.Interpreter.__module__.split(".")[0] == expected
    if expected == "tflite_runtime":
        assert np.__version__.startswith("1.")
