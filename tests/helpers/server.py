"""A server subprocess on a free 127.0.0.1 port: the function as `make serve` runs it, or the bench baseline."""

from __future__ import annotations

import contextlib
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
    """What `make serve` runs, in FUNCTION_DIR: function/serve.py, whose defaults are the launch
    command (functions-framework's gunicorn + read timeouts); ``{PORT}`` is filled in by ServerProcess."""
    return [python, "serve.py", "--port", "{PORT}"]


class ServerProcess:
    """Spawns ``cmd`` (with ``{PORT}`` replaced); ``started`` is taken just before the spawn."""

    def __init__(self, cmd: list[str], env: dict, cwd: Path = FUNCTION_DIR, log: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out = log.open("wb") if log else subprocess.DEVNULL
        full_env = {**os.environ, **{k: str(v) for k, v in env.items()}}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [part.replace("{PORT}", str(self.port)) for part in cmd], cwd=cwd, env=full_env, stdout=self._out, stderr=subprocess.STDOUT
        )

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

    def _status(self, pid: int, field: str) -> int:
        """A /proc status figure in bytes; 0 for a process that has just exited."""
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            return 0
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def pids(self) -> list[int]:
        """The server's process and its descendants, parents first (gunicorn: the arbiter, then its worker)."""
        pids, stack = [], [self.proc.pid]
        while stack:
            pid = stack.pop(0)
            pids.append(pid)
            with contextlib.suppress(OSError):  # exited meanwhile: no children
                stack += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        return pids

    def rss_bytes(self) -> int:
        """Resident memory of the serving processes (gunicorn's arbiter and its worker)."""
        return sum(self._status(pid, "VmRSS") for pid in self.pids())

    def peak_rss_bytes(self) -> int:
        """Peak resident memory since ``reset_peak`` (the kernel's high-water mark, no sampling):
        the worker's peak plus the arbiter, which does not grow."""
        pids = self.pids()
        return self._status(pids[0], "VmRSS") + sum(self._status(pid, "VmHWM") for pid in pids[1:])

    def reset_peak(self) -> None:
        for pid in self.pids()[1:]:
            Path(f"/proc/{pid}/clear_refs").write_text("5")

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log else []
