"""Shared fixtures: a tiny model artifact, generated images, and fresh function apps."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from postergenre import artifact
from tests.helpers.server import FUNCTION_DIR, ROOT, ServerProcess, free_port, function_command

__all__ = ["FUNCTION_DIR", "ROOT", "Server", "free_port"]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The tiny colour model: built here with TensorFlow, or taken from TEST_MODEL_DIR (the
    tflite-runtime environment has no TensorFlow and reuses the one built by `make test`)."""
    given = os.environ.get("TEST_MODEL_DIR")
    if given and (Path(given) / "model.tflite").exists():
        return Path(given).resolve()
    pytest.importorskip("tensorflow", reason="building the test model needs TensorFlow; set TEST_MODEL_DIR")
    from tests.helpers import tiny_model

    return tiny_model.build(tmp_path_factory.mktemp("tiny-model"))


def _variant(model_dir: Path, tmp_path_factory, folder: str, **build) -> Path:
    """A variant of the tiny model: the one `make test` built beside TEST_MODEL_DIR, or built here."""
    from tests.helpers import tiny_model

    if (model_dir / folder / "model.tflite").exists():
        return model_dir / folder
    pytest.importorskip("tensorflow", reason="building the test model needs TensorFlow; set TEST_MODEL_DIR")
    return tiny_model.build(tmp_path_factory.mktemp(folder), **build)


@pytest.fixture(scope="session")
def plain_model_dir(model_dir, tmp_path_factory) -> Path:
    """The tiny model exported without the explanation output (as models were before it existed)."""
    from tests.helpers import tiny_model

    return _variant(model_dir, tmp_path_factory, tiny_model.PLAIN, explanations=False)


@pytest.fixture(scope="session")
def legacy_model_dir(model_dir, tmp_path_factory) -> Path:
    """The tiny model exported as before the explain signature: the map in the scoring graph."""
    from tests.helpers import tiny_model

    return _variant(model_dir, tmp_path_factory, tiny_model.LEGACY, legacy=True)


@pytest.fixture
def copy_model(model_dir, tmp_path):
    """A private copy of the model artifact that a test may damage."""
    def make() -> Path:
        dest = tmp_path / "model"
        shutil.copytree(model_dir, dest)
        return dest

    return make


@pytest.fixture
def edit_model(model_dir, tmp_path):
    """A copy of an artifact (default: the tiny model) rewritten through the schema's own reader
    and writer (artifact.read_dir, artifact.write): ``change`` edits the manifest dict in place,
    ``model_bytes`` replaces the model (the manifest's checksum follows it)."""

    def edit(name: str, change=None, model_bytes: bytes | None = None, source: Path | None = None) -> Path:
        manifest, data = artifact.read_dir(source or model_dir)
        if change:
            change(manifest)
        dest = tmp_path / name
        artifact.write(dest, data if model_bytes is None else model_bytes, manifest)
        return dest

    return edit


@pytest.fixture
def make_app(monkeypatch, model_dir):
    """Fresh functions-framework app (a fresh import of main.py) with the given environment."""
    import functions_framework

    def make(**env):
        monkeypatch.setenv("MODEL_URI", str(model_dir))
        for key, value in env.items():
            monkeypatch.setenv(key, str(value))
        app = functions_framework.create_app(target="predict", source=str(FUNCTION_DIR / "main.py"))
        return app, sys.modules["main"]

    return make


@pytest.fixture
def client(make_app):
    app, _ = make_app()
    return app.test_client()


class Server(ServerProcess):
    """The function as `make serve` runs it (function/serve.py: functions-framework's gunicorn) on
    127.0.0.1, output captured to ``log``."""

    def __init__(self, env: dict, log: Path) -> None:
        super().__init__(function_command(), env, FUNCTION_DIR, log)
        self.wait_ready()


@pytest.fixture
def start_server(model_dir, tmp_path):
    servers: list[Server] = []

    def start(**env) -> Server:
        server = Server({"MODEL_URI": str(model_dir), **env}, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
