"""Losses and the seed CNN's training loop as published (heads on cached features: train/heads.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def multilabel_loss(pos_weight: np.ndarray, rank_weight: float = 0.0, gamma_neg: float = 0.0, clip: float = 0.0):
    """Binary cross-entropy with per-genre positive weights (rare genres get more gradient),
    plus optionally a listwise term: softmax cross-entropy of the logits against the poster's
    genres spread evenly. BCE scores each genre alone; the listwise term ranks genres against
    each other, which is what one-error and precision@k measure.

    ``gamma_neg`` and ``clip`` make the negative part asymmetric (Ridnik et al. 2021, ASL): a
    negative's score is shifted down by ``clip`` (easy negatives below it cost nothing) and its
    loss is scaled by the shifted score to the power ``gamma_neg``, so the many easy negatives of
    rare genres stop dominating. Targets may be soft (distillation): the terms are weighted by them."""
    weight = ops.convert_to_tensor(pos_weight.astype("float32"))

    def loss(y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        y = ops.cast(y_true, p.dtype)
        negative = ops.maximum(p - clip, 0.0) if clip else p
        negative_term = ops.log(ops.maximum(1.0 - negative, 1e-7))
        if gamma_neg:
            negative_term = negative_term * ops.power(negative, gamma_neg)
        bce = -ops.mean(weight * y * ops.log(p) + (1.0 - y) * negative_term, axis=-1)
        if not rank_weight:
            return bce
        logits = ops.log(p) - ops.log(1.0 - p)
        target = y / ops.maximum(ops.sum(y, axis=-1, keepdims=True), 1.0)
        return bce - rank_weight * ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)

    return loss


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    return model.predict(x, batch_size=batch_size, verbose=0).astype(np.float32)


class Batches(keras.utils.PyDataset):
    """uint8 images cast to float32 one shuffled batch at a time (float32 takes four times the memory of the uint8 set)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__()
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return int(np.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])
        return self.images[idx].astype(np.float32), self.labels[idx]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.images))


def fit_seed_cnn(
    model: keras.Model, train_images: np.ndarray, train_labels: np.ndarray, epochs: int = 5, batch_size: int = 32, seed: int = 0
) -> History:
    """As published: Adam 1e-3, binary cross-entropy, batch 32, 5 epochs, no augmentation."""
    start = time.monotonic()
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    fit = model.fit(Batches(train_images, train_labels, batch_size, seed), epochs=epochs, verbose=2)
    history = History(epochs=[{"stage": "seed", "epoch": i + 1, "train_loss": float(v)} for i, v in enumerate(fit.history["loss"])])
    history.seconds = time.monotonic() - start
    return history
