"""train/explain.py: the explanation output agrees with the scores it explains."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from tests.helpers.tiny_model import chained as with_explanations  # noqa: E402
from train import explain  # noqa: E402


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _images(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, height, width, 3)).astype(np.float32)


def test_ensemble_map_is_the_mean_of_its_heads_maps():
    """The shipped structure (train/model.ensemble: backbones, one with the stride-16 tap, each with
    several head sub-models, averaged per backbone, then across backbones): same scores, no new
    weights, and the map is the mean over every (backbone, head) of that head's logits at each location."""
    from train import backbones, heads
    from train.model import ensemble

    keras.utils.set_random_seed(0)
    options = heads.HeadOptions(hidden=8, seeds=2)
    members = {}
    for name in ("tiny_a", "tiny_b-mid"):
        net = backbones.build(name, 64, 32, None)
        posters = _images(8, 64, 32, seed=3).astype(np.uint8)
        backbones.calibrate_batchnorm(net, [posters])  # random weights: else the activations vanish and any map passes
        backbones.calibrate_mid(net, [posters])
        dim = net.output.shape[-1]
        members[name] = (net, [heads.build(dim, 5, options, f"{name}_head{s}") for s in range(options.seeds)])
    model = ensemble(64, 32, members)
    explained = with_explanations(model)
    assert explained.count_params() == model.count_params()  # shared layers, no new weights
    scoring, _ = explain.signatures(model)
    assert sorted(scoring.output) == ["features_0", "features_1", "scores"]  # one feature map per backbone, not per head
    images = _images(2, 64, 32)
    scores, maps = explained.predict(images, verbose=0)
    np.testing.assert_allclose(scores, model.predict(images, verbose=0), atol=1e-6)
    expected = []
    for net, member_heads in members.values():
        feats = net.predict(images, verbose=0)
        for head in member_heads:
            (k1, b1), (k2, b2) = [layer.get_weights() for layer in head.layers if isinstance(layer, layers.Dense)]
            expected.append(np.maximum(feats @ k1 + b1, 0) @ k2 + b2)
    assert all(e.shape == maps.shape for e in expected)  # both tiny backbones reduce alike
    np.testing.assert_allclose(maps, np.mean(expected, axis=0), atol=1e-4)
    assert explain.manifest_entry(model)["explanations"] == {"rows": maps.shape[1], "cols": maps.shape[2], "method": "cam"}


def _member(inputs, name: str, cell: int, n_labels: int, hidden: int | None = None):
    x = layers.AveragePooling2D(cell, name=name)(layers.Rescaling(1 / 255)(inputs))
    x = layers.GlobalAveragePooling2D()(x)
    if hidden:
        x = layers.Dense(hidden, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
    return layers.Dense(n_labels, activation="sigmoid")(x)


def test_two_members_resized_to_the_first_grid_and_averaged():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((48, 32, 3))
    a, b = _member(inputs, "features_0", 8, 4), _member(inputs, "features_1", 16, 4)
    net = keras.Model(inputs, layers.Average()([a, b]))
    explained = with_explanations(net)
    images = _images(1, 48, 32)
    _, maps = explained.predict(images, verbose=0)
    assert maps.shape == (1, 6, 4, 4)

    def member_map(i: int) -> np.ndarray:
        """Member i's map by hand: its feature map times its Dense kernel, plus bias."""
        feats = keras.Model(inputs, net.get_layer(f"features_{i}").output).predict(images, verbose=0)
        dense = [layer for layer in net.layers if isinstance(layer, layers.Dense)][i]
        kernel, bias = dense.get_weights()
        return feats @ kernel + bias

    m0, m1 = member_map(0), member_map(1)
    m1_resized = keras.ops.convert_to_numpy(layers.Resizing(6, 4, "bilinear")(m1))
    np.testing.assert_allclose(maps, (m0 + m1_resized) / 2, atol=1e-5)


def test_nonlinear_head_is_applied_at_every_location():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((48, 32, 3))
    net = keras.Model(inputs, _member(inputs, "features", 8, 3, hidden=5))  # one member: named plainly
    images = _images(1, 48, 32)
    _, maps = with_explanations(net).predict(images, verbose=0)
    feats = keras.Model(inputs, net.get_layer("features").output).predict(images, verbose=0)
    (k1, b1), (k2, b2) = [layer.get_weights() for layer in net.layers if isinstance(layer, layers.Dense)]
    np.testing.assert_allclose(maps, np.maximum(feats @ k1 + b1, 0) @ k2 + b2, atol=1e-5)


def test_a_model_outside_the_convention_is_refused():
    inputs = keras.Input((48, 32, 3))
    pooled = layers.GlobalAveragePooling2D()(inputs)
    net = keras.Model(inputs, layers.Dense(3, activation="sigmoid")(layers.Concatenate()([pooled, pooled])))
    with pytest.raises(ValueError, match="head layer"):
        with_explanations(net)
