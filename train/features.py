"""Frozen backbone features, computed once per backbone and cached on disk.

Heads are trained on global-average-pooled features of each poster as is and flipped left-right
(views "plain" and "flipped"), optionally plus augmented views ("aug<k>": a random crop rescaled
to the input size, colour jitter, odd k mirrored). Running a backbone is the expensive part of
training on a 2-core CPU, so every cross-validation fold and the final refit reuse the same
arrays; each part (base views, augmented views) is cached under its own key (train/cached.py),
so adding views never recomputes the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from train import backbones, cached
from train.weights import weights_file

VIEWS = ("plain", "flipped")
AUGMENT_SEED = 20


@dataclass(frozen=True)
class Augment:
    """Ranges of the augmented views: crop area share and aspect change, colour jitter."""

    area: tuple[float, float] = (0.55, 1.0)
    aspect: tuple[float, float] = (0.8, 1.25)
    brightness: float = 0.12  # x 255, added
    contrast: float = 0.25  # factor 1 +/- this, around the image mean
    saturation: float = 0.3  # factor 1 +/- this, around the grey value


def augmented_views(count: int) -> tuple[str, ...]:
    return tuple(f"aug{k}" for k in range(count))


def _view_params(view: str, n: int, augment: Augment) -> dict[str, np.ndarray] | None:
    """Per-poster crop boxes (normalised y1, x1, y2, x2) and colour factors of one view; fixed by the view's name."""
    if not view.startswith("aug"):
        return None
    rng = np.random.default_rng([AUGMENT_SEED, int(view[3:])])
    area = rng.uniform(*augment.area, n)
    aspect = np.exp(rng.uniform(*np.log(augment.aspect), n))
    h, w = np.minimum(np.sqrt(area / aspect), 1.0), np.minimum(np.sqrt(area * aspect), 1.0)
    y, x = rng.uniform(0, 1, n) * (1 - h), rng.uniform(0, 1, n) * (1 - w)
    return {
        "boxes": np.stack([y, x, y + h, x + w], axis=1).astype(np.float32),
        "brightness": rng.uniform(-augment.brightness, augment.brightness, n).astype(np.float32) * 255,
        "contrast": rng.uniform(1 - augment.contrast, 1 + augment.contrast, n).astype(np.float32),
        "saturation": rng.uniform(1 - augment.saturation, 1 + augment.saturation, n).astype(np.float32),
    }


def render(view: str, batch: tf.Tensor, params: dict[str, np.ndarray] | None, rows: slice) -> tf.Tensor:
    """A float32 0-255 batch as ``view`` sees it (``params`` from _view_params, ``rows`` the batch's posters)."""
    if view == "plain":
        return batch
    if view == "flipped":
        return batch[:, :, ::-1]
    height, width = batch.shape[1], batch.shape[2]
    x = tf.image.crop_and_resize(batch, params["boxes"][rows], tf.range(tf.shape(batch)[0]), (height, width))
    column = lambda key: tf.constant(params[key][rows])[:, None, None, None]  # noqa: E731
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    x = grey + column("saturation") * (x - grey)
    mean = tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
    x = mean + column("contrast") * (x - mean) + column("brightness")
    x = tf.clip_by_value(x, 0.0, 255.0)
    return x[:, :, ::-1] if int(view[3:]) % 2 else x


def extract(backbone: keras.Model, images: np.ndarray, views: tuple[str, ...] = VIEWS, batch_size: int = 32, desc: str = "features",
            maps: np.ndarray | None = None, augment: Augment = Augment()) -> np.ndarray:
    """[len(views), N, C] float16 pooled features of uint8 images [N, H, W, 3]; with ``maps`` (a writable
    [len(views), N, h, w, C] array) the last feature maps are stored there too."""
    run = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)
    params = {view: _view_params(view, len(images), augment) for view in views}
    out = None
    with tqdm(total=len(views) * len(images), desc=desc, unit="img", mininterval=30) as bar:
        for start in range(0, len(images), batch_size):
            rows = slice(start, min(start + batch_size, len(images)))
            batch = tf.cast(tf.convert_to_tensor(images[rows]), tf.float32)
            for v, view in enumerate(views):
                fmap = run(render(view, batch, params[view], rows))
                pooled = tf.reduce_mean(fmap, axis=(1, 2)).numpy()
                if out is None:
                    out = np.zeros((len(views), len(images), pooled.shape[-1]), np.float16)
                out[v, rows] = pooled
                if maps is not None:
                    maps[v, rows] = fmap.numpy().astype(np.float16)
            bar.update(len(views) * len(batch))
    return out


def weights_digest(path: Path) -> str:
    """Content hash of a weights file; for .npz over the arrays, so a re-conversion keeps the cache."""
    digest = hashlib.sha256()
    if path.suffix == ".npz":
        with np.load(path) as arrays:
            for key in sorted(arrays.files):
                digest.update(key.encode())
                digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    else:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def base_key(name: str, weights: Path, images: np.ndarray, ids: list[str]) -> dict:
    """What a backbone's activations of these posters depend on: the posters, the input size, the weights' content, the views
    (and for a ``-mid`` backbone the posters its tap's scaling comes from)."""
    return {
        "backbone": name,
        "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        "size": list(images.shape[1:3]),
        "weights": weights_digest(weights / weights_file(backbones.base_name(name))),
        "views": VIEWS,
        **({"mid_sample": backbones.MID_SAMPLE} if backbones.tapped(name) else {}),  # the tap's scaling (calibrate_mid)
    }


def backbone_features(net: keras.Model, name: str, weights: Path | None, images: np.ndarray, ids: list[str],
                      cache: Path | None, augmented: int = 0, augment: Augment = Augment()) -> tuple[np.ndarray, dict | None]:
    """(pooled features [2 + augmented, N, C] of ``images`` (posters ``ids``), their cache key), from ``cache`` if computed before.

    The key (base_key, of the base views; views_key gives the others') names what they depend on;
    random weights (tests) are never cached (key None).
    """
    views = VIEWS + augmented_views(augmented)
    if cache is None or weights is None:
        return extract(net, images, views, desc=name, augment=augment), None
    key = base_key(name, weights, images, ids)
    parts = [_cached(cache, key, lambda: extract(net, images, VIEWS, desc=name))]
    if augmented:
        extra = {**key, "views": augmented_views(augmented), "augment": asdict(augment)}
        parts.append(_cached(cache, extra, lambda: extract(net, images, extra["views"], desc=f"{name} augmented", augment=augment)))
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), key


def views_key(key: dict | None, augmented: int, augment: Augment = Augment()) -> dict | None:
    """The cache key of the first 2 + ``augmented`` views, from backbone_features' key (its base views)."""
    if key is None or not augmented:
        return key
    return {**key, "views": VIEWS + augmented_views(augmented), "augment": asdict(augment)}


def _cached(cache: Path, key: dict, compute) -> np.ndarray:
    return cached.load_or_compute(cache, key["backbone"], key, compute, "features")[0]
