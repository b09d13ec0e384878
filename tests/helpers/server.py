"""A server subprocess on a free 127.0.0.1 port: the real functions-framework, or the bench baseline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "function"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def function_command(python: str = sys.executable) -> list[str]:
    """functions-framework serving function/main.py; ``{PORT}`` is filled in by ServerProcess."""
    return [python, "-m", "functions_framework", "--target", "predict", "--source", "main.py", "--host", "127.0.0.1", "--port", "{PORT}"]


def serve_command(python: str = sys.executable) -> list[str]:
    """What `make serve` runs: function/serve.py (functions-framework's gunicorn + read timeouts)."""
    return [python, "serve.py", "--target", "predict", "--source", "main.py", "--host", "127.0.0.1", "--port", "{PORT}"]


class ServerProcess:
    """Spawns ``cmd`` (with ``{PORT}`` replaced); ``started`` is taken just before the spawn."""

    def __init__(self, cmd: list[str], env: dict, cwd: Path = FUNCTION_DIR, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("wb") if log else subprocess.DEVNULL
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([part.replace("{PORT}", str(self.port)) for part in cmd], cwd=cwd, env=full_env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str = "/healthz", timeout: float = 30) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:] if self.log else ''}")
            try:
                requests.get(self.url + path, timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if self.log:
            self._out.close()

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log else []
