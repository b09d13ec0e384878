"""Shared fixtures: a tiny model artifact, generated images, and fresh function apps."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_DIR = ROOT / "function"


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


@pytest.fixture
def copy_model(model_dir, tmp_path):
    """A private copy of the model artifact that a test may damage."""
    def make() -> Path:
        dest = tmp_path / "model"
        shutil.copytree(model_dir, dest)
        return dest

    return make


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real functions-framework (gunicorn) server on 127.0.0.1, output captured to a file."""

    def __init__(self, env: dict, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "functions_framework", "--target", "predict", "--source", str(FUNCTION_DIR / "main.py"), "--host", "127.0.0.1", "--port", str(self.port)]
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self._out = log.open("wb")
        self.proc = subprocess.Popen(cmd, cwd=FUNCTION_DIR, env=full_env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._out.close()

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


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
