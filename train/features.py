"""The features stage: frozen backbone features of every poster, computed batch by batch and cached on disk.

Heads are trained on global-average-pooled features of each poster as is and flipped left-right
(views "plain" and "flipped"), optionally plus augmented views ("aug<k>": a random crop rescaled
to the input size, colour jitter, odd k mirrored; the recipe's ``[views]``). Running a backbone is
the expensive part of training on a 2-core CPU, so every cross-validation fold and the final refit
reuse the same arrays. Posters are decoded in batches straight into the backbone and their pooled
features written into a memory-mapped cache file (train/cached.py): a few KB per poster and view
are all that is kept, never the pixels.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from postergenre import artifact
from train import backbones, cached, data, quiet
from train.recipe import Recipe, Views
from train.weights import weights_file

VIEWS = ("plain", "flipped")
AUGMENT_SEED = 20
CALIBRATION_POSTERS = 256  # random weights: batch-norm statistics from this many posters of the first folder
BATCH = 32  # posters decoded and run at once: the stage's memory is a few batches, whatever the number of posters


def augmented_views(count: int) -> tuple[str, ...]:
    return tuple(f"aug{k}" for k in range(count))


def _view_params(view: str, n: int, views: Views) -> dict[str, np.ndarray] | None:
    """Per-poster crop boxes (normalised y1, x1, y2, x2) and colour factors of one view; fixed by the view's name."""
    if not view.startswith("aug"):
        return None
    rng = np.random.default_rng([AUGMENT_SEED, int(view[3:])])
    area = rng.uniform(*views.area, n)
    aspect = np.exp(rng.uniform(*np.log(views.aspect), n))
    h, w = np.minimum(np.sqrt(area / aspect), 1.0), np.minimum(np.sqrt(area * aspect), 1.0)
    y, x = rng.uniform(0, 1, n) * (1 - h), rng.uniform(0, 1, n) * (1 - w)
    return {
        "boxes": np.stack([y, x, y + h, x + w], axis=1).astype(np.float32),
        "brightness": rng.uniform(-views.brightness, views.brightness, n).astype(np.float32) * 255,
        "contrast": rng.uniform(1 - views.contrast, 1 + views.contrast, n).astype(np.float32),
        "saturation": rng.uniform(1 - views.saturation, 1 + views.saturation, n).astype(np.float32),
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


def extract(backbone: keras.Model, paths: list[Path], spec: artifact.InputSpec, names: tuple[str, ...], out: np.ndarray,
            views: Views, desc: str = "features") -> None:
    """Write the pooled features of the posters ``paths`` under each view of ``names`` into ``out`` [len(names), N, C]
    (a memory-mapped cache file or an array), decoding the posters batch by batch on the way."""
    run = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)
    params = {view: _view_params(view, len(paths), views) for view in names}
    start = 0
    with tqdm(total=len(names) * len(paths), desc=desc, unit="img", mininterval=30) as bar:
        for pixels in data.batches(paths, spec, BATCH):
            rows = slice(start, start + len(pixels))
            batch = tf.cast(tf.convert_to_tensor(pixels), tf.float32)
            for v, view in enumerate(names):
                out[v, rows] = tf.reduce_mean(run(render(view, batch, params[view], rows)), axis=(1, 2)).numpy()
            start += len(pixels)
            bar.update(len(names) * len(pixels))


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


def _digest(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def base_key(name: str, weights: Path, spec: artifact.InputSpec, ids: list[str], calibration_ids: list[str]) -> dict:
    """What a backbone's activations of the posters ``ids`` depend on: the posters, the input size, the weights' content, the
    views, and for a ``-mid`` backbone the posters its tap's scaling comes from (``calibration_ids``; named only when they
    are not the same posters)."""
    key = {
        "backbone": name,
        "ids": _digest(ids),
        "size": [spec.height, spec.width],
        "weights": weights_digest(weights / weights_file(backbones.base_name(name))),
        "views": VIEWS,
    }
    if backbones.tapped(name):
        key["mid_sample"] = backbones.MID_SAMPLE
        if calibration_ids != ids:
            key["mid_calibration"] = _digest(calibration_ids)
    return key


def build(name: str, recipe: Recipe, dataset: data.Dataset, weights: Path | None) -> keras.Model:
    """The backbone ready to extract: built, and calibrated on the first data folder's posters (batch norm for random
    weights, the ``-mid`` tap's scaling), so adding a folder leaves the others' features as they were."""
    spec = recipe.model.spec()
    keras.utils.set_random_seed(recipe.cross_validation.seed + list(recipe.model.backbones + recipe.model.candidates).index(name))
    with quiet.native_stderr():
        net = backbones.build(name, spec.height, spec.width, weights)
    first = [dataset.paths[i] for i in dataset.folder_rows(0)]
    if weights is None:  # random weights: reproducible by the seed above, made usable by data statistics
        backbones.calibrate_batchnorm(net, data.batches(first[:CALIBRATION_POSTERS], spec, BATCH))
    backbones.calibrate_mid(net, data.batches([first[i] for i in backbones.mid_sample(len(first))], spec, BATCH))
    return net


def backbone_features(net: keras.Model, name: str, recipe: Recipe, dataset: data.Dataset, weights: Path | None,
                      cache: Path | None) -> tuple[np.ndarray, list[dict | None]]:
    """(pooled features [2 + views.augmented, N, C] of every poster, the cache key of each folder's base views).

    Each folder's features are cached on their own (the base views and the augmented views under separate keys), so a
    re-run, or a run that adds a folder, computes only what is new; random weights (tests) are never cached. With one
    folder and no augmented views the result is the memory-mapped cache file itself, else the parts joined in memory.
    """
    spec, views = recipe.model.spec(), recipe.views
    first = [dataset.ids[i] for i in dataset.folder_rows(0)]
    per_folder, keys = [], []
    for k, folder in enumerate(dataset.folders):
        rows = dataset.folder_rows(k)
        ids, paths = [dataset.ids[i] for i in rows], [dataset.paths[i] for i in rows]
        key = None if cache is None or weights is None else base_key(name, weights, spec, ids, first)
        groups = [(VIEWS, key)]
        if views.augmented:
            extra = augmented_views(views.augmented)
            groups.append((extra, None if key is None else {**key, "views": extra, "augment": asdict(replace(views, augmented=0))}))
        parts = [_views(net, paths, spec, names, views, cache, (name, part_key), f"{name} {folder}") for names, part_key in groups]
        per_folder.append(parts[0] if len(parts) == 1 else np.concatenate(parts))
        keys.append(key)
    return (per_folder[0] if len(per_folder) == 1 else np.concatenate(per_folder, axis=1)), keys


def _views(net: keras.Model, paths: list[Path], spec: artifact.InputSpec, names: tuple[str, ...], views: Views, cache: Path | None,
           key: tuple[str, dict | None], desc: str) -> np.ndarray:
    """One folder's features under the views ``names``, from the cache (``key``: prefix and key) or extracted into it."""
    shape = (len(names), len(paths), net.output.shape[-1])
    return cached.load_or_fill(cache, key[0], key[1], shape, lambda out: extract(net, paths, spec, names, out, views, desc), "features")


def every_backbone(recipe: Recipe, dataset: data.Dataset, weights: Path, cache: Path | None
                   ) -> tuple[dict[str, keras.Model], dict[str, np.ndarray], dict[str, list[dict | None]]]:
    """(the built backbones, their features, their per-folder cache keys) for the recipe's backbones and candidates;
    ``weights`` is the folder of ImageNet files, unused by a recipe of random weights."""
    folder = None if recipe.model.weights == "random" else weights
    nets, feats, keys = {}, {}, {}
    for name in recipe.model.backbones + recipe.model.candidates:
        nets[name] = build(name, recipe, dataset, folder)
        feats[name], keys[name] = backbone_features(nets[name], name, recipe, dataset, folder, cache)
    return nets, feats, keys


def first_seconds(keys: dict[str, list[dict | None]], cache: Path | None) -> dict[str, dict[str, float | None]]:
    """Per backbone and data folder (by position), the seconds its base views' features took when they were first
    extracted (None: not cached), so a run on cached features still reports what extraction costs."""
    return {name: {str(k): cached.seconds(cache, name, key) for k, key in enumerate(folder_keys)} for name, folder_keys in keys.items()}
