"""train/backbones.py's ``-mid`` backbones: the last map unchanged, the stride-16 tap pooled onto its grid and scaled."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from train import backbones  # noqa: E402


def _posters(count: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("name", "tap", "width"), [("mobilenetv2", backbones.MOBILENET_MID, 576), ("tiny_a", None, None)])
def test_mid_backbone_appends_the_scaled_tap_to_the_last_map(name, tap, width):
    """Same weights: the first channels are the plain backbone's map; the rest are the tap's activations,
    2x2-averaged onto the last grid (odd sizes included), standardised per channel over the calibration
    posters and brought to the last map's scale."""
    height, cols = 112, 80  # stride 16: 7 x 5 -> the last grid 4 x 3 (an odd edge)
    keras.utils.set_random_seed(0)
    plain = backbones.build(name, height, cols, None)
    backbones.calibrate_batchnorm(plain, [_posters(16, height, cols)])
    mid = backbones.build(f"{name}{backbones.MID}", height, cols, None)
    mid.set_weights(plain.get_weights() + mid.get_weights()[len(plain.get_weights()):])
    posters = _posters(40, height, cols)
    backbones.calibrate_mid(mid, (posters[i : i + 16] for i in range(0, 40, 16)))  # in batches, as training streams them

    images = posters.astype(np.float32)
    last, combined = plain.predict(images, verbose=0), mid.predict(images, verbose=0)
    layer = backbones.MOBILENET_MID if tap else backbones.lite_mid(name)
    source = next(m for m in [mid, *[x for x in mid.layers if isinstance(x, keras.Model)]] if layer in [y.name for y in m.layers])
    activations = keras.Model(source.inputs, source.get_layer(layer).output)
    raw = activations.predict(images if source is mid else images / 127.5 - 1, verbose=0)
    assert raw.shape[1:3] == (7, 5)  # the tap is the stride-16 grid
    width = width or raw.shape[-1]
    assert combined.shape == (40, *last.shape[1:3], last.shape[-1] + width)
    np.testing.assert_allclose(combined[..., : last.shape[-1]], last, atol=1e-5)

    padded = np.pad(raw, ((0, 0), (0, raw.shape[1] % 2), (0, raw.shape[2] % 2), (0, 0)), constant_values=np.nan)
    pooled = np.nanmean(padded.reshape(40, padded.shape[1] // 2, 2, padded.shape[2] // 2, 2, width), axis=(2, 4))
    kernel, bias = mid.get_layer(backbones.MID_SCALE).get_weights()
    np.testing.assert_allclose(combined[..., last.shape[-1] :], pooled * kernel[0, 0, :, 0] + bias, rtol=1e-4, atol=1e-4)

    tap_pooled = combined[..., last.shape[-1] :].mean(axis=(1, 2))
    np.testing.assert_allclose(tap_pooled.mean(axis=0), 0, atol=1e-4)  # all 40 posters were the calibration sample
    live = raw.std(axis=(0, 1, 2)) > 1e-3
    np.testing.assert_allclose(tap_pooled.std(axis=0)[live], last.mean(axis=(1, 2)).std(axis=0).mean(), rtol=1e-2)


def test_a_plain_backbone_is_left_alone_and_names_are_checked():
    net = backbones.build("tiny_b", 64, 32, None)
    before = [w.copy() for w in net.get_weights()]
    backbones.calibrate_mid(net, [_posters(4, 64, 32)])
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights(), strict=True))
    with pytest.raises(ValueError, match="choose from mobilenetv2, .* each also with '-mid'"):
        backbones.build("resnet50-mid", 64, 32, None)


def test_a_dead_tap_channel_gets_weight_zero():
    """A tap channel that never fires has no spread to standardise by: its scale is 0, not ~1/0
    (which overflows fp16 in the export and would blow up the first poster that does fire it)."""
    keras.utils.set_random_seed(2)
    net = backbones.build("tiny_a-mid", 64, 32, None)
    posters = _posters(16, 64, 32)
    backbones.calibrate_batchnorm(net, [posters])
    norm = net.get_layer(backbones.lite_mid("tiny_a").replace("_relu", "_bn"))
    gamma, beta, mean, variance = norm.get_weights()
    beta[0] = -1e3  # channel 0 of the tap: ReLU6 of a very negative value, always 0
    norm.set_weights([gamma, beta, mean, variance])
    backbones.calibrate_mid(net, [posters])
    kernel, bias = net.get_layer(backbones.MID_SCALE).get_weights()
    assert kernel[0, 0, 0, 0] == 0 and bias[0] == 0
    assert np.all(kernel[0, 0, 1:, 0] > 0) and np.abs(kernel).max() < np.finfo(np.float16).max


def test_batch_norm_calibration_in_batches_averages_the_batch_statistics():
    """Random weights are calibrated batch by batch (memory of one batch): the stored mean is the batches' average,
    so two halves give the first batch norm the mean one pass over all posters gives."""
    posters = _posters(32, 64, 32)
    nets = []
    for batches in ([posters], [posters[:16], posters[16:]]):
        keras.utils.set_random_seed(5)
        net = backbones.build("tiny_b", 64, 32, None)
        backbones.calibrate_batchnorm(net, batches)
        nets.append(net)
    first = next(layer.name for layer in nets[0]._flatten_layers(include_self=False) if isinstance(layer, keras.layers.BatchNormalization))  # noqa: SLF001
    whole, halves = (n.get_layer(first).moving_mean.numpy() for n in nets)
    assert np.abs(whole).max() > 1e-3  # calibrated: not the initial zeros
    np.testing.assert_allclose(halves, whole, rtol=1e-4, atol=1e-5)
    assert all(layer.momentum == 0.99 for layer in nets[1]._flatten_layers(include_self=False)  # noqa: SLF001
               if isinstance(layer, keras.layers.BatchNormalization))


def test_a_mid_ensemble_exports_with_its_scores_and_explanations():
    """The fp16 TFLite file of an ensemble with a ``-mid`` member gives Keras's scores, its feature map
    (last map + tap channels) and the explanation map on that map's grid."""
    import tensorflow as tf

    from postergenre import artifact
    from train import explain, export, heads
    from train.model import ensemble

    keras.utils.set_random_seed(1)
    height, cols = 96, 64
    net = backbones.build("tiny_a-mid", height, cols, None)
    backbones.calibrate_batchnorm(net, [_posters(16, height, cols)])
    backbones.calibrate_mid(net, [_posters(16, height, cols)])
    member = [heads.build(net.output.shape[-1], 3, heads.HeadOptions(hidden=8), f"head{s}") for s in range(2)]
    model = ensemble(height, cols, {"tiny_a-mid": (net, member)})
    interpreter = tf.lite.Interpreter(model_content=export.to_tflite(model, height, cols, explanations=True))
    image = _posters(1, height, cols).astype(np.float32)
    scored = interpreter.get_signature_runner(artifact.SCORES_SIGNATURE)(image=image)
    np.testing.assert_allclose(scored["scores"], model.predict(image, verbose=0), atol=2e-3)
    np.testing.assert_allclose(scored["features_0"], net.predict(image, verbose=0), atol=5e-2, rtol=5e-2)  # fp16 weights
    explained = interpreter.get_signature_runner(artifact.EXPLAIN_SIGNATURE)(features_0=scored["features_0"])["explanations"]
    grid = explain.manifest_entry(model)["explanations"]
    assert explained.shape == (1, grid["rows"], grid["cols"], 3) == (1, *net.output.shape[1:3], 3)
