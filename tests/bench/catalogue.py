"""The catalogue pipeline vs the HTTP function, on the same posters, in one run, with the bundled model.

Three ways through the same N posters: the Beam pipeline on this machine (one worker, and one
per core as threads and as processes, timed from its launch to its summary: start-up, model load and output included), one
request per poster to the function as `make serve` runs it, and batches of 16 (MAX_BATCH) to it.
The HTTP figures exclude the server's start (reported apart), which favours them.
Standalone: python -m tests.bench.catalogue --function-python .venv/bin/python --beam-python .venv-beam/bin/python
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.helpers.server import FUNCTION_DIR, ROOT, ServerProcess, function_command

MODEL_DIR = FUNCTION_DIR / "model"
BATCH = 16


def posters(folder: Path, n: int) -> list[Path]:
    from tests.bench.run import poster_jpeg

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"poster-{i:05d}.jpg"
        path.write_bytes(poster_jpeg(300, 450, seed=1000 + i))
        paths.append(path)
    return paths


def pipeline(beam_python: str, folder: Path, out: Path, workers: int, mode: str = "multi_threading") -> dict:
    cmd = [
        beam_python,
        "-m",
        "infra.catalogue",
        "--input",
        str(folder),
        "--output",
        str(out),
        "--model-uri",
        str(MODEL_DIR),
        "--workers",
        str(workers),
    ]
    started = time.perf_counter()
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"pipeline failed: {run.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {
        "workers": workers,
        "mode": mode if workers > 1 else "in_memory",
        "seconds": seconds,
        "files": summary["files"],
        "posters_per_s": summary["files"] / seconds,
    }


def http(function_python: str, paths: list[Path]) -> dict:
    """One by one (raw JPEG bodies) and in batches of BATCH (JSON base64), to a warm `make serve`."""
    server = ServerProcess(function_command(function_python), {}, FUNCTION_DIR)
    try:
        server.wait_ready()
        bodies = [p.read_bytes() for p in paths]
        with requests.Session() as session:
            first = time.perf_counter()
            assert session.post(server.url, data=bodies[0], headers={"Content-Type": "image/jpeg"}, timeout=60).status_code == 200
            startup = first - server.started + (time.perf_counter() - first)  # spawn -> first answer (model loaded)
            started = time.perf_counter()
            for body in bodies:
                r = session.post(server.url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
                assert r.status_code == 200, r.text[:200]
            single = time.perf_counter() - started
            batches = [
                json.dumps({"instances": [{"b64": base64.b64encode(b).decode()} for b in bodies[i : i + BATCH]]})
                for i in range(0, len(bodies), BATCH)
            ]
            started = time.perf_counter()
            for body in batches:
                r = session.post(server.url, data=body, headers={"Content-Type": "application/json"}, timeout=120)
                assert r.status_code == 200, r.text[:200]
            batched = time.perf_counter() - started
    finally:
        server.stop()
    n = len(paths)
    return {"startup_s": startup, "single_s": single, "single_per_s": n / single, "batch_s": batched, "batch_per_s": n / batched}


def bench(function_python: str, beam_python: str, n: int = 300) -> dict:
    with tempfile.TemporaryDirectory(prefix="catalogue-bench-") as tmp:
        paths = posters(Path(tmp) / "posters", n)
        n_cores = os.cpu_count() or 1
        modes = (
            [(1, "multi_threading"), (n_cores, "multi_threading"), (n_cores, "multi_processing")]
            if n_cores > 1
            else [(1, "multi_threading")]
        )
        runs = [pipeline(beam_python, Path(tmp) / "posters", Path(tmp) / f"out-{i}", w, m) for i, (w, m) in enumerate(modes)]
        return {"posters": n, "pipeline": runs, "http": http(function_python, paths)}


def table(r: dict) -> str:
    h = r["http"]
    rows = [
        f"| Beam pipeline, local, {p['workers']} worker process(es), start-up included | {p['seconds']:.1f} s | {p['posters_per_s']:.1f} |"
        for p in r["pipeline"]
    ]
    rows += [
        f"| HTTP one by one to `make serve` (warm; its start-up {h['startup_s']:.1f} s not included) "
        f"| {h['single_s']:.1f} s | {h['single_per_s']:.1f} |",
        f"| HTTP batches of {BATCH} to `make serve` (warm) | {h['batch_s']:.1f} s | {h['batch_per_s']:.1f} |",
    ]
    return "\n".join(
        [
            f"Catalogue: {r['posters']} typical 300x450 JPEG posters, bundled model, {os.cpu_count()} cores:",
            "",
            "| how | wall time | posters/s |",
            "|---|---|---|",
            *rows,
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--function-python", default=str(ROOT / ".venv/bin/python"))
    parser.add_argument("--beam-python", default=str(ROOT / ".venv-beam/bin/python"))
    parser.add_argument("--posters", type=int, default=300)
    args = parser.parse_args()
    result = bench(os.path.abspath(args.function_python), os.path.abspath(args.beam_python), args.posters)
    print(json.dumps(result, indent=2))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
