"""make emulate: fake-gcs-server + publish the bundled model + the function serving it from there.

Everything stops on Ctrl-C. Prints how to call the function.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from infra.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    port = int(os.environ.get("PORT", "8080"))
    emulator = Emulator(int(os.environ.get("EMULATOR_PORT", "9023"))).start()
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.host
    server = None
    try:
        emulator.create_bucket("postergenre-local")
        from train.publish import publish

        uri = publish(ROOT / "function" / "model", "postergenre-local")
        print(f"fake-gcs-server on {emulator.host}; published MODEL_URI={uri}")
        print(f"try: curl -s -X POST --data-binary @poster.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:{port}/", flush=True)
        env = {**os.environ, "MODEL_URI": uri}
        cmd = [sys.executable, "-m", "functions_framework", "--target", "predict", "--source", "main.py", "--host", "127.0.0.1", "--port", str(port)]
        server = subprocess.Popen(cmd, cwd=ROOT / "function", env=env)
        signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server and server.poll() is None:
            server.terminate()
            server.wait(10)
        emulator.stop()


if __name__ == "__main__":
    raise SystemExit(main())
