"""Head recipes (train/variants.py): asymmetric loss, distillation targets without leaks, bootstrap intervals, augmented views."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def test_asymmetric_loss_ignores_easy_negatives_and_keeps_positives():
    from train.fit import multilabel_loss

    y = np.array([[1.0, 0.0, 0.0]], np.float32)
    easy = np.array([[0.7, 0.03, 0.5]], np.float32)
    plain, asl = multilabel_loss(np.ones(3), gamma_neg=0.0, clip=0.0), multilabel_loss(np.ones(3), gamma_neg=4.0, clip=0.05)
    only_positive = -np.log(0.7) / 3
    assert float(asl(y, easy)[0]) < float(plain(y, easy)[0])
    assert float(asl(y, easy)[0]) == pytest.approx(only_positive + -(0.45**4) * np.log(0.55) / 3, rel=1e-4)  # 0.03 < clip: free


def test_teacher_targets_never_saw_the_held_out_fold():
    """For held-out fold k, a training poster's teacher score comes from heads trained without fold k:
    changing fold k's labels leaves every target of fold k's training posters unchanged."""
    from train import data, distill, heads

    rng = np.random.default_rng(0)
    n, dim = 120, 6
    feats = {"a": rng.normal(size=(2, n, dim)).astype(np.float32)}
    labels = (rng.random((n, 3)) < 0.4).astype(np.float32)
    folds = data.stratified_folds(labels, 3, 0)
    options = heads.HeadOptions(hidden=0, max_epochs=3, batch_size=32, seeds=1)
    pairs, _ = distill.pair_scores(feats, labels, folds, options, {"a": 3}, {"a": None})
    changed = labels.copy()
    changed[folds == 0] = 1 - changed[folds == 0]
    again, _ = distill.pair_scores(feats, changed, folds, options, {"a": 3}, {"a": None})
    np.testing.assert_allclose(pairs[0][folds != 0], again[0][folds != 0], atol=1e-6)
    assert not np.allclose(pairs[1][folds == 2], again[1][folds == 2])  # fold 0 is training data there
    soft = distill.targets(labels, pairs[0], 0.5)
    assert soft.min() >= 0 and soft.max() <= 1


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


def test_recipes_parse_over_the_base():
    from train import heads, variants

    base = variants.Recipe("v2 recipe", heads.HeadOptions(hidden=512))
    asl, aug = variants.parse("asl:gamma_neg=4,clip=0.05;aug:augmented_views=2,distill=0.5", base)
    assert (asl.name, asl.options.gamma_neg, asl.options.clip, asl.options.hidden) == ("asl", 4.0, 0.05, 512)
    assert (aug.augmented_views, aug.distill) == (2, 0.5)
    assert variants.teacher(asl).options == base.options
    with pytest.raises(ValueError):
        variants.parse("x:nonsense=1", base)


def test_augmented_views_are_fixed_crops_of_the_poster():
    import tensorflow as tf

    from train import features

    images = np.random.default_rng(2).integers(0, 255, (3, 24, 16, 3)).astype(np.float32)
    params = features._view_params("aug1", 3, features.Augment())
    again = features._view_params("aug1", 3, features.Augment())
    np.testing.assert_array_equal(params["boxes"], again["boxes"])
    view = features.render("aug1", tf.constant(images), params, slice(0, 3)).numpy()
    assert view.shape == images.shape and 0 <= view.min() and view.max() <= 255
    np.testing.assert_array_equal(features.render("flipped", tf.constant(images), None, slice(0, 3)).numpy(), images[:, :, ::-1])


@pytest.mark.parametrize("backbone", ["tiny_a", "mobilenetv2"])
def test_adapted_top_merges_into_the_backbone_exactly(backbone):
    """The update trained on cached pre-top activations, once merged into the last convolution,
    gives the backbone the map it was trained on: the served graph computes what training saw."""
    import keras

    from train import adapt, backbones, heads

    keras.utils.set_random_seed(3)
    net = backbones.build(backbone, 64, 32, None)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (24, 64, 32, 3), dtype=np.uint8)
    backbones.calibrate_batchnorm(net, images)
    top = adapt.prepare(net, backbone, None, images, [str(i) for i in range(len(images))], None)
    before = np.asarray(net(images[:4].astype(np.float32)))
    np.testing.assert_allclose(np.clip(top.z0[0, :4].astype(np.float32), 0, 6), before.reshape(4, -1, before.shape[-1]), atol=0.05)
    labels = (rng.random((24, 3)) < 0.4).astype(np.float32)
    options = heads.HeadOptions(hidden=8, max_epochs=3, batch_size=8, seeds=2, lr=5e-2)
    pooled = np.clip(top.z0.astype(np.float32), 0, 6).mean(axis=2)
    fitted = heads.fit_seeds(pooled, labels, options, 3, 0, "h")
    update, curve = adapt.fit(top.pre_top, top.z0, labels, fitted, options, adapt.AdaptOptions(rank=4, lr=5e-2), 3, 0, "t",
                              held_out=np.arange(4))
    assert len(fitted) == 2 and curve.shape == (3, 4, 3)
    trained = np.asarray(update([top.pre_top[0, :4].astype(np.float32), top.z0[0, :4].astype(np.float32)]))
    assert np.abs(trained - np.clip(top.z0[0, :4].astype(np.float32), 0, 6)).max() > 1e-3  # the update moved
    top.merge(update)
    after = np.asarray(net(images[:4].astype(np.float32))).reshape(trained.shape)
    np.testing.assert_allclose(after, trained, atol=0.05)
    np.testing.assert_allclose(np.mean([np.asarray(h(after.mean(axis=1))) for h in fitted], axis=0), curve[-1], atol=1e-2)
