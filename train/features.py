"""Frozen backbone features, computed once per backbone and cached on disk.

Heads are trained on global-average-pooled features of each poster as is and flipped left-right
(view 0 and 1). Running a backbone is the expensive part of training on a 2-core CPU, so every
cross-validation fold and the final refit reuse the same arrays.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from train.weights import weights_file

VIEWS = ("plain", "flipped")


def pooled_extractor(backbone: keras.Model) -> keras.Model:
    return keras.Model(backbone.input, keras.layers.GlobalAveragePooling2D()(backbone.output))


def extract(backbone: keras.Model, images: np.ndarray, batch_size: int = 32, desc: str = "features") -> np.ndarray:
    """[len(VIEWS), N, C] float16 pooled features of uint8 images [N, H, W, 3]."""
    net = pooled_extractor(backbone)
    run = tf.function(lambda x: net(x, training=False), reduce_retracing=True)
    out = np.zeros((len(VIEWS), len(images), net.output.shape[-1]), np.float16)
    with tqdm(total=len(VIEWS) * len(images), desc=desc, unit="img", mininterval=10) as bar:
        for start in range(0, len(images), batch_size):
            batch = tf.cast(tf.convert_to_tensor(images[start : start + batch_size]), tf.float32)
            out[0, start : start + len(batch)] = run(batch).numpy()
            out[1, start : start + len(batch)] = run(batch[:, :, ::-1]).numpy()
            bar.update(2 * len(batch))
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


def backbone_features(net: keras.Model, name: str, weights: Path | None, images: np.ndarray, ids: list[str],
                      cache: Path | None) -> tuple[np.ndarray, dict | None]:
    """(pooled features of ``images`` (posters ``ids``), their cache key), from ``cache`` if computed before.

    The key names the posters, the input size and the weights' content; random weights (tests)
    are never cached (key None).
    """
    if cache is None or weights is None:
        return extract(net, images, desc=name), None
    key = {
        "backbone": name,
        "ids": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        "size": list(images.shape[1:3]),
        "weights": weights_digest(weights / weights_file(name)),
        "views": VIEWS,
    }
    return cached(cache, key, lambda: extract(net, images, desc=name)), key


def cached(cache: Path, key: dict, compute) -> np.ndarray:
    """Load the array stored under ``key`` or compute and store it (atomic rename)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"{key['backbone']}-{digest}.npy"
    if path.exists():
        print(f"features: {path}", flush=True)
        return np.load(path)
    start = time.monotonic()
    features = compute()
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, features)
    tmp.rename(path)
    print(f"features: {path} ({time.monotonic() - start:.0f} s)", flush=True)
    return features
