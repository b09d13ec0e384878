"""Faults with the GCS emulator: corrupt model, model cache file removed while serving."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import requests

from infra.emulator import Emulator
from tests.conftest import ROOT, free_port
from tests.helpers.images import poster


@pytest.fixture
def storage(model_dir):
    emulator = Emulator(free_port()).start()
    emulator.create_bucket("faults")
    env = {"STORAGE_EMULATOR_HOST": emulator.host}
    import os

    done = subprocess.run(
        [sys.executable, "-m", "train.publish", str(model_dir), "faults"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    yield emulator, env, done.stdout.splitlines()[-1].removeprefix("MODEL_URI=")
    emulator.stop()


def test_model_cache_removed_while_serving(storage, start_server, tmp_path):
    emulator, env, uri = storage
    server = start_server(MODEL_URI=uri, TMPDIR=tmp_path, **env)
    assert requests.post(server.url, data=poster("Green"), timeout=30).json()["genres"] == ["Green"]
    cache = tmp_path / "postergenre-models"
    assert list(cache.iterdir())
    shutil.rmtree(cache)
    for colour in ("Red", "Green", "Blue"):
        assert requests.post(server.url, data=poster(colour), timeout=30).json()["genres"] == [colour]


def test_corrupt_model_then_fixed(storage, start_server, model_dir):
    emulator, env, uri = storage
    version = json.loads((model_dir / "manifest.json").read_text())["version"]
    good = (model_dir / "model.tflite").read_bytes()
    emulator.put("faults", f"models/{version}/model.tflite", good[:-1000])
    server = start_server(MODEL_URI=uri, RETRY_AFTER_SECONDS=2, **env)
    for _ in range(3):
        bad = requests.post(server.url, data=poster("Red"), timeout=30)
        assert bad.status_code == 503 and "genres" not in bad.json() and bad.headers["Retry-After"] == "2"
    emulator.put("faults", f"models/{version}/model.tflite", good)  # an operator restores the object
    ok = requests.post(server.url, data=poster("Red"), timeout=30)
    assert ok.status_code == 200 and ok.json()["genres"] == ["Red"]
