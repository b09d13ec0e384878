"""The explanation output: per-location class evidence, exported next to the scores.

What the scoring model looks like (train/model.ensemble and the test model both do):

- each member is a feature map [N, R, C, K] (a backbone's last spatial output), pooled by
  GlobalAveragePooling2D, then scored by a head: layers acting on the last axis only (Dropout,
  Dense, Activation/ReLU), possibly wrapped in a sub-model, ending in sigmoid scores;
- members are combined by Average layers (possibly nested: heads of one backbone, then backbones),
  so a member's weight is the product of 1/len(inputs) along its path.

A member's explanation map is its head's pre-sigmoid logits applied at every location of its
feature map: for a linear head (GAP -> Dense) that is exactly the class activation map, and the
mean over locations equals the logit the scores come from. Maps are resized (bilinear) to the
first member's grid and averaged with the members' weights. The export has two signatures
(``signatures``): scoring (also returning the feature maps) and explaining (feature maps -> map),
so only requests that ask for the map compute it. The function (function/explain.py) finds the
map by its shape [1, R, C, L] and normalises it per genre.
"""

from __future__ import annotations

import keras
from keras import layers, ops

METHOD = "cam"
HEAD_LAYERS = (layers.Dropout, layers.Dense, layers.Activation, layers.ReLU)
COMBINERS = (layers.Average, layers.Identity)


def _producer(tensor) -> tuple[keras.Layer, list]:
    """The layer that made ``tensor`` in this graph, and that call's input tensors."""
    layer, node_index, _ = tensor._keras_history
    return layer, layer._inbound_nodes[node_index].input_tensors


def _head_layers(head: keras.Model) -> list[keras.Layer]:
    """A head sub-model's layers in call order (a chain: one input, one output)."""
    chain, tensor = [], head.outputs[0]
    while True:
        layer, inputs = _producer(tensor)
        if isinstance(layer, layers.InputLayer) or not inputs:
            return chain
        if not isinstance(layer, HEAD_LAYERS) or len(inputs) != 1:
            raise ValueError(f"head layer {layer.name!r} is not Dropout/Dense/Activation")
        chain.insert(0, layer)
        tensor = inputs[0]


def _member(scores) -> tuple[object, list[keras.Layer]]:
    """Walk back from a member's scores through its head to the pooling: (feature map, head layers).

    Walking this graph's own tensors (not the layers' consumers) matters: a layer may be used in
    several graphs (training and export build different models from the same heads)."""
    head, tensor = [], scores
    while True:
        layer, inputs = _producer(tensor)
        if isinstance(layer, layers.GlobalAveragePooling2D):
            break
        if isinstance(layer, keras.Model) and len(inputs) == 1:
            head[:0] = _head_layers(layer)
        elif isinstance(layer, HEAD_LAYERS) and len(inputs) == 1:
            head.insert(0, layer)
        else:
            raise ValueError(f"layer {layer.name!r} between the pooling and the scores is not a head layer")
        tensor = inputs[0]
    if not head or not isinstance(head[-1], (layers.Dense, layers.Activation)):
        raise ValueError("no Dense head after the pooling")
    return inputs[0], head


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


def members(model: keras.Model) -> list[tuple[object, list[keras.Layer], float]]:
    """(feature map, head layers, weight) per member, in graph order."""
    found, pending = [], [(model.outputs[0], 1.0)]
    while pending:
        tensor, weight = pending.pop(0)
        layer, inputs = _producer(tensor)
        if isinstance(layer, COMBINERS):
            pending[:0] = [(t, weight / len(inputs)) for t in inputs]
        else:
            found.append((*_member(tensor), weight))
    return found


def signatures(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The two exported signatures, over ``model``'s own layers and weights:

    - scoring: image -> {"scores", "features_<i>"}: the scores plus each backbone's feature map
      (computed anyway; the function hands them to the explainer when asked);
    - explaining: {"features_<i>"} -> {"explanations": [N, R, C, L] logits}: every head at every
      location of its feature map, resized to the first member's grid and averaged with the
      members' weights.

    Only the explainer runs the heads per location, so requests without explanations never pay
    for it, and the backbones run once either way."""
    found = members(model)
    features: dict[int, tuple[str, object]] = {}  # one output per distinct feature map (heads of a backbone share it)
    for feature_map, _, _ in found:
        features.setdefault(id(feature_map), (f"features_{len(features)}", feature_map))
    scoring = keras.Model(model.inputs, {"scores": model.outputs[0], **dict(features.values())}, name=f"{model.name}_scoring")
    inputs = {name: keras.Input(f.shape[1:], name=name) for name, f in features.values()}
    maps = [_logits_map(inputs[features[id(f)][0]], head) for f, head, _ in found]
    rows, cols = maps[0].shape[1], maps[0].shape[2]
    maps = [m if tuple(m.shape[1:3]) == (rows, cols) else layers.Resizing(rows, cols, "bilinear")(m) for m in maps]
    combined = (
        maps[0] if len(maps) == 1 else ops.sum(ops.stack([m * weight for m, (_, _, weight) in zip(maps, found, strict=True)]), axis=0)
    )
    explaining = keras.Model(inputs, {"explanations": layers.Identity(name="explanations")(combined)}, name=f"{model.name}_explaining")
    return scoring, explaining


def manifest_entry(model: keras.Model) -> dict:
    """The manifest's record of the grid a model's explanations come on (the first member's)."""
    shape = members(model)[0][0].shape
    return {"explanations": {"rows": int(shape[1]), "cols": int(shape[2]), "method": METHOD}}
