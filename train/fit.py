"""Training loops: staged transfer learning on cached features, and the seed CNN as published."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from tqdm import tqdm

from train import metrics
from train import model as models


@dataclass
class FitOptions:
    head_epochs: int = 5
    finetune_epochs: int = 25
    batch_size: int = 64
    head_lr: float = 1e-3
    finetune_lr: float = 2e-4
    views: int = 4
    patience: int = 5
    max_pos_weight: float = 1.0
    weight_decay: float = 1e-4
    rank_weight: float = 0.0
    seed: int = 0


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_map: float = float("nan")
    seconds: float = 0.0


def multilabel_loss(pos_weight: np.ndarray, rank_weight: float = 0.0):
    """Binary cross-entropy with per-genre positive weights (rare genres get more gradient),
    plus optionally a listwise term: softmax cross-entropy of the logits against the poster's
    genres spread evenly. BCE scores each genre alone; the listwise term ranks genres against
    each other, which is what one-error and precision@k measure."""
    weight = ops.convert_to_tensor(pos_weight.astype("float32"))

    def loss(y_true, y_pred):
        p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        y = ops.cast(y_true, p.dtype)
        bce = -ops.mean(weight * y * ops.log(p) + (1.0 - y) * ops.log(1.0 - p), axis=-1)
        if not rank_weight:
            return bce
        logits = ops.log(p) - ops.log(1.0 - p)
        target = y / ops.maximum(ops.sum(y, axis=-1, keepdims=True), 1.0)
        return bce - rank_weight * ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)

    return loss


def pos_weights(labels: np.ndarray, cap: float) -> np.ndarray:
    pos = labels.sum(axis=0).clip(1)
    return np.clip(np.sqrt((len(labels) - pos) / pos), 1.0, cap)


def augment(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Random crop (70-100% per side) resized back, horizontal flip, brightness and contrast."""
    count, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    scale = tf.random.stateless_uniform([count, 2], seeds[0], 0.7, 1.0)
    offset = tf.random.stateless_uniform([count, 2], seeds[1], 0.0, 1.0) * (1.0 - scale)
    boxes = tf.concat([offset, offset + scale], axis=1)
    flip = tf.random.stateless_uniform([count], seeds[2]) < 0.5
    boxes = tf.where(flip[:, None], tf.gather(boxes, [0, 3, 2, 1], axis=1), boxes)
    out = tf.image.crop_and_resize(tf.cast(images, tf.float32), boxes, tf.range(count), (height, width))
    brightness = tf.random.stateless_uniform([count, 1, 1, 1], seeds[3], -20.0, 20.0)
    contrast = tf.random.stateless_uniform([count, 1, 1, 1], seeds[4], 0.8, 1.2)
    mean = tf.reduce_mean(out, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((out - mean) * contrast + mean + brightness, 0.0, 255.0)


def cache_features(lower: keras.Model, images: np.ndarray, views: int, batch_size: int, seed: int) -> np.ndarray:
    """[views, N, h, w, c] float16 lower-backbone features: view 0 as is, 1 flipped, rest augmented."""
    run = tf.function(lambda x: lower(x, training=False), reduce_retracing=True)
    out = np.zeros((views, len(images), *lower.output.shape[1:]), dtype=np.float16)
    with tqdm(total=views * len(images), desc="cache features", unit="img") as bar:
        for view in range(views):
            for start in range(0, len(images), batch_size):
                batch = tf.convert_to_tensor(images[start : start + batch_size])
                if view == 0:
                    x = tf.cast(batch, tf.float32)
                elif view == 1:
                    x = tf.cast(batch[:, :, ::-1], tf.float32)
                else:
                    x = augment(batch, tf.constant([seed + view, start], tf.int32))
                out[view, start : start + len(batch)] = run(x).numpy().astype(np.float16)
                bar.update(len(batch))
    return out


def cached_features(cache: Path | None, key: dict, compute) -> np.ndarray:
    """Reuse features computed for the same split, input size, views and weights (experiments)."""
    if cache is None:
        return compute()
    path = cache / f"features-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.npy"
    if path.exists():
        print(f"features from {path}", flush=True)
        return np.load(path)
    features = compute()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, features)
    return features


def correct_prior(model: keras.Model, pos_weight: np.ndarray) -> None:
    """Undo the positive weighting in the output bias, so scores are calibrated probabilities again.

    With weight w on positives the loss is minimised at logit(p) + log(w); subtracting log(w)
    restores ranking *across* genres (one-error, top-k) without changing any genre's AP.
    """
    dense = model.get_layer("genres")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias - np.log(pos_weight).astype(bias.dtype)])


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    return model.predict(x, batch_size=batch_size, verbose=0).astype(np.float32)


def fit_mobilenet(
    model: keras.Model,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    options: FitOptions,
    cache: Path | None = None,
    cache_key: dict | None = None,
) -> History:
    """Stage 1 trains the head, stage 2 also the upper backbone; keeps the best validation mAP."""
    start = time.monotonic()
    keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()  # same data + seed -> same model
    lower, upper = models.split(model)
    key = {**(cache_key or {}), "views": options.views, "seed": options.seed}
    train_feats = cached_features(cache, {**key, "part": "train"}, lambda: cache_features(lower, train_images, options.views, options.batch_size, options.seed))
    val_feats = cached_features(cache, {**key, "part": "val"}, lambda: cache_features(lower, val_images, 1, options.batch_size, options.seed))[0]
    weights = pos_weights(train_labels, options.max_pos_weight)
    loss = multilabel_loss(weights, options.rank_weight)
    rng = np.random.default_rng(options.seed)
    history = History()
    best_weights = None
    stages = (("head", options.head_epochs, options.head_lr, False), ("finetune", options.finetune_epochs, options.finetune_lr, True))
    for stage, epochs, lr, unfreeze in stages:
        models.set_backbone_trainable(model, unfreeze)
        schedule = keras.optimizers.schedules.CosineDecay(lr, max(1, epochs) * int(np.ceil(len(train_labels) / options.batch_size)))
        upper.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=options.weight_decay), loss=loss)
        waited = 0
        for epoch in range(epochs):
            view = rng.integers(0, options.views, len(train_labels))
            x = train_feats[view, np.arange(len(train_labels))]
            print(f"[{stage}] epoch {epoch + 1}/{epochs}", flush=True)
            fit = upper.fit(x, train_labels, batch_size=options.batch_size, epochs=1, shuffle=True, verbose=2)
            scores = predict(upper, val_feats)
            val_map = float(np.nanmean(metrics.average_precision(val_labels, scores)))
            val_loss = float(ops.mean(loss(val_labels, scores)))
            history.epochs.append(
                {"stage": stage, "epoch": len(history.epochs) + 1, "train_loss": float(fit.history["loss"][-1]), "val_loss": val_loss, "val_mAP": val_map}
            )
            print(f"  val_loss={val_loss:.4f} val_mAP={val_map:.4f}", flush=True)
            if not val_map <= history.best_val_map:  # first epoch (NaN) or an improvement
                history.best_val_map, history.best_epoch = val_map, len(history.epochs)
                best_weights = upper.get_weights()
                waited = 0
            else:
                waited += 1
                if stage == "finetune" and waited >= options.patience:
                    print(f"  early stop: no val mAP gain for {waited} epochs", flush=True)
                    break
    if best_weights is not None:
        upper.set_weights(best_weights)
    correct_prior(model, weights)
    history.seconds = time.monotonic() - start
    return history


class Batches(keras.utils.PyDataset):
    """uint8 images cast to float32 one shuffled batch at a time (the whole set as float32 would be ~8 GB)."""

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


def fit_seed_cnn(model: keras.Model, train_images: np.ndarray, train_labels: np.ndarray, epochs: int = 5, batch_size: int = 32, seed: int = 0) -> History:
    """As published: Adam 1e-3, binary cross-entropy, batch 32, 5 epochs, no augmentation."""
    start = time.monotonic()
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    fit = model.fit(Batches(train_images, train_labels, batch_size, seed), epochs=epochs, verbose=2)
    history = History(epochs=[{"stage": "seed", "epoch": i + 1, "train_loss": float(v)} for i, v in enumerate(fit.history["loss"])])
    history.seconds = time.monotonic() - start
    return history
