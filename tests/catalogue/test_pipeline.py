"""The catalogue pipeline end to end on Beam's local runner, answers checked against the HTTP function.

The function runs as a real server from the function's own venv (FUNCTION_PYTHON, pillow 13),
the pipeline as ``python -m infra.catalogue`` in this venv (pillow 12, see requirements.txt):
every readable poster must get exactly the function's genres, scores, model and thresholds,
every broken file the function's error code and message, and every file exactly one line.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.helpers import images
from tests.helpers.server import FUNCTION_DIR, ROOT, ServerProcess, function_command

# Small limits, the same for the server and the pipeline: the size and pixel refusals are cheap to provoke.
LIMITS = {"MEMORY_MB": "320", "MAX_UPLOAD_BYTES": "300000", "WARM_BASE_MB": "260"}
BROKEN = {
    "empty.jpg": "empty_body",
    "notes.txt": "not_an_image",
    "cut.jpg": "undecodable_image",
    "cut.png": "undecodable_image",
    "many-scans.jpg": "too_many_scans",
    "huge.png": "too_many_pixels",
    "too-big.bmp": "payload_too_large",
    "icon.ico": "unsupported_format",
}


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def catalogue(folder: Path) -> dict[str, str | None]:
    """A folder of real, odd and broken posters -> {relative path: expected error code or None}."""
    files: dict[str, bytes] = {}
    for i, colour in enumerate(["Red", "Green", "Blue"] * 2):
        files[f"posters/{colour.lower()}-{i}.jpg"] = images.poster(colour, (200 + 10 * i, 300))
    files["posters/blue.png"] = images.poster("Blue", fmt="PNG")
    files["posters/green.webp"] = images.poster("Green", fmt="WEBP")
    files["posters/red.gif"] = images.poster("Red", fmt="GIF")
    files["posters/blue.tiff"] = images.poster("Blue", fmt="TIFF")
    files["posters/deep/nested/red.bmp"] = images.poster("Red", (60, 90), fmt="BMP")
    files["posters/grey.jpg"] = images.poster("Green", mode="L")
    files["posters/cmyk.jpg"] = images.poster("Red", mode="CMYK")
    files["posters/progressive.jpg"] = images.poster("Blue", (400, 600), progressive=True)
    files["posters/rgba.png"] = images.poster("Green", fmt="PNG", mode="RGBA")
    files["posters/palette.png"] = images.poster("Red", fmt="PNG", mode="P")
    files["posters/one-pixel.png"] = _save(Image.new("RGB", (1, 1), images.COLOURS["Blue"]), "PNG")
    files["posters/sliver.png"] = _save(Image.new("RGB", (1, 900), images.COLOURS["Red"]), "PNG")
    files["posters/sixteen-bit.png"] = _save(Image.new("I;16", (40, 60), 30000), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    files["posters/rotated.jpg"] = images.poster("Green", (300, 200), exif=exif.tobytes())
    files["posters/with space é.jpg"] = images.poster("Blue")
    files["posters/no-extension"] = images.poster("Red")
    files["posters/jpeg-named.png"] = images.poster("Green")
    jpeg = images.poster("Red")
    files["broken/empty.jpg"] = b""
    files["broken/notes.txt"] = b"not a poster at all\n"
    files["broken/cut.jpg"] = jpeg[: len(jpeg) * 2 // 3]
    png = images.poster("Blue", (400, 600), fmt="PNG")
    files["broken/cut.png"] = png[: len(png) // 2]
    files["broken/many-scans.jpg"] = images.many_scans_jpeg(200, (400, 600))
    files["broken/huge.png"] = _save(Image.new("RGB", (4000, 4000)), "PNG")
    files["broken/too-big.bmp"] = _save(Image.new("RGB", (400, 300)), "BMP")
    files["broken/icon.ico"] = _save(Image.new("RGB", (32, 32)), "ICO")
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return {name: BROKEN.get(Path(name).name) if name.startswith("broken/") else None for name in files}


def function_python() -> str:
    given = os.environ.get("FUNCTION_PYTHON")
    if given:
        return os.path.abspath(given)
    pytest.importorskip("functions_framework", reason="set FUNCTION_PYTHON to the function's venv python (make test-catalogue does)")
    return sys.executable


def http_answers(folder: Path, names: list[str], model_dir: Path, log: Path) -> dict[str, dict]:
    """What the function answers for each file: posted as JSON base64 (the exact bytes, never sniffed
    as base64 text), or as raw bytes when base64 would push the body over MAX_UPLOAD_BYTES."""
    server = ServerProcess(function_command(function_python()), {"MODEL_URI": str(model_dir), "THREADS": "2", **LIMITS}, FUNCTION_DIR, log)
    try:
        server.wait_ready()
        limit = int(LIMITS["MAX_UPLOAD_BYTES"])
        answers = {}
        for name in names:
            data = (folder / name).read_bytes()
            if len(data) * 4 // 3 + 16 > limit:
                answers[name] = requests.post(
                    server.url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=60
                ).json()
            else:
                answers[name] = requests.post(server.url, json={"image": base64.b64encode(data).decode()}, timeout=60).json()
        return answers
    finally:
        server.stop()


def run_pipeline(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.catalogue", *args],
        cwd=ROOT,
        env={**os.environ, **LIMITS, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def lines(output: Path, kind: str) -> list[dict]:
    return [json.loads(line) for f in sorted(output.glob(f"{kind}-*.jsonl")) for line in f.read_text().splitlines()]


def test_catalogue_matches_the_function(tmp_path, model_dir):
    folder, output = tmp_path / "in", tmp_path / "out"
    expected = catalogue(folder)
    run = run_pipeline("--input", str(folder), "--output", str(output), "--model-uri", str(model_dir), "--workers", "2", "--csv")
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]

    records = lines(output, "predictions")
    paths = [r["path"] for r in records]
    assert sorted(paths) == sorted(str(folder / name) for name in expected), "every file exactly once"
    by_name = {str(Path(r["path"]).relative_to(folder)): r for r in records}
    answers = http_answers(folder, sorted(expected), model_dir, tmp_path / "server.log")
    for name, code in expected.items():
        line, http = by_name[name], answers[name]
        if code is None:
            assert "error" not in http, (name, http)
            assert {k: line[k] for k in ("genres", "scores", "model", "thresholds")} == {
                k: http[k] for k in ("genres", "scores", "model", "thresholds")
            }, name
        else:
            assert http["error"]["code"] == code, (name, http)
            assert line["error"] == http["error"], name
            assert line["model"] == http["model"] if "model" in http else line["model"]["version"] == "test-1"

    dead = lines(output, "errors")
    assert sorted(r["path"] for r in dead) == sorted(str(folder / n) for n, c in expected.items() if c)
    assert all(r == by_name[str(Path(r["path"]).relative_to(folder))] for r in dead)
    summary = json.loads((output / "summary.json").read_text())
    assert (summary["files"], summary["classified"], summary["failed"]) == (
        len(expected),
        sum(c is None for c in expected.values()),
        len(BROKEN),
    )
    assert summary["errors"] == {code: list(BROKEN.values()).count(code) for code in sorted(set(BROKEN.values()))}
    assert summary["complete"] and f"{len(expected)} files" in run.stdout

    csv_rows = [row for f in sorted(output.glob("predictions-*.csv")) for row in f.read_text().splitlines()[1:]]
    assert len(csv_rows) == len(expected)
    header = next(output.glob("predictions-*.csv")).read_text().splitlines()[0]
    assert header == "path,model_version,genres,error_code,error_message,Red,Green,Blue"


def test_a_model_that_fails_its_checksum_stops_the_run_before_it_starts(tmp_path, copy_model):
    model = copy_model()
    data = bytearray((model / "model.tflite").read_bytes())
    data[-1] ^= 1
    (model / "model.tflite").write_bytes(bytes(data))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(images.poster("Red"))
    run = run_pipeline("--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--model-uri", str(model), "--workers", "1")
    assert run.returncode == 2 and "model_integrity" in run.stderr
    assert not (tmp_path / "out").exists()


def test_an_empty_match_fails(tmp_path, model_dir):
    run = run_pipeline(
        "--input", str(tmp_path / "nothing-*.jpg"), "--output", str(tmp_path / "out"), "--model-uri", str(model_dir), "--workers", "1"
    )
    assert run.returncode != 0
