"""End to end on a generated dataset whose labels a CNN can learn (background colour, dots):
train briefly, calibrate, export, parity, manifest, report, then the function serves it."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("tensorflow")

GENRES = ["Red", "Blue", "Dots", "Rare"]


def _poster(rng: np.random.Generator, background: str, dots: bool) -> bytes:
    colour = {"Red": (200, 30, 30), "Blue": (30, 40, 200), "Green": (30, 170, 40)}[background]
    jitter = rng.integers(-25, 25, 3)
    image = Image.new("RGB", (120, 180), tuple(int(c) for c in np.clip(np.array(colour) + jitter, 0, 255)))
    draw = ImageDraw.Draw(image)
    if dots:
        for _ in range(6):
            x, y = rng.integers(5, 100), rng.integers(5, 160)
            draw.ellipse((x, y, x + 18, y + 18), fill=(250, 250, 250))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("posters")
    (root / "Images").mkdir()
    rng = np.random.default_rng(1)
    rows = []
    for i in range(240):
        background = ("Red", "Blue", "Green")[i % 3]
        dots = bool(rng.random() < 0.5)
        poster_id = f"tt{i:07d}"
        (root / "Images" / f"{poster_id}.jpg").write_bytes(_poster(rng, background, dots))
        labels = [background == "Red", background == "Blue", dots, i < 3]  # "Rare": too few examples
        names = [g for g, on in zip(GENRES, labels) if on]
        rows.append([poster_id, str(names), *[int(v) for v in labels]])
    rows.append(rows[5])  # a duplicate Id: kept once
    rows.append(["tt9999998", "['Red']", 1, 0, 0, 0])  # missing image
    rows.append(["tt9999999", "['Blue']", 0, 1, 0, 0])  # corrupt image
    (root / "Images" / "tt9999999.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Id", "Genre", *GENRES])
        writer.writerows(rows)
    return root


@pytest.fixture(scope="module")
def artifact(dataset, tmp_path_factory):
    from train.__main__ import main

    out = tmp_path_factory.mktemp("artifact")
    args = ["--data", str(dataset), "--out", str(out), "--weights", "none", "--height", "96", "--width", "64",
            "--head-epochs", "12", "--finetune-epochs", "4", "--head-lr", "3e-3", "--views", "2", "--min-examples", "10",
            "--batch-size", "32", "--val-fraction", "0.25", "--version", "pipeline-test"]
    assert main(args) == 0
    return out


def test_data_rules_recorded(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["labels"] == ["Red", "Blue", "Dots"]
    assert manifest["dropped_labels"] == {"Rare": 3}
    counts = manifest["training"]["posters"]
    assert counts["duplicate_rows"] == 1 and counts["skipped_missing_or_corrupt"] == 2 and counts["used"] == 240
    splits = json.loads((artifact / "splits.json").read_text())
    assert not set(splits["train"]) & set(splits["validation"])
    assert len(splits["train"]) + len(splits["validation"]) == 240


def test_model_learned_the_signal(artifact):
    report = json.loads((artifact / "report.json").read_text())
    ours, prior = report["ours"]["metrics"], report["baselines"]["label_prior"]
    assert ours["mAP_macro"] > prior["mAP_macro"] + 0.25, (ours["mAP_macro"], prior["mAP_macro"])
    assert ours["roc_auc_macro"] > 0.85
    assert ours["f1_macro"] > 0.7


def test_export_parity_and_manifest(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["input"] == {**manifest["input"], "height": 96, "width": 64, "range": [0, 255]}
    assert set(manifest["thresholds"]) == set(manifest["labels"])
    assert manifest["parity"]["decision_agreement"] >= 0.99
    assert manifest["size_bytes"] == (artifact / "model.tflite").stat().st_size
    for name in ("report.md", "learning_curves.png", "per_genre_ap.png", "thresholds.png"):
        assert (artifact / name).stat().st_size > 0


def test_function_serves_the_artifact(artifact, make_app, dataset):
    app, _ = make_app(MODEL_URI=artifact)
    rng = np.random.default_rng(7)
    body = app.test_client().post("/", data=_poster(rng, "Blue", True)).get_json()
    assert body["model"]["version"] == "pipeline-test"
    assert "Blue" in body["genres"] and "Red" not in body["genres"]
