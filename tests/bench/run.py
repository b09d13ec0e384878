"""make bench: cold start, warm latency, throughput, memory and sizes, side by side with a
TensorFlow-based server. Prints a Markdown table and writes bench-results/bench.json.

Medians of repeated runs, all on this machine. Usage:
  python tests/bench/run.py --function-python .venv/bin/python --tf-python .venv-test/bin/python
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import requests
from PIL import Image, ImageDraw, ImageFilter

from tests.helpers.server import FUNCTION_DIR, ServerProcess, function_command
from tests.helpers.worst import issue_inputs, just_over, worst_inputs

ROOT = Path(__file__).resolve().parents[2]

MODEL_DIR = FUNCTION_DIR / "model"
SEED_MODEL_MB = 55.0  # the seed project's fp16 .tflite


def poster_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A poster-like picture: gradient, shapes, title bar, mild noise (not flat, not pure noise)."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    base = (np.array([40, 20, 80]) * (1 - y) + np.array([230, 140, 40]) * y) * (0.8 + 0.2 * x)
    image = Image.fromarray(np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        size = int(rng.integers(width // 12, width // 3))
        draw.ellipse((x0, y0, x0 + size, y0 + size), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw.rectangle((width // 10, height * 8 // 10, width * 9 // 10, height * 9 // 10), fill=(250, 240, 220))
    image = image.filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def tree_rss_mb(pid: int) -> float:
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            stack += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
    return total


class Proc(ServerProcess):
    """A server under test; first_200 measures from process spawn to the first classified poster."""

    def first_200(self, body: bytes, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.post(self.url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=60).status_code == 200:
                    return time.perf_counter() - self.started
            except requests.ConnectionError:
                time.sleep(0.005)
        raise RuntimeError("no 200 before the timeout")


def ours(python: str, threads: int = 2, **env) -> tuple:
    return function_command(python), {"THREADS": str(threads), **env}, FUNCTION_DIR


def tf_baseline(python: str) -> tuple:
    return [python, str(ROOT / "tests/bench/tf_server.py"), str(MODEL_DIR), "{PORT}"], {"TF_CPP_MIN_LOG_LEVEL": "3"}, ROOT


def memory_per_format(python: str, function_dir: Path, memory_mb: int = 512, threads: int = 2) -> list[dict]:
    """Peak RSS of the serving processes for the largest accepted input of each format and mode
    (tests/helpers/worst.py), alone and ``threads`` at a time, at the deployed settings."""
    server = Proc(function_command(python), {"THREADS": threads, "MEMORY_MB": memory_mb}, function_dir)
    rows = []
    try:
        typical = poster_jpeg(300, 450)
        server.first_200(typical)
        with ThreadPoolExecutor(threads) as pool:  # every interpreter of the pool created, both signatures allocated
            list(pool.map(lambda _: latencies(server.url, typical, 10) + latencies(server.url + "?explain=1", typical, 10), range(threads)))
        base = server.rss_bytes()
        for worst in [*worst_inputs(memory_mb), just_over(memory_mb), *issue_inputs()]:
            data = worst.encode()

            def post(_: int, data: bytes = data, worst=worst) -> int:
                return requests.post(server.url, data=data, headers={"Content-Type": worst.content_type}, timeout=300).status_code

            server.reset_peak()
            alone = post(0)
            peak_alone = server.peak_rss_bytes()
            server.reset_peak()
            with ThreadPoolExecutor(threads) as pool:
                together = list(pool.map(post, range(threads)))
            peak_together = server.peak_rss_bytes()
            time.sleep(1)
            rows.append({
                "input": worst.name, "size": f"{worst.size[0]}x{worst.size[1]}", "file_kb": len(data) // 1024,
                "status": alone, "statuses_together": together, "base_mb": base / 2**20,
                "peak_alone_mb": peak_alone / 2**20, "peak_together_mb": peak_together / 2**20, "after_mb": server.rss_bytes() / 2**20,
            })
            print(f"  {rows[-1]}", flush=True)
    finally:
        server.stop()
    return rows


def memory_table(rows: list[dict], memory_mb: int = 512, threads: int = 2) -> str:
    lines = [f"Peak RSS of the serving processes, MEMORY_MB={memory_mb} THREADS={threads} (instance memory {memory_mb} MiB), warm base {rows[0]['base_mb']:.0f} MiB:", "",
             "| input | pixels | file | status | peak alone | peak, THREADS at once | 1 s after |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['input']} | {r['size']} | {r['file_kb']} KB | {r['status']} | {r['peak_alone_mb']:.0f} MiB | {r['peak_together_mb']:.0f} MiB "
              f"({'/'.join(map(str, r['statuses_together']))}) | {r['after_mb']:.0f} MiB |" for r in rows]
    return "\n".join(lines)


def cold_start(spec: tuple, body: bytes, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        server = Proc(*spec)
        try:
            times.append(server.first_200(body))
        finally:
            server.stop()
    return times


def latencies(url: str, body: bytes, n: int) -> list[float]:
    out = []
    with requests.Session() as session:
        for _ in range(n):
            t = time.perf_counter()
            r = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
            out.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
    return out


def throughput(url: str, body: bytes, clients: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    counts, errors = [0] * clients, [0] * clients

    def work(i: int) -> None:
        with requests.Session() as session:
            while time.monotonic() < stop:
                try:
                    ok = session.post(url, data=body, headers={"Content-Type": "image/jpeg"}, timeout=60).status_code == 200
                except requests.RequestException:
                    ok = False
                counts[i] += ok
                errors[i] += not ok

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(work, range(clients)))
    elapsed = time.monotonic() - started
    return {"clients": clients, "rps": sum(counts) / elapsed, "errors": sum(errors)}


def batch_vs_single(url: str, posters: list[bytes], rounds: int) -> dict:
    """Posters/s for the same posters sent one by one and as one batch, one client, alternating
    rounds so both see the same machine load. Both use the JSON base64 form (the same decoding
    work); single requests with ?explain=1 are timed alongside to show what explaining costs."""
    encoded = [base64.b64encode(p).decode() for p in posters]
    batch_body = json.dumps({"instances": [{"b64": e} for e in encoded]})
    single_bodies = [json.dumps({"image": e}) for e in encoded]
    out: dict = {"posters": len(posters), "single": [], "batch": [], "single_explain": [], "batch_explain": []}
    headers = {"Content-Type": "application/json"}
    with requests.Session() as session:

        def timed(target: str, bodies: list[str]) -> float:
            started = time.perf_counter()
            for body in bodies:
                r = session.post(target, data=body, headers=headers, timeout=120)
                assert r.status_code == 200, r.text[:200]
            return len(posters) / (time.perf_counter() - started)

        timed(url, single_bodies[:4])  # warm-up
        for _ in range(rounds):
            out["single"].append(timed(url, single_bodies))
            out["batch"].append(timed(url, [batch_body]))
            out["single_explain"].append(timed(url + "/?explain=1", single_bodies))
            out["batch_explain"].append(timed(url + "/?explain=1", [batch_body]))
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def du_mb(paths: list[Path]) -> float:
    total = 0
    for path in paths:
        for f in path.rglob("*") if path.is_dir() else [path]:
            if f.is_file() and not f.is_symlink():
                total += f.stat().st_size
    return total / 1e6


def site_packages(python: str) -> Path:
    out = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--function-python", default=str(ROOT / ".venv/bin/python"))
    parser.add_argument("--tf-python", default=str(ROOT / ".venv-test/bin/python"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--only-batch", action="store_true", help="only the batch vs one-by-one measurement")
    parser.add_argument("--memory-only", action="store_true", help="only the memory-per-format matrix")
    parser.add_argument("--function-dir", type=Path, default=FUNCTION_DIR, help="function source for the memory matrix (e.g. an older checkout)")
    args = parser.parse_args()
    # absolute, but not resolved: a venv's python is a symlink to the base interpreter
    args.function_python, args.tf_python = os.path.abspath(args.function_python), os.path.abspath(args.tf_python)

    memory: list = []
    if not args.only_batch:
        print("memory per format ...", flush=True)
        memory = memory_per_format(args.function_python, args.function_dir)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "memory.json").write_text(json.dumps(memory, indent=2) + "\n")
        print(memory_table(memory), flush=True)
        if args.memory_only:
            return 0

    typical, large = poster_jpeg(300, 450), poster_jpeg(3000, 4500, seed=1)
    results: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, {platform.platform()}",
        "model": json.loads((MODEL_DIR / "manifest.json").read_text())["version"],
        "typical_bytes": len(typical),
        "large_bytes": len(large),
    }
    posters = [poster_jpeg(300, 450, seed=10 + i) for i in range(16)]
    if args.only_batch:
        server = Proc(*ours(args.function_python, threads=1))
        try:
            server.first_200(typical)
            results["batch_threads1"] = batch_vs_single(server.url, posters, args.runs)
        finally:
            server.stop()
        print(batch_table(results["batch_threads1"]))
        return 0
    print("cold start ...", flush=True)
    results["cold_ours_s"] = cold_start(ours(args.function_python), typical, args.runs)
    results["cold_tf_s"] = cold_start(tf_baseline(args.tf_python), typical, args.runs)

    print("warm latency, throughput, memory ...", flush=True)
    for threads in (1, 2):
        server = Proc(*ours(args.function_python, threads=threads))
        peak = [0.0]
        sampling = threading.Event()

        def sample(pid: int = server.proc.pid) -> None:
            while not sampling.is_set():
                peak[0] = max(peak[0], tree_rss_mb(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            server.first_200(typical)
            latencies(server.url, typical, 20)  # warm-up
            if threads == 2:
                results["typical_ms"] = latencies(server.url, typical, args.requests)
                results["large_ms"] = latencies(server.url, large, max(20, args.requests // 4))
            results[f"throughput_threads{threads}"] = [throughput(server.url, typical, c, args.seconds) for c in (1, 4, 8)]
            if threads == 1:  # per core: one worker thread, one interpreter
                results["batch_threads1"] = batch_vs_single(server.url, posters, args.runs)
        finally:
            sampling.set()
            sampler.join()
            server.stop()
        results[f"peak_rss_mb_threads{threads}"] = peak[0]

    tf_server = Proc(*tf_baseline(args.tf_python))
    try:
        tf_server.first_200(typical)
        results["tf_typical_ms"] = latencies(tf_server.url, typical, max(20, args.requests // 4))
        results["tf_rss_mb"] = tree_rss_mb(tf_server.proc.pid)
    finally:
        tf_server.stop()

    fn_site, tf_site = site_packages(args.function_python), site_packages(args.tf_python)
    results["installed_function_mb"] = du_mb([fn_site])
    results["installed_tensorflow_mb"] = du_mb([p for p in tf_site.iterdir() if p.name.split("-")[0].split("_")[0] in ("tensorflow", "keras", "tf", "tensorboard")])
    results["model_mb"] = (MODEL_DIR / "model.tflite").stat().st_size / 1e6

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(batch_table(results["batch_threads1"]))
    print()
    print(memory_table(memory))
    return 0


def batch_table(b: dict) -> str:
    """Medians of the rounds, in posters/s, with the ratio batch / one by one."""
    med = {k: statistics.median(v) for k, v in b.items() if isinstance(v, list)}
    return "\n".join([
        f"Batch vs one by one, THREADS=1 (one core), {b['posters']} typical posters per round, median of {len(b['single'])} rounds:", "",
        "| request | one by one | one batch | ratio |", "|---|---|---|---|",
        f"| plain | {med['single']:.1f} posters/s | {med['batch']:.1f} posters/s | {med['batch'] / med['single']:.2f}x |",
        f"| ?explain=1 | {med['single_explain']:.1f} posters/s | {med['batch_explain']:.1f} posters/s | {med['batch_explain'] / med['single_explain']:.2f}x |",
    ])


def table(r: dict) -> str:
    med = statistics.median
    cold_ours, cold_tf = med(r["cold_ours_s"]), med(r["cold_tf_s"])
    t1, t2 = r["throughput_threads1"], r["throughput_threads2"]
    rows = [
        ("Cold start, process start -> first 200 (median)", f"{cold_ours:.2f} s", f"{cold_tf:.2f} s", f"{cold_tf / cold_ours:.1f}x faster"),
        ("Warm latency, typical 300x450 JPEG, p50 / p95 / p99", " / ".join(f"{pct(r['typical_ms'], q):.1f}" for q in (50, 95, 99)) + " ms",
         f"{pct(r['tf_typical_ms'], 50):.1f} ms p50 (reloads per request)", f"{pct(r['tf_typical_ms'], 50) / pct(r['typical_ms'], 50):.1f}x"),
        ("Warm latency, large 3000x4500 JPEG, p50 / p95 / p99", " / ".join(f"{pct(r['large_ms'], q):.1f}" for q in (50, 95, 99)) + " ms", "", ""),
        ("Throughput THREADS=1, 1 / 4 / 8 clients", " / ".join(f"{t['rps']:.0f}" for t in t1) + " req/s", "", f"errors {sum(t['errors'] for t in t1)}"),
        ("Throughput THREADS=2, 1 / 4 / 8 clients", " / ".join(f"{t['rps']:.0f}" for t in t2) + " req/s", "", f"errors {sum(t['errors'] for t in t2)}"),
        ("Peak RSS, all serving processes (THREADS=1 / 2)", f"{r['peak_rss_mb_threads1']:.0f} / {r['peak_rss_mb_threads2']:.0f} MB", f"{r['tf_rss_mb']:.0f} MB", f"{r['tf_rss_mb'] / r['peak_rss_mb_threads2']:.1f}x less"),
        ("Model file", f"{r['model_mb']:.1f} MB", f"{SEED_MODEL_MB:.0f} MB (seed project)", f"{SEED_MODEL_MB / r['model_mb']:.0f}x smaller"),
        ("Installed dependencies", f"{r['installed_function_mb']:.0f} MB (whole venv)", f"{r['installed_tensorflow_mb']:.0f} MB (TensorFlow + Keras alone)", f"{r['installed_tensorflow_mb'] / r['installed_function_mb']:.1f}x smaller"),
    ]
    lines = [f"Measured {r['date']} on {r['machine']}; model {r['model']}; medians of repeated runs.", "",
             "| measure | ours (LiteRT function) | TensorFlow + Flask baseline | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
