"""Adapting each backbone's top to posters: a low-rank update of its last 1x1 convolution.

A backbone's last layer (a 1x1 convolution to 1280 channels, batch norm, ReLU6) turns its
320-channel ImageNet activations into the map the heads pool. Here it gets a low-rank update
``W + s A B`` of its folded kernel (B starts at 0), fine-tuned together with heads that were first
trained as in v2's recipe, so training starts from the frozen model. Its input ("pre-top"
activations, [2 views, N, h, w, 320]) is cached once per backbone, so an epoch costs two small
matmuls per location instead of a backbone run, and the update is merged into the convolution at
export: the served graph, its size and its speed are v2's. The nonlinearity before the pooling is
also where the map's layout can matter: a head on the pooled map alone cannot see it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from train import backbones, cached, features, heads, metrics
from train.fit import multilabel_loss


@dataclass(frozen=True)
class AdaptOptions:
    """The update's rank (0: no adaptation), its scale (LoRA's alpha / r: with Adam, how fast it moves against the heads),
    and the fine-tuning schedule: ``epochs`` of cosine decay from ``lr`` (CV picks where to stop)."""

    rank: int = 0
    scale: float = 4.0
    epochs: int = 4
    lr: float = 5e-4


def top(net: keras.Model) -> tuple[keras.Model, layers.Conv2D, layers.BatchNormalization]:
    """(image -> pre-top activations, the last convolution, its batch norm) of a train.backbones model."""
    if backbones.mid_scale(net) is not None:
        raise ValueError(f"{net.name}: an adapted top needs a backbone without the {backbones.MID!r} tap")
    inner = next((layer for layer in net.layers if isinstance(layer, keras.Model)), None)
    if inner is not None:  # keras.applications MobileNetV2 inside the normalising wrapper
        conv, norm = inner.get_layer("Conv_1"), inner.get_layer("Conv_1_bn")
        below = keras.Model(inner.inputs, conv.input)
        scaled = net.get_layer("scale")(net.inputs[0])
        return keras.Model(net.inputs, below(scaled), name=f"{net.name}_pre_top"), conv, norm
    conv, norm = net.get_layer("top_conv"), net.get_layer("top_bn")
    return keras.Model(net.inputs, conv.input, name=f"{net.name}_pre_top"), conv, norm


def folded(conv: layers.Conv2D, norm: layers.BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """The convolution and its inference-mode batch norm as one affine map: (W [Cin, Cout], b [Cout])."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in norm.get_weights())
    scale = gamma / np.sqrt(var + norm.epsilon)
    kernel = np.asarray(conv.get_weights()[0], np.float64)[0, 0]
    return (kernel * scale).astype(np.float32), (beta - mean * scale).astype(np.float32)


def merge(conv: layers.Conv2D, norm: layers.BatchNormalization, kernel: np.ndarray, bias: np.ndarray) -> None:
    """Write an affine map into the convolution, leaving its batch norm an exact "+ bias"."""
    conv.set_weights([kernel[None, None].astype(np.float32)])
    ones = np.ones_like(bias)
    norm.set_weights([ones, bias.astype(np.float32), np.zeros_like(bias), ones - norm.epsilon])


class LowRankTop(layers.Layer):
    """relu6(z0 + s ((x A) B + c)) per location, z0 = x W + b the frozen folded top (precomputed): a trainable low-rank update."""

    def __init__(self, rank: int, scale: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rank, self.scale = rank, scale

    def build(self, input_shape) -> None:
        (_, _, cin), (_, _, cout) = input_shape
        if self.rank:
            self.a = self.add_weight(shape=(cin, self.rank), initializer=keras.initializers.RandomNormal(stddev=cin**-0.5), name="a")
            self.up = self.add_weight(shape=(self.rank, cout), initializer="zeros", name="up")
            self.c = self.add_weight(shape=(cout,), initializer="zeros", name="c")

    def call(self, inputs):
        x, z = (ops.cast(t, "float32") for t in inputs)
        if self.rank:
            z = z + self.scale * (ops.matmul(ops.matmul(x, self.a), self.up) + self.c)
        return ops.clip(z, 0.0, 6.0)

    def merged(self, kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(W + s A B, b + s c): the adapted top as one affine map, from the frozen one."""
        kernel, bias = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
        if self.rank:
            kernel = kernel + self.scale * np.asarray(self.a, np.float64) @ np.asarray(self.up, np.float64)
            bias = bias + self.scale * np.asarray(self.c, np.float64)
        return kernel.astype(np.float32), bias.astype(np.float32)


def flat(pre_top: np.ndarray) -> np.ndarray:
    """[..., h, w, C] -> [..., h*w, C] (a view where possible)."""
    return pre_top.reshape(*pre_top.shape[:-3], -1, pre_top.shape[-1])


def frozen_top(pre_top: np.ndarray, kernel: np.ndarray, bias: np.ndarray, chunk: int = 512) -> np.ndarray:
    """z0 = x W + b [..., h*w, Cout] float16 for flat ``pre_top`` [..., h*w, Cin]: computed once, shared by every fold."""
    x = pre_top.reshape(-1, *pre_top.shape[-2:])
    out = np.empty((len(x), x.shape[1], kernel.shape[1]), np.float16)
    for start in range(0, len(x), chunk):
        out[start : start + chunk] = np.asarray(x[start : start + chunk], np.float32) @ kernel + bias
    return out.reshape(*pre_top.shape[:-1], kernel.shape[1])


class _Batches(keras.utils.PyDataset):
    """Shuffled batches of (pre-top, z0) rows gathered from the cached arrays: nothing is copied whole (z0 alone is gigabytes)."""

    def __init__(self, pre_top: np.ndarray, z0: np.ndarray, posters: np.ndarray, labels: np.ndarray, heads: int, batch_size: int,
                 seed: int) -> None:
        super().__init__()
        self.pre_top, self.z0, self.labels, self.heads, self.batch_size = pre_top, z0, labels, heads, batch_size
        views = np.repeat(np.arange(pre_top.shape[0]), len(posters))
        self.rows = np.stack([views, np.tile(posters, pre_top.shape[0]), np.tile(np.arange(len(posters)), pre_top.shape[0])], axis=1)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.rows))

    def __len__(self) -> int:
        return int(np.ceil(len(self.rows) / self.batch_size))

    def __getitem__(self, index: int):
        rows = self.rows[np.sort(self.order[index * self.batch_size : (index + 1) * self.batch_size])]
        y = self.labels[rows[:, 2]]
        return (self.pre_top[rows[:, 0], rows[:, 1]], self.z0[rows[:, 0], rows[:, 1]]), (y,) * self.heads

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.rows))


def _scores(net: keras.Model, pre_top: np.ndarray, z0: np.ndarray, posters: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The heads' mean scores of the plain view of ``posters`` (in chunks: no whole copy)."""
    out = []
    for start in range(0, len(posters), chunk):
        rows = posters[start : start + chunk]
        outs = net([pre_top[0, rows], z0[0, rows]], training=False)
        out.append(np.mean([np.asarray(o) for o in outs], axis=0))
    return np.concatenate(out).astype(np.float32)


class _EpochScores(keras.callbacks.Callback):
    def __init__(self, pre_top: np.ndarray, z0: np.ndarray, posters: np.ndarray | None) -> None:
        super().__init__()
        self.pre_top, self.z0, self.posters, self.scores = pre_top, z0, posters, []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.posters is not None:
            self.scores.append(_scores(self.model, self.pre_top, self.z0, self.posters))


def fit(pre_top: np.ndarray, z0: np.ndarray, labels: np.ndarray, trained: list[keras.Model], options: heads.HeadOptions,
        adapt: AdaptOptions, epochs: int, seed: int, name: str, posters: np.ndarray | None = None, held_out: np.ndarray | None = None
        ) -> tuple[LowRankTop, np.ndarray | None]:
    """Fine-tune: the ``trained`` heads (heads.fit_seeds on the frozen pooled features) and the top's update together, for
    ``epochs`` of the ``adapt`` schedule, all heads on one shared adapted map (the heads are updated in place).

    Training the heads first and then both (not both from scratch) keeps the frozen model as the
    starting point: the update only has to improve on it. ``pre_top`` [views, N, h*w, Cin] and
    ``z0`` [views, N, h*w, Cout] (frozen_top) for all posters; training uses ``posters`` (indices;
    default all) with ``labels`` [len(posters), L]. Returns the trained update (``.merged(W, b)``)
    and, with ``held_out`` (indices), the heads' mean scores of those posters after each epoch
    [epochs, M, L]."""
    keras.utils.set_random_seed(seed)
    posters = np.arange(pre_top.shape[1]) if posters is None else posters
    inputs = [keras.Input(pre_top.shape[2:], dtype="float16", name=f"{name}_pre_top"),
              keras.Input(z0.shape[2:], dtype="float16", name=f"{name}_z0")]
    adapted = LowRankTop(adapt.rank, adapt.scale, name=f"{name}_top")
    pooled = ops.mean(adapted(inputs), axis=1)
    net = keras.Model(inputs, [head(pooled) for head in trained])
    batches = _Batches(pre_top, z0, posters, labels.astype(np.float32), len(trained), options.batch_size, seed)
    steps = adapt.epochs * len(batches)
    optimizer = keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(adapt.lr, steps), weight_decay=options.weight_decay)
    loss = multilabel_loss(heads.positive_weights(labels, options.pos_weight_power), options.rank_weight, options.gamma_neg, options.clip)
    net.compile(optimizer=optimizer, loss=[loss] * len(trained))
    record = _EpochScores(pre_top, z0, held_out)
    net.fit(batches, epochs=epochs, verbose=0, callbacks=[record])
    return adapted, (np.stack(record.scores) if held_out is not None else None)


def pre_top_activations(below: keras.Model, name: str, weights: Path | None, images: np.ndarray, ids: list[str],
                        cache: Path | None) -> np.ndarray:
    """[2, N, h, w, Cin] float16 activations of ``below`` (``top(net)[0]``) for the plain and flipped views,
    memory-mapped from ``cache`` once computed."""
    shape = (len(features.VIEWS), len(images), *below.output.shape[1:])
    extract = lambda maps: features.extract(below, images, features.VIEWS, desc=f"{name} pre-top", maps=maps)  # noqa: E731
    if cache is None or weights is None:
        maps = np.zeros(shape, np.float16)
        extract(maps)
        return maps
    path = cached.path(cache, f"pretop-{name}", {**features.base_key(name, weights, images, ids), "pre_top": True})
    if not path.exists():
        start = time.monotonic()
        cached.fill_memmap(path, shape, extract)
        print(f"pre-top activations: {path} ({time.monotonic() - start:.0f} s)", flush=True)
    return np.load(path, mmap_mode="r")


@dataclass
class Top:
    """What adapting one backbone's top needs: its cached input, the frozen top's output, the layers to merge into."""

    pre_top: np.ndarray  # [views, N, h*w, Cin] float16
    z0: np.ndarray  # [views, N, h*w, Cout] float16
    kernel: np.ndarray
    bias: np.ndarray
    conv: layers.Conv2D
    norm: layers.BatchNormalization

    def merge(self, update: LowRankTop) -> None:
        """Write the trained update into the backbone's last convolution (the served graph does not change)."""
        merge(self.conv, self.norm, *update.merged(self.kernel, self.bias))


def prepare(net: keras.Model, name: str, weights: Path | None, images: np.ndarray, ids: list[str], cache: Path | None) -> Top:
    """The backbone's pre-top activations (cached) and its frozen top's output, computed once for every fold and the refit."""
    below, conv, norm = top(net)
    pre = flat(pre_top_activations(below, name, weights, images, ids, cache))
    kernel, bias = folded(conv, norm)
    start = time.monotonic()
    z0 = frozen_top(pre, kernel, bias)
    print(f"{name}: frozen top over the cached activations ({time.monotonic() - start:.0f} s)", flush=True)
    return Top(pre, z0, kernel, bias, conv, norm)


def oof_scores(top: Top, pooled: np.ndarray, labels: np.ndarray, folds: np.ndarray, options: heads.HeadOptions, head_epochs: int,
               adapt: AdaptOptions, name: str, cache: Path | None = None, cache_key: dict | None = None,
               targets: np.ndarray | None = None) -> tuple[np.ndarray, float | None]:
    """Like crossval.oof_scores, for a fine-tuned top: [adapt.epochs, N, L] out-of-fold scores after each fine-tuning epoch, seconds.

    Per fold, heads are trained as the frozen recipe's (``head_epochs``, on ``pooled`` [views, N, C])
    and then fine-tuned with the update. ``targets`` [folds, N, L]: soft targets per held-out fold
    (train/distill.py), as in crossval."""
    key = None
    if cache_key is not None:
        key = {**cache_key, "folds": hashlib.sha256(folds.tobytes()).hexdigest(), "options": asdict(options), "adapt": asdict(adapt),
               "head_epochs": head_epochs, "labels": labels.shape}
        if targets is not None:
            key["targets"] = hashlib.sha256(np.ascontiguousarray(targets, np.float32).tobytes()).hexdigest()

    def compute() -> np.ndarray:
        start = time.monotonic()
        out = np.zeros((adapt.epochs, *labels.shape), np.float32)
        for k in range(folds.max() + 1):
            train, held = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            goal = labels[train] if targets is None else targets[k][train]
            trained = heads.fit_seeds(pooled[:, train], goal, options, head_epochs, 0, f"{name}_cv")
            _, scores = fit(top.pre_top, top.z0, goal, trained, options, adapt, adapt.epochs, k, f"{name}_ft", train, held)
            out[:, held] = scores
            best = max(float(np.nanmean(metrics.average_precision(labels[held], e))) for e in scores)
            print(f"  {name} (adapted top, rank {adapt.rank}): fold {k + 1}/{folds.max() + 1} done, best epoch's mAP {best:.4f} "
                  f"({time.monotonic() - start:.0f} s)", flush=True)
        return out

    return cached.load_or_compute(cache, f"oof-adapt-{name}", key, compute, "out-of-fold scores")
