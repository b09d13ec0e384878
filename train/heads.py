"""Genre heads on frozen, cached backbone features: a small MLP per backbone and seed.

Heads see the pooled features of each poster as is and flipped (both cached views), so a head
trains in seconds on a CPU. A cosine schedule of fixed length ``max_epochs`` makes "stop after
epoch e" the same model in cross-validation and in the final refit.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from train.fit import multilabel_loss


@dataclass
class HeadOptions:
    """How the heads are trained; these defaults are `python -m train`'s (its options leave them unset)."""

    hidden: int = 512
    input_dropout: float = 0.2
    dropout: float = 0.5
    max_epochs: int = 20
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    rank_weight: float = 0.0
    seeds: int = 3
    gamma_neg: float = 0.0  # asymmetric loss (train/fit.multilabel_loss); 0 with clip 0: plain BCE
    clip: float = 0.0
    pos_weight_power: float = 0.0  # positives weighted (negatives / positives) ** this, per genre


def positive_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-genre weight of the positive term: (negatives / positives) ** power, so rare genres count more (power 0: all 1)."""
    positives = np.clip(labels.mean(axis=0), 1e-3, 1 - 1e-3)
    return ((1 - positives) / positives) ** power


def build(in_dim: int, n_labels: int, options: HeadOptions, name: str) -> keras.Model:
    """Pooled features -> sigmoid genre scores (hidden=0: a linear head)."""
    features = keras.Input((in_dim,), name=f"{name}_features")
    x = layers.Dropout(options.input_dropout, name=f"{name}_input_dropout")(features)
    if options.hidden:
        x = layers.Dense(options.hidden, activation="relu", name=f"{name}_hidden")(x)
        x = layers.Dropout(options.dropout, name=f"{name}_dropout")(x)
    return keras.Model(features, layers.Dense(n_labels, activation="sigmoid", name=f"{name}_scores")(x), name=name)


class _EpochScores(keras.callbacks.Callback):
    """Scores of the held-out features after every epoch (no retraining to pick the epoch)."""

    def __init__(self, features: np.ndarray | None) -> None:
        super().__init__()
        self.features, self.scores = features, []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.features is not None:
            self.scores.append(np.asarray(self.model(self.features, training=False), np.float32))


def fit(features: np.ndarray, labels: np.ndarray, options: HeadOptions, epochs: int, seed: int, name: str,
        held_out: np.ndarray | None = None) -> tuple[keras.Model, np.ndarray | None]:
    """Train one head on ``features`` [views, N, C] for ``epochs`` of the ``max_epochs`` schedule.

    ``labels`` may be soft targets (distillation: train/distill.py). Returns the head and, if
    ``held_out`` [M, C] is given, its scores after each epoch [epochs, M, L].
    """
    keras.utils.set_random_seed(seed)
    views, count, dim = features.shape
    x = features.reshape(views * count, dim).astype(np.float32)
    y = np.tile(labels, (views, 1)).astype(np.float32)
    head = build(dim, labels.shape[1], options, name)
    steps = options.max_epochs * int(np.ceil(len(x) / options.batch_size))
    optimizer = keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(options.lr, steps), weight_decay=options.weight_decay)
    loss = multilabel_loss(positive_weights(labels, options.pos_weight_power), options.rank_weight, options.gamma_neg, options.clip)
    head.compile(optimizer=optimizer, loss=loss)
    record = _EpochScores(None if held_out is None else tf.constant(held_out, tf.float32))
    head.fit(x, y, batch_size=options.batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[record])
    return head, (np.stack(record.scores) if held_out is not None else None)


def fit_seeds(features: np.ndarray, labels: np.ndarray, options: HeadOptions, epochs: int, seed: int, name: str) -> list[keras.Model]:
    """``options.seeds`` heads (seeds seed, seed+1, ...; named ``name`` + index) trained as ``fit`` trains one."""
    return [fit(features, labels, options, epochs, seed + s, f"{name}{s}")[0] for s in range(options.seeds)]
