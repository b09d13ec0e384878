"""End to end with train/recipes/tiny.toml (tiny random backbones at the production input size) on two generated
folders whose labels a CNN can learn (dots, stripes, a frame): one dataset, cross-validated, refit, calibrated,
exported, parity-checked and reported, then served by the function; and the recipe comparison command."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.helpers.posters import GENRES, folder, poster
from train.recipe import ROOT

pytest.importorskip("tensorflow")
# The fixture trains end to end: 3-fold CV of two backbones, refit, three fp16 exports, parity.
pytestmark = pytest.mark.timeout(900)
TINY = ROOT / "train" / "recipes" / "tiny.toml"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Folder A: 240 posters, 3 of them "Rare" (too few to keep), a duplicate row, a missing and a corrupt image.
    Folder B: 60 more posters of the same genres."""
    a = tmp_path_factory.mktemp("posters-a")
    extra = [["tt0000005", "['Dots']", 1, 0, 0, 0], ["tt9999998", "['Dots']", 1, 0, 0, 0], ["tt9999999", "['Frame']", 0, 0, 1, 0]]
    folder(a, 240, "tt", seed=1, rare=3, extra_rows=extra)
    (a / "Images" / "tt9999999.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return a, folder(tmp_path_factory.mktemp("posters-b"), 60, "bb", seed=2)


@pytest.fixture(scope="module")
def artifact(folders, tmp_path_factory):
    from train.__main__ import main

    out = tmp_path_factory.mktemp("artifact")
    assert main(["--data", str(folders[0]), "--data", str(folders[1]), "--out", str(out), "--recipe", str(TINY),
                 "--version", "pipeline-test"]) == 0
    return out


def test_data_rules_recorded_per_folder(artifact, folders):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["labels"] == ["Dots", "Stripes", "Frame"]
    assert manifest["dropped_labels"] == {"Rare": 3}
    counts = manifest["training"]["posters"]
    assert counts[str(folders[0])] == {"rows_unique": 242, "duplicate_rows": 1, "skipped_missing_or_corrupt": 2, "used": 240}
    assert counts[str(folders[1])]["used"] == 60 and counts["all"]["used"] == 300


def test_manifest_names_its_recipe_file_and_carries_it(artifact):
    recorded = json.loads((artifact / "manifest.json").read_text())["training"]["recipe"]
    assert recorded["file"] == "train/recipes/tiny.toml"
    assert recorded["text"] == TINY.read_text()
    assert recorded["settings"]["model"]["backbones"] == ["tiny_a-mid", "tiny_b"]
    assert recorded["settings"]["views"]["augmented"] == 1


def test_cross_validated_ensemble_learned_the_signal_on_each_folder(artifact, folders):
    report = json.loads((artifact / "report.json").read_text())
    shipped = "tiny_a-mid+tiny_b"
    assert set(report["cv"]) == {"tiny_a-mid", "tiny_b", shipped} and report["shipped"] == shipped
    ours, prior = report["cv"][shipped], report["baselines"]["label_prior"]
    assert len(ours["folds"]["mAP_macro"]["values"]) == 3
    assert ours["folds"]["mAP_macro"]["mean"] > prior["mAP_macro"] + 0.25, (ours["folds"]["mAP_macro"], prior["mAP_macro"])
    assert ours["pooled"]["roc_auc_macro"] > 0.85
    assert ours["pooled"]["f1_macro"] > 0.7
    assert all(1 <= e <= 15 for e in report["training"]["epochs"].values())
    assert set(ours["sources"]) == {str(f) for f in folders}
    assert all(s["pooled"]["mAP_macro"] > prior["mAP_macro"] + 0.2 for s in ours["sources"].values())
    assert "## Per data folder" in (artifact / "report.md").read_text()


def test_export_parity_and_manifest(artifact):
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["input"] == {**manifest["input"], "height": 336, "width": 224, "range": [0, 255]}
    assert set(manifest["thresholds"]) == set(manifest["labels"])
    assert manifest["parity"]["posters"] == 40 and manifest["parity"]["decision_agreement"] >= 0.99
    assert manifest["size_bytes"] == (artifact / "model.tflite").stat().st_size
    assert set(manifest["metrics"]) == {"cross_validation_mean", "cross_validation_sd", "out_of_fold_pooled"}
    report = json.loads((artifact / "report.json").read_text())
    assert set(report["costs"]) == {"tiny_a-mid", "tiny_b", "tiny_a-mid+tiny_b"}
    assert all(c["p50_ms"] > 0 and c["size_mb"] > 0 for c in report["costs"].values())
    for name in ("report.md", "cv_curves.png", "per_genre_ap.png", "thresholds.png"):
        assert (artifact / name).stat().st_size > 0


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


def test_function_serves_the_artifact(artifact, make_app):
    """Fresh posters through the HTTP API: the returned genres match the drawn shapes."""
    app, _ = make_app(MODEL_URI=artifact)
    client = app.test_client()
    rng = np.random.default_rng(7)
    hits = truth = predicted = 0
    for _ in range(30):
        shapes = [bool(rng.random() < 0.5) for _ in range(3)]
        body = client.post("/", data=poster(rng, *shapes)).get_json()
        assert body["model"]["version"] == "pipeline-test"
        expected = {name for name, on in zip(GENRES, shapes, strict=False) if on}  # GENRES ends with "Rare", never drawn
        hits += len(expected & set(body["genres"]))
        truth += len(expected)
        predicted += len(body["genres"])
    assert 2 * hits / (truth + predicted) > 0.75  # micro-F1 of the served genres


def test_trained_artifact_explains(artifact, make_app):
    """The training job exports the explanation output (train/explain.py) and records its grid."""
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["explanations"] == {"rows": 11, "cols": 7, "method": "cam"}  # 336x224 / 32, rounded up
    client = make_app(MODEL_URI=artifact)[0].test_client()
    body = client.post("/?explain=1", data=poster(np.random.default_rng(3), True, True, False)).get_json()
    assert set(body["explanations"]) == set(body["genres"])
    assert all(np.array(e["heatmap"]).shape == (11, 7) for e in body["explanations"].values())


def test_recipes_compare_on_the_same_folds_with_paired_intervals(folders, tmp_path):
    """python -m train.compare: two recipe files, one command; the second is paired with the first."""
    from train.compare import main

    small = TINY.read_text().replace('backbones = ["tiny_a-mid", "tiny_b"]', 'backbones = ["tiny_b"]')
    small = small.replace("height = 336\nwidth = 224", "height = 96\nwidth = 64").replace('name = "tiny"', 'name = "linear"')
    first = tmp_path / "first.toml"
    first.write_text(small)
    second = tmp_path / "second.toml"
    second.write_text(small.replace('name = "linear"', 'name = "wide"').replace("hidden = 64", "hidden = 128"))
    assert main(["--data", str(folders[1]), "--recipe", str(first), "--recipe", str(second), "--out", str(tmp_path / "cmp")]) == 0
    out = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert out["reference"] == "linear" and list(out["recipes"]) == ["linear", "wide"]
    assert "difference" not in out["recipes"]["linear"]["bootstrap"]
    wide = out["recipes"]["wide"]
    assert wide["recipe"]["settings"]["heads"]["hidden"] == 128
    assert wide["bootstrap"]["difference"]["mAP_macro"] != [0.0, 0.0]  # other heads, other scores: not a cached copy
    assert wide["result"]["pooled"]["mAP_macro"] != out["recipes"]["linear"]["result"]["pooled"]["mAP_macro"]
    assert "Δ mAP vs linear" in (tmp_path / "cmp" / "compare.md").read_text()


def test_an_id_in_two_folders_is_an_error_that_names_both(folders, tmp_path, capsys):
    from train.__main__ import main

    twin = tmp_path / "twin"
    shutil.copytree(folders[1], twin)
    assert main(["--data", str(folders[1]), "--data", str(twin), "--out", str(tmp_path / "out"), "--recipe", str(TINY)]) == 2
    err = capsys.readouterr().err
    assert "bb0000000 is in two data folders" in err and str(folders[1]) in err and str(twin) in err


def test_too_few_posters_for_any_genre_is_explained(folders, tmp_path, capsys):
    from train.__main__ import main

    code = main(["--data", str(folders[0]), "--out", str(tmp_path), "--recipe", str(ROOT / "train" / "recipes" / "v3.toml"),
                 "--limit", "12"])
    assert code == 2
    assert "no genre has min_examples 25 positive posters" in capsys.readouterr().err


def test_missing_dataset_names_the_layout(tmp_path, capsys):
    from train.__main__ import main

    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--recipe", str(TINY)]) == 2
    assert "movie-classifier" in capsys.readouterr().err


def test_a_bad_recipe_stops_before_any_work(folders, tmp_path, capsys):
    from train.__main__ import main

    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("seeds = 2", "seeds = two"))
    assert main(["--data", str(folders[1]), "--out", str(tmp_path / "out"), "--recipe", str(bad)]) == 2
    assert "recipe" in capsys.readouterr().err and not (tmp_path / "out").exists()
