"""Recipe files (train/recipe.py): the bundled ones load, mistakes are named; the head losses, bootstrap and views they use."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from train import recipe

RECIPES = sorted((recipe.ROOT / "train" / "recipes").glob("*.toml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_in_the_repository_loads_and_names_its_file(path):
    r = recipe.load(path)
    assert r.file == f"train/recipes/{path.name}" and r.text == path.read_text()
    record = r.record()
    assert json.loads(json.dumps(record))["settings"]["model"]["backbones"] == list(r.model.backbones)  # the manifest's copy


def test_the_bundled_model_names_the_recipe_file_that_made_it():
    """The bundled manifest's recipe record is a file of train/recipes/ as it is in the repository: same text, same
    settings, and the settings are what the manifest says the model is."""
    manifest = json.loads((recipe.ROOT / "function" / "model" / "manifest.json").read_text())
    recorded = manifest["training"]["recipe"]
    assert recorded["file"].startswith("train/recipes/")
    made = recipe.load(recipe.ROOT / recorded["file"])
    assert made.text == recorded["text"] and json.loads(json.dumps(made.record()["settings"])) == recorded["settings"]
    assert " + ".join(made.model.backbones) in manifest["training"]["arch"]
    assert (made.model.height, made.model.width) == (manifest["input"]["height"], manifest["input"]["width"])
    assert asdict(made.heads) == manifest["training"]["head"]
    assert f"fewer than {made.data.min_examples} positive" in manifest["label_rule"]
    assert made.export.name == manifest["name"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\n[heads]\nhiden = 3\n', "[heads]: unknown key(s) hiden"),
        ('name = "x"\n[heads]\nhidden = "many"\n', "[heads] hidden: expected int"),
        ('name = "x"\n[model]\nbackbones = "tiny_a"\n', "[model] backbones: expected a list"),
        ('name = "x"\n[cross_validation]\nfolds = 1\n', "cross_validation.folds must be >= 2"),
        ('name = "x"\n[flavour]\nsweet = true\n', "unknown key(s) flavour"),
        ('[heads]\nhidden = 3\n', "missing key(s) name"),
        ('name = "x"\n[heads\n', "recipe"),
        ('name = "x"\n[model]\nbackbones = ["tiny_a", "tiny_a"]\n', "must be different backbones"),
        ('name = "x"\n[views]\narea = [0.0, 1.0]\n', "views.area/aspect must be"),
        ('name = "x"\n[heads]\ndropout = 1.5\n', "heads.input_dropout/dropout must be in [0, 1)"),
    ],
)
def test_a_bad_recipe_is_refused_with_the_key_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(recipe.RecipeError) as caught:
        recipe.load(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_json_recipe_and_defaults(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"name": "j", "heads": {"lr": 1, "seeds": 1}}))
    r = recipe.load(path)
    assert r.heads.lr == 1.0 and isinstance(r.heads.lr, float) and r.heads.hidden == recipe.HeadOptions().hidden


def test_asymmetric_loss_ignores_easy_negatives_and_keeps_positives():
    pytest.importorskip("tensorflow")
    from train.heads import multilabel_loss

    y = np.array([[1.0, 0.0, 0.0]], np.float32)
    easy = np.array([[0.7, 0.03, 0.5]], np.float32)
    plain, asl = multilabel_loss(np.ones(3), gamma_neg=0.0, clip=0.0), multilabel_loss(np.ones(3), gamma_neg=4.0, clip=0.05)
    only_positive = -np.log(0.7) / 3
    assert float(asl(y, easy)[0]) < float(plain(y, easy)[0])
    assert float(asl(y, easy)[0]) == pytest.approx(only_positive + -(0.45**4) * np.log(0.55) / 3, rel=1e-4)  # 0.03 < clip: free


def test_listwise_term_rewards_ranking_the_right_genres_first():
    pytest.importorskip("tensorflow")
    from train.heads import multilabel_loss

    y = np.array([[1.0, 0.0, 0.0]], np.float32)
    right = np.array([[0.6, 0.3, 0.3]], np.float32)
    wrong = np.array([[0.3, 0.6, 0.3]], np.float32)
    plain, ranked = multilabel_loss(np.ones(3), 0.0), multilabel_loss(np.ones(3), 1.0)
    assert float(ranked(y, right)[0]) < float(ranked(y, wrong)[0])
    assert float(ranked(y, right)[0]) > float(plain(y, right)[0])  # the term adds to BCE
    # same marginal BCE for both orders, so only the listwise term tells them apart
    swapped = np.array([[0.3, 0.6, 0.3]], np.float32)
    assert np.isclose(float(plain(np.array([[0.0, 1.0, 0.0]], np.float32), swapped)[0]), float(plain(y, right)[0]))


def test_bootstrap_intervals_hold_the_estimate_and_pair_the_difference():
    from train import bootstrap, metrics

    rng = np.random.default_rng(1)
    y = (rng.random((400, 4)) < 0.3).astype(float)
    s = rng.random((400, 4)) + 0.6 * y
    pred = s > 0.7
    out = bootstrap.paired(y, s, pred, s, pred, resamples=200)
    m = metrics.evaluate(y, s, pred)
    for key in bootstrap.FIGURES:
        low, high = out["interval"][key]
        assert low <= m[key] <= high, key
        assert out["difference"][key] == [0.0, 0.0]  # the same scores: no difference on any resample


def test_augmented_views_are_fixed_crops_of_the_poster():
    tf = pytest.importorskip("tensorflow")
    from train import features

    images = np.random.default_rng(2).integers(0, 255, (3, 24, 16, 3)).astype(np.float32)
    params = features._view_params("aug1", 3, recipe.Views())
    again = features._view_params("aug1", 3, recipe.Views())
    np.testing.assert_array_equal(params["boxes"], again["boxes"])
    view = features.render("aug1", tf.constant(images), params, slice(0, 3)).numpy()
    assert view.shape == images.shape and 0 <= view.min() and view.max() <= 255
    assert not np.array_equal(view, images)
    np.testing.assert_array_equal(features.render("flipped", tf.constant(images), None, slice(0, 3)).numpy(), images[:, :, ::-1])


def test_a_source_weight_of_zero_trains_on_the_other_posters_alone():
    """data.source_weights = 0 for a folder is exactly training without it (the same batches), and weights
    name folders that exist."""
    pytest.importorskip("tensorflow")
    from pathlib import Path

    from train import data, heads

    rng = np.random.default_rng(4)
    features = rng.normal(size=(2, 60, 5)).astype(np.float16)
    labels = (rng.random((60, 3)) < 0.4).astype(np.float32)
    dataset = data.Dataset([str(i) for i in range(60)], [Path(f"{i}.jpg") for i in range(60)], np.repeat([0, 1], 30),
                           ["x/posters", "y/more-posters"], labels, ["a", "b", "c"])
    weights = dataset.weights({"more-posters": 0.0})
    assert weights.tolist() == [1.0] * 30 + [0.0] * 30 and dataset.weights({"posters": 1.0}) is None
    options = recipe.HeadOptions(hidden=0, max_epochs=3, batch_size=16, seeds=1)
    held = np.arange(0, 60, 7)
    _, weighted = heads.fit(features, labels, options, 3, 0, "w", np.arange(60), held, weights)
    _, alone = heads.fit(features, labels, options, 3, 0, "a", np.arange(30), held)
    np.testing.assert_allclose(weighted, alone, atol=1e-6)
    _, everything = heads.fit(features, labels, options, 3, 0, "e", np.arange(60), held)
    assert not np.allclose(everything, alone, atol=1e-3)
    with pytest.raises(data.DataError, match="not a --data folder"):
        dataset.weights({"thumbnails": 0.5})
