"""Model definitions: our MobileNetV2 transfer model and the seed project's CNN as published."""

from __future__ import annotations

import keras
from keras import layers

# Last backbone layer that stays frozen; blocks 13-16 and Conv_1 are fine-tuned.
SPLIT_LAYER = "block_12_add"
UPPER_FIRST_LAYER = "block_13_expand"


def mobilenet(height: int, width: int, n_labels: int, weights: str, dropout: float = 0.3) -> keras.Model:
    """ImageNet MobileNetV2 + sigmoid head. Input: float32 RGB 0-255; scaling to [-1, 1] is inside."""
    inputs = keras.Input((height, width, 3), name="image")
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
    backbone = keras.applications.MobileNetV2(
        input_shape=(height, width, 3), include_top=False, weights=None if weights == "none" else weights
    )
    for layer in backbone.layers:
        # The shared weights carry folded batch-norm statistics: keep every BN in inference mode.
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    features = layers.Identity(name="features")(backbone(scaled))  # named for train/explain.py
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    pooled = layers.Dropout(dropout, name="dropout")(pooled)
    outputs = layers.Dense(n_labels, activation="sigmoid", name="genres")(pooled)
    return keras.Model(inputs, outputs, name="postergenre_mobilenetv2")


def backbone_of(model: keras.Model) -> keras.Model:
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def split(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(lower, upper): image -> frozen features, features -> scores. Layers are shared with ``model``.

    Training the upper part on cached lower-part features is what makes fine-tuning affordable on
    a 2-core CPU: the frozen lower blocks are run once per augmented view, not once per epoch.
    """
    backbone = backbone_of(model)
    lower_backbone = keras.Model(backbone.input, backbone.get_layer(SPLIT_LAYER).output)
    image = model.input
    lower = keras.Model(image, lower_backbone(model.get_layer("to_unit_range")(image)), name="lower")
    feats = keras.Input(lower.output.shape[1:], name="features")
    upper_backbone = keras.Model(backbone.get_layer(UPPER_FIRST_LAYER).input, backbone.output)
    x = upper_backbone(feats)
    for name in ("pool", "dropout", "genres"):
        x = model.get_layer(name)(x)
    return lower, keras.Model(feats, x, name="upper")


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Unfreeze (or freeze) the upper backbone blocks; BN layers always stay frozen."""
    backbone = backbone_of(model)
    upper = False
    for layer in backbone.layers:
        upper = upper or layer.name == UPPER_FIRST_LAYER
        if not isinstance(layer, layers.BatchNormalization):
            layer.trainable = trainable and upper
    backbone.trainable = True


def seed_cnn(n_labels: int, size: int = 350) -> keras.Model:
    """The original project's CNN, re-created from its published summary (27.6M parameters at 350x350)."""
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="to_unit_range")(inputs)
    for filters, rate, pool in ((16, 0.3, False), (32, 0.3, True), (64, 0.4, True), (128, 0.5, True)):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        if pool:
            x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(rate)(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(128, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(n_labels, activation="sigmoid", name="genres")(x)
    return keras.Model(inputs, outputs, name="seed_cnn")


def calibrate_batchnorm(model: keras.Model, images) -> None:
    """For ``--weights none`` only: set every batch-norm layer's statistics from data.

    A randomly initialised MobileNetV2 with inference-mode batch norm (mean 0, variance 1) shrinks
    activations to ~1e-12 by the last block, so nothing could be learned on top of it. One
    training-mode pass with momentum 0 stores each layer's batch statistics instead.
    """
    norms = [layer for layer in backbone_of(model).layers if isinstance(layer, layers.BatchNormalization)]
    saved = [(layer.momentum, layer.trainable) for layer in norms]
    for layer in norms:
        layer.momentum, layer.trainable = 0.0, True
    backbone_of(model)(model.get_layer("to_unit_range")(images), training=True)
    for layer, (momentum, trainable) in zip(norms, saved):
        layer.momentum, layer.trainable = momentum, trainable

