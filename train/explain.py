"""The explanation output: per-location class evidence, exported next to the scores.

Convention the scoring model follows (train/model.py and the test model do):

- each member ``i`` has a backbone whose last 4-D feature map [N, R, C, K] is the output of a layer
  named ``features_{i}`` (``features`` for a single-member model);
- the member's head is GlobalAveragePooling2D on that map followed by layers that act on the last
  axis only (Dropout, Dense, Activation), ending in the member's sigmoid scores;
- several members are combined by a weighted mean of their scores (``weights``, equal by default).

A member's explanation map is its head's pre-sigmoid logits applied at every location of its
feature map: for a linear head (GAP -> Dense) that is exactly the class activation map, and the
mean over locations equals the logit the scores come from. Maps of several members are resized
(bilinear) to the first member's grid and averaged with the same weights as the scores. The
function (function/explain.py) finds the map by its shape [1, R, C, L] and normalises it per genre.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

METHOD = "cam"
HEAD_LAYERS = (layers.Dropout, layers.Dense, layers.Activation)
_MEMBER = re.compile(r"^features(_\d+)?$")


def _producer(tensor) -> tuple[keras.Layer, list]:
    """The layer that made ``tensor`` in this graph, and that call's input tensors."""
    layer, node_index, _ = tensor._keras_history
    return layer, layer._inbound_nodes[node_index].input_tensors


def _member(scores) -> tuple[object, list[keras.Layer]]:
    """Walk back from a member's scores through its head to the GAP: (feature map tensor, head).

    Walking this graph's own tensors (not the layers' consumers) matters: training reuses the head
    layers in a second graph (train/model.py split), so a layer may have several consumers."""
    head, tensor = [], scores
    while True:
        layer, inputs = _producer(tensor)
        if isinstance(layer, layers.GlobalAveragePooling2D):
            break
        if not isinstance(layer, HEAD_LAYERS) or len(inputs) != 1:
            raise ValueError(f"layer {layer.name!r} between the pooling and the scores is not Dropout/Dense/Activation")
        head.insert(0, layer)
        tensor = inputs[0]
    feature_map = inputs[0]
    if not _MEMBER.match(_producer(feature_map)[0].name):
        raise ValueError("the pooled feature map must be the output of a layer named 'features' or 'features_<i>': see train/explain.py")
    if not head or not isinstance(head[-1], (layers.Dense, layers.Activation)):
        raise ValueError("no Dense head after the pooling")
    return feature_map, head


def _logits_map(feature_map, head: list[keras.Layer]):
    """The head at every location, without its final sigmoid (Dropout is identity at inference)."""
    x = feature_map
    last = head[-1]
    for layer in head:
        if isinstance(layer, layers.Dropout):
            continue
        if layer is last and isinstance(layer, layers.Activation):
            break  # a separate final sigmoid: stop before it
        if layer is last:  # Dense with activation="sigmoid": its linear part
            x = ops.matmul(x, layer.kernel) + (layer.bias if layer.use_bias else 0.0)
        else:
            x = layer(x)
    return x


def members(model: keras.Model) -> list[tuple[object, list[keras.Layer]]]:
    """(feature map, head) per member, in member order: the scores output is either one member's
    head or a layer combining several members' scores (e.g. Average)."""
    scores = model.outputs[0]
    layer, inputs = _producer(scores)
    branches = [scores] if isinstance(layer, HEAD_LAYERS) else inputs
    found = [_member(branch) for branch in branches]
    return sorted(found, key=lambda member: _index(member[0]))


def _index(feature_map) -> int:
    name = _producer(feature_map)[0].name
    return 0 if name == "features" else int(name.rpartition("_")[2])


def with_explanations(model: keras.Model, weights: list[float] | None = None) -> keras.Model:
    """``model`` with a second output: the explanation map [N, R, C, L] (logits). Same layers,
    same weights, same scores."""
    found = members(model)
    weights = [1.0] * len(found) if weights is None else list(weights)
    if len(weights) != len(found):
        raise ValueError(f"{len(found)} members but {len(weights)} weights")
    maps = [_logits_map(feature_map, head) for feature_map, head in found]
    rows, cols = maps[0].shape[1], maps[0].shape[2]
    maps = [m if tuple(m.shape[1:3]) == (rows, cols) else layers.Resizing(rows, cols, "bilinear")(m) for m in maps]
    total = float(sum(weights))
    combined = maps[0] if len(maps) == 1 else ops.sum(ops.stack([m * (w / total) for m, w in zip(maps, weights)]), axis=0)
    combined = layers.Identity(name="explanations")(combined)
    return keras.Model(model.inputs, [model.outputs[0], combined], name=f"{model.name}_explained")


def manifest_entry(model: keras.Model) -> dict:
    """The manifest's record of the grid a model's explanations come on (the first member's)."""
    shape = members(model)[0][0].shape
    return {"explanations": {"rows": int(shape[1]), "cols": int(shape[2]), "method": METHOD}}


def graft(tflite: bytes) -> tuple[bytes, tuple[int, int]]:
    """Add the explanation output to an already exported single-member model, without retraining.

    For artifacts exported before the explanation output existed: their graph ends in
    MEAN(feature map) -> FULLY_CONNECTED -> LOGISTIC, so the map is a second FULLY_CONNECTED with
    the same weights applied to the feature map at every location (keep_num_dims). The scores'
    ops are untouched. Returns (model bytes, (rows, cols)).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    graph = model.subgraphs[0]
    code_of = lambda op: max(model.operatorCodes[op.opcodeIndex].builtinCode, model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)  # noqa: E731
    fc = next(op for op in graph.operators if code_of(op) == schema.BuiltinOperator.FULLY_CONNECTED)
    pool = next(op for op in graph.operators if code_of(op) == schema.BuiltinOperator.MEAN and op.outputs[0] == fc.inputs[0])
    feature_map = graph.tensors[pool.inputs[0]]
    n_labels = int(graph.tensors[fc.outputs[0]].shape[-1])
    out = schema.TensorT()
    out.shape = np.array([*feature_map.shape[:3], n_labels], np.int32)
    out.type, out.name, out.buffer = schema.TensorType.FLOAT32, b"explanations", 0
    graph.tensors.append(out)
    options = schema.FullyConnectedOptionsT()
    options.fusedActivationFunction, options.keepNumDims = schema.ActivationFunctionType.NONE, True
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = fc.opcodeIndex, [pool.inputs[0], *fc.inputs[1:]], [len(graph.tensors) - 1]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.FullyConnectedOptions, options
    graph.operators.append(op)
    graph.outputs = np.append(graph.outputs, len(graph.tensors) - 1).astype(np.int32)
    for signature in model.signatureDefs or []:
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = b"explanations", len(graph.tensors) - 1
        signature.outputs.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), (int(out.shape[1]), int(out.shape[2]))


def graft_artifact(artifact: Path) -> dict:
    """``python -m train.explain DIR``: add the explanation output to the artifact in DIR, check
    that its scores are unchanged, then rewrite model + manifest in place."""
    import json
    import tempfile

    from train import export

    import model as serving

    manifest = json.loads((artifact / serving.MANIFEST_FILE).read_text(encoding="utf-8"))
    tflite, (rows, cols) = graft((artifact / serving.MODEL_FILE).read_bytes())
    manifest = {**manifest, "explanations": {"rows": rows, "cols": cols, "method": METHOD}}
    before = serving.load(str(artifact))
    with tempfile.TemporaryDirectory() as tmp:
        export.write_artifact(Path(tmp), tflite, manifest)
        after = serving.load(tmp)
    spec = before.manifest.input
    for seed in range(4):
        pixels = np.random.default_rng(seed).uniform(0, 255, (1, spec.height, spec.width, 3)).astype(np.float32)
        if not np.array_equal(before.scores(pixels), after.scores(pixels)):
            raise RuntimeError("grafting changed the scores; the artifact is left as it was")
    return export.write_artifact(artifact, tflite, manifest)


if __name__ == "__main__":
    print(graft_artifact(Path(sys.argv[1]))["explanations"])
