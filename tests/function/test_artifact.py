"""The artifact schema (function/postergenre/artifact.py): what training writes is what every reader reads."""

from __future__ import annotations

import numpy as np
import pytest

from postergenre import artifact, genres
from postergenre.errors import ModelUnavailable

FOLDS = {key: {"mean": 0.5, "sd": 0.01234} for key in artifact.HEADLINE_KEYS}
POOLED = {key: 0.4 for key in artifact.HEADLINE_KEYS}


def test_written_artifact_reads_back(tmp_path):
    spec = artifact.InputSpec(48, 32, "bilinear")
    manifest = artifact.new_manifest("m", "v1", ["A", "B"], np.array([0.25, 0.5]), spec)
    written = artifact.write(tmp_path, b"model bytes", {**manifest, "metrics": artifact.metrics_entry(FOLDS, POOLED)})
    data, model = artifact.read_dir(tmp_path)
    assert data == written and model == b"model bytes"
    parsed = artifact.Manifest.from_dict(data)
    assert (parsed.labels, parsed.thresholds.tolist(), parsed.input) == (("A", "B"), [0.25, 0.5], spec)
    artifact.verify(parsed, model)
    with pytest.raises(ModelUnavailable, match="does not match"):
        artifact.verify(parsed, model + b"!")
    assert set(data["metrics"]) == set(artifact.METRIC_GROUPS)
    assert data["metrics"][artifact.CV_SD]["mAP_macro"] == 0.0123
    assert artifact.headline(data) == {key: 0.5 for key in artifact.HEADLINE_KEYS}  # the cross-validated means


def test_headline_reads_old_manifests_and_tolerates_none():
    assert artifact.headline({"metrics": {"validation": {"mAP_macro": 0.3, "one_error": "?"}}}) == {"mAP_macro": 0.3}
    assert artifact.headline({}) == artifact.headline({"metrics": []}) == artifact.headline({"metrics": {"other": {}}}) == {}


@pytest.mark.parametrize(("prefix", "root"), [("models", "models/"), ("/models/", "models/"), ("a/b", "a/b/"), ("", ""), ("/", "")])
def test_one_prefix_rule_for_uris_and_object_names(prefix, root):
    assert artifact.prefix_root(prefix) == root
    assert artifact.version_prefix(prefix, "v1") == f"{root}v1/"
    assert artifact.parse_uri(artifact.version_uri("b", prefix, "v1")) == ("b", f"{root}v1/")


def test_decisions_are_never_empty_and_ranked():
    scores = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2]], np.float32)
    thresholds = np.full(3, 0.5, np.float32)
    assert genres.decide(scores, thresholds).tolist() == [[True, False, True], [False, True, False]]
    assert genres.ranked(scores[0], thresholds, ["A", "B", "C"]) == ["A", "C"]
    assert genres.ranked(scores[1], thresholds, ["A", "B", "C"]) == ["B"]
