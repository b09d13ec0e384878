"""Genre heads on frozen, cached backbone features: a small MLP per backbone and seed.

Heads see the pooled features of each poster as is and flipped (both cached views), so a head
trains in seconds on a CPU. A cosine schedule of fixed length ``max_epochs`` makes "stop after
epoch e" the same model in cross-validation and in the final refit.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from train.recipe import HeadOptions


def multilabel_loss(pos_weight: np.ndarray, rank_weight: float = 0.0, gamma_neg: float = 0.0, clip: float = 0.0):
    """Binary cross-entropy with per-genre positive weights (rare genres get more gradient),
    plus optionally a listwise term: softmax cross-entropy of the logits against the poster's
    genres spread evenly. BCE scores each genre alone; the listwise term ranks genres against
    each other, which is what one-error and precision@k measure.

    ``gamma_neg`` and ``clip`` make the negative part asymmetric (Ridnik et al. 2021, ASL): a
    negative's score is shifted down by ``clip`` (easy negatives below it cost nothing) and its
    loss is scaled by the shifted score to the power ``gamma_neg``, so the many easy negatives of
    rare genres stop dominating."""
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


class _Rows(keras.utils.PyDataset):
    """Shuffled batches of (view, poster) rows gathered from float16 features [V, N, C] and cast to float32 one batch at
    a time, so training copies no whole array (the features may be a memory-mapped cache file)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, rows: np.ndarray, batch_size: int, seed: int,
                 weights: np.ndarray | None = None) -> None:
        super().__init__()
        views, self.count, dim = features.shape
        self.flat, self.labels, self.batch_size, self.weights = features.reshape(views * self.count, dim), labels, batch_size, weights
        rows = rows if weights is None else rows[weights[rows] > 0]  # weight 0: not trained on at all
        self.index = (np.arange(views)[:, None] * self.count + rows[None, :]).ravel()
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(self.index)

    def __len__(self) -> int:
        return int(np.ceil(len(self.index) / self.batch_size))

    def __getitem__(self, batch: int) -> tuple[np.ndarray, ...]:
        idx = np.sort(self.order[batch * self.batch_size : (batch + 1) * self.batch_size])  # sorted: sequential reads
        x, y = self.flat[idx].astype(np.float32), self.labels[idx % self.count].astype(np.float32)
        return (x, y) if self.weights is None else (x, y, self.weights[idx % self.count])

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.index)


class _EpochScores(keras.callbacks.Callback):
    """Scores of the held-out posters (their plain view) after every epoch (no retraining to pick the epoch)."""

    def __init__(self, features: np.ndarray, rows: np.ndarray | None, chunk: int = 1024) -> None:
        super().__init__()
        self.features, self.rows, self.chunk, self.scores = features, rows, chunk, []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.rows is not None:
            parts = [self.model(self.features[0, self.rows[i : i + self.chunk]].astype(np.float32), training=False)
                     for i in range(0, len(self.rows), self.chunk)]
            self.scores.append(np.concatenate([np.asarray(p, np.float32) for p in parts]))


def fit(features: np.ndarray, labels: np.ndarray, options: HeadOptions, epochs: int, seed: int, name: str,
        rows: np.ndarray | None = None, held_out: np.ndarray | None = None, weights: np.ndarray | None = None
        ) -> tuple[keras.Model, np.ndarray | None]:
    """Train one head on the posters ``rows`` (default: all) of ``features`` [views, N, C] (``labels`` [N, L]) for
    ``epochs`` of the ``max_epochs`` schedule, each poster's loss times its ``weights`` entry (None: all 1). Returns the
    head and, if ``held_out`` (poster rows) is given, its scores on them after each epoch [epochs, len(held_out), L]."""
    keras.utils.set_random_seed(seed)
    rows = np.arange(features.shape[1]) if rows is None else rows
    batches = _Rows(features, labels, rows, options.batch_size, seed, weights)
    head = build(features.shape[-1], labels.shape[1], options, name)
    steps = options.max_epochs * len(batches)
    optimizer = keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(options.lr, steps), weight_decay=options.weight_decay)
    trained = np.unique(batches.index % features.shape[1])  # the posters trained on (a weight of 0 leaves one out)
    loss = multilabel_loss(positive_weights(labels[trained], options.pos_weight_power), options.rank_weight, options.gamma_neg,
                           options.clip)
    head.compile(optimizer=optimizer, loss=loss)
    record = _EpochScores(features, held_out)
    head.fit(batches, epochs=epochs, verbose=0, callbacks=[record])
    return head, (np.stack(record.scores) if held_out is not None else None)


def fit_seeds(features: np.ndarray, labels: np.ndarray, options: HeadOptions, epochs: int, seed: int, name: str,
              weights: np.ndarray | None = None) -> list[keras.Model]:
    """``options.seeds`` heads (seeds seed, seed+1, ...; named ``name`` + index) trained as ``fit`` trains one."""
    return [fit(features, labels, options, epochs, seed + s, f"{name}{s}", weights=weights)[0] for s in range(options.seeds)]
