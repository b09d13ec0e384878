"""End to end on a generated dataset whose labels a CNN can learn (dots, stripes, a frame):
a two-backbone ensemble (tiny random backbones, their last convolutions adapted: train/adapt.py)
cross-validated against the frozen recipe, refit, calibrated, exported, parity-checked and
reported, then served by the function."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("tensorflow")
# The fixture trains end to end: 3-fold CV of two backbones, refit, three fp16 exports, parity.
pytestmark = pytest.mark.timeout(900)

GENRES = ["Dots", "Stripes", "Frame", "Rare"]


def _poster(rng: np.random.Generator, dots: bool, stripes: bool, frame: bool) -> bytes:
    """Random background colour; the labels are shapes drawn on it."""
    image = Image.new("RGB", (120, 180), tuple(int(c) for c in rng.integers(40, 200, 3)))
    draw = ImageDraw.Draw(image)
    if stripes:
        for y in range(10, 180, 24):
            draw.rectangle((0, y, 120, y + 8), fill=(20, 20, 20))
    if frame:
        draw.rectangle((0, 0, 119, 179), outline=(250, 250, 60), width=10)
    if dots:
        for _ in range(6):
            x, y = rng.integers(15, 90), rng.integers(15, 150)
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
        labels = [bool(rng.random() < 0.5) for _ in range(3)] + [i < 3]  # "Rare": too few examples
        poster_id = f"tt{i:07d}"
        (root / "Images" / f"{poster_id}.jpg").write_bytes(_poster(rng, *labels[:3]))
        names = [g for g, on in zip(GENRES, labels, strict=True) if on]
        rows.append([poster_id, str(names), *[int(v) for v in labels]])
    rows.append(rows[5])  # a duplicate Id: kept once
    rows.append(["tt9999998", "['Dots']", 1, 0, 0, 0])  # missing image
    rows.append(["tt9999999", "['Frame']", 0, 0, 1, 0])  # corrupt image
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
    args = ["--data", str(dataset), "--out", str(out), "--weights", "none", "--backbones", "tiny_a,tiny_b", "--candidates", "",
            "--height", "96", "--width", "64", "--folds", "3", "--max-epochs", "15", "--head-seeds", "2", "--hidden", "64",
            "--head-lr", "1e-2", "--batch-size", "32", "--min-examples", "10", "--parity-posters", "40", "--version", "pipeline-test",
            "--adapt-rank", "4"]
    assert main(args) == 0
    return out


def test_data_rules_recorded(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["labels"] == ["Dots", "Stripes", "Frame"]
    assert manifest["dropped_labels"] == {"Rare": 3}
    counts = manifest["training"]["posters"]
    assert counts["duplicate_rows"] == 1 and counts["skipped_missing_or_corrupt"] == 2 and counts["used"] == 240


def test_cross_validated_ensemble_learned_the_signal(artifact):
    report = json.loads((artifact / "report.json").read_text())
    assert set(report["cv"]) == {"tiny_a", "tiny_b", "tiny_a+tiny_b"} and report["shipped"] == "tiny_a+tiny_b"
    ours, prior = report["cv"]["tiny_a+tiny_b"], report["baselines"]["label_prior"]
    assert len(ours["folds"]["mAP_macro"]["values"]) == 3
    assert ours["folds"]["mAP_macro"]["mean"] > prior["mAP_macro"] + 0.25, (ours["folds"]["mAP_macro"], prior["mAP_macro"])
    assert ours["pooled"]["roc_auc_macro"] > 0.85
    assert ours["pooled"]["f1_macro"] > 0.7
    assert all(1 <= e <= 15 for e in report["training"]["epochs"].values())


def test_shipped_recipe_adapted_the_tops_and_was_compared_with_frozen(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["training"]["recipe"]["adapt"]["rank"] == 4 and "adapted by a rank-4 update" in manifest["training"]["arch"]
    report = json.loads((artifact / "report.json").read_text())
    assert {r["recipe"]["adapt"]["rank"] for r in report["recipes"].values()} == {0, 4}
    assert "Δ mAP" in (artifact / "report.md").read_text()


def test_one_model_holds_both_backbones():
    """The functional graph keeps each backbone's last spatial feature map reachable by name."""
    import keras

    from train import backbones, heads, model

    members = {}
    for name in ("tiny_a", "tiny_b"):
        net = backbones.build(name, 96, 64, None)
        members[name] = (net, [heads.build(net.output.shape[-1], 3, heads.HeadOptions(hidden=8), f"{name}_head{s}") for s in range(2)])
    ensemble = model.ensemble(96, 64, members)
    assert ensemble.get_layer("tiny_a").output.shape[1:3] == ensemble.get_layer("tiny_b").output.shape[1:3] == (3, 2)
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 96, 64, 3)).astype(np.float32)
    member_scores = [keras.Model(ensemble.input, ensemble.get_layer(f"{n}_genres").output)(pixels) for n in members]
    np.testing.assert_allclose(ensemble(pixels), np.mean(member_scores, axis=0), atol=1e-6)


def test_export_parity_and_manifest(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["input"] == {**manifest["input"], "height": 96, "width": 64, "range": [0, 255]}
    assert set(manifest["thresholds"]) == set(manifest["labels"])
    assert manifest["parity"]["decision_agreement"] >= 0.99
    assert manifest["size_bytes"] == (artifact / "model.tflite").stat().st_size
    assert set(manifest["metrics"]) == {"cross_validation_mean", "cross_validation_sd", "out_of_fold_pooled"}
    report = json.loads((artifact / "report.json").read_text())
    assert set(report["costs"]) == {"tiny_a", "tiny_b", "tiny_a+tiny_b"}
    assert all(c["p50_ms"] > 0 and c["size_mb"] > 0 for c in report["costs"].values())
    for name in ("report.md", "cv_curves.png", "per_genre_ap.png", "thresholds.png"):
        assert (artifact / name).stat().st_size > 0


def test_too_few_posters_for_any_genre_is_explained(dataset, tmp_path, capsys):
    from train.__main__ import main

    code = main(["--data", str(dataset), "--out", str(tmp_path), "--weights", "none", "--limit", "12", "--min-examples", "25"])
    assert code == 2
    assert "no genre has --min-examples 25 positive posters" in capsys.readouterr().err


def test_missing_dataset_names_the_layout(tmp_path, capsys):
    from train.__main__ import main

    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "movie-classifier" in capsys.readouterr().err


def test_function_serves_the_artifact(artifact, make_app):
    """Fresh posters through the HTTP API: the returned genres match the drawn shapes."""
    app, _ = make_app(MODEL_URI=artifact)
    client = app.test_client()
    rng = np.random.default_rng(7)
    hits = truth = predicted = 0
    for _ in range(30):
        shapes = [bool(rng.random() < 0.5) for _ in range(3)]
        body = client.post("/", data=_poster(rng, *shapes)).get_json()
        assert body["model"]["version"] == "pipeline-test"
        expected = {name for name, on in zip(GENRES, shapes, strict=False) if on}  # GENRES ends with "Rare", never drawn
        hits += len(expected & set(body["genres"]))
        truth += len(expected)
        predicted += len(body["genres"])
    assert 2 * hits / (truth + predicted) > 0.75  # micro-F1 of the served genres


def test_trained_artifact_explains(artifact, make_app):
    """The training job exports the explanation output (train/explain.py) and records its grid."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["explanations"] == {"rows": 3, "cols": 2, "method": "cam"}  # 96x64 / 32
    client = make_app(MODEL_URI=artifact)[0].test_client()
    body = client.post("/?explain=1", data=_poster(np.random.default_rng(3), True, True, False)).get_json()
    assert set(body["explanations"]) == set(body["genres"])
    assert all(np.array(e["heatmap"]).shape == (3, 2) for e in body["explanations"].values())


def test_listwise_term_rewards_ranking_the_right_genres_first():
    from train.fit import multilabel_loss

    y = np.array([[1.0, 0.0, 0.0]], np.float32)
    right = np.array([[0.6, 0.3, 0.3]], np.float32)
    wrong = np.array([[0.3, 0.6, 0.3]], np.float32)
    plain, ranked = multilabel_loss(np.ones(3), 0.0), multilabel_loss(np.ones(3), 1.0)
    assert float(ranked(y, right)[0]) < float(ranked(y, wrong)[0])
    assert float(ranked(y, right)[0]) > float(plain(y, right)[0])  # the term adds to BCE
    # same marginal BCE for both orders, so only the listwise term tells them apart
    swapped = np.array([[0.3, 0.6, 0.3]], np.float32)
    assert np.isclose(float(plain(np.array([[0.0, 1.0, 0.0]], np.float32), swapped)[0]), float(plain(y, right)[0]))
