"""gs:// input and model against fake-gcs-server, and the Dataflow submission options (dry run).

Beam's GCS file system follows STORAGE_EMULATOR_HOST (google-cloud-storage reads it): matching,
reading and writing objects work against fake-gcs-server; only the sinks' final rename does not
(Beam renames with the JSON batch API, which fake-gcs-server does not implement), so output goes
to a local folder here. NO_GCE_CHECK keeps google-auth from probing the metadata server.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from infra.emulator import Emulator
from tests.catalogue.test_pipeline import lines, run_pipeline
from tests.helpers import images
from tests.helpers.server import ROOT, free_port


def test_gs_input_and_model_on_the_emulator(tmp_path, model_dir):
    emulator = Emulator(free_port()).start()
    try:
        emulator.create_bucket("catalogue")
        posters = {
            "posters/red.jpg": images.poster("Red"),
            "posters/a/blue.png": images.poster("Blue", fmt="PNG"),
            "posters/bad.jpg": b"nope",
        }
        for name, data in posters.items():
            emulator.put("catalogue", name, data)
        for f in ("manifest.json", "model.tflite"):
            emulator.put("catalogue", f"models/test-1/{f}", (model_dir / f).read_bytes())
        env = {"STORAGE_EMULATOR_HOST": emulator.host, "NO_GCE_CHECK": "true", "GOOGLE_CLOUD_PROJECT": "local-emulator"}
        args = [
            "--input",
            "gs://catalogue/posters/",
            "--output",
            str(tmp_path / "out"),
            "--model-uri",
            "gs://catalogue/models/test-1/",
            "--workers",
            "1",
        ]
        run = run_pipeline(*args, env=env)
    finally:
        emulator.stop()
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    got = {r["path"]: r for r in lines(tmp_path / "out", "predictions")}
    assert sorted(got) == sorted(f"gs://catalogue/{name}" for name in posters)
    assert got["gs://catalogue/posters/red.jpg"]["genres"] == ["Red"]
    assert got["gs://catalogue/posters/a/blue.png"]["genres"] == ["Blue"]
    assert got["gs://catalogue/posters/bad.jpg"]["error"]["code"] == "not_an_image"
    assert got["gs://catalogue/posters/red.jpg"]["model"]["sha256"] == json.loads((model_dir / "manifest.json").read_text())["sha256"]


DATAFLOW = [
    "--runner",
    "dataflow",
    "--project",
    "p",
    "--region",
    "europe-west1",
    "--temp-location",
    "gs://b/tmp/",
    "--service-account",
    "w@p.iam.gserviceaccount.com",
]


def test_dataflow_dry_run_options(tmp_path):
    run = run_pipeline(
        "--input",
        "gs://b/posters/",
        "--output",
        "gs://b/out/",
        "--model-uri",
        "gs://b/models/v1/",
        *DATAFLOW,
        "--dry-run",
        "--max_num_workers=5",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    shown = json.loads(run.stdout)
    opts = shown["options"]
    assert opts["runner"] == "DataflowRunner" and opts["project"] == "p" and opts["region"] == "europe-west1"
    assert opts["temp_location"] == "gs://b/tmp/" and opts["service_account_email"] == "w@p.iam.gserviceaccount.com"
    assert opts["max_num_workers"] == 5
    assert Path(opts["setup_file"]) == ROOT / "pyproject.toml"
    worker = Path(opts["requirements_file"])
    assert worker == ROOT / "infra/catalogue/requirements-worker.txt"
    venv = dict(
        line.split("==")
        for line in (ROOT / "infra/catalogue/requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    pins = [line for line in worker.read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line and venv[line.split("==")[0]] == line.split("==")[1] for line in pins), (
        "workers get the venv's versions"
    )
    assert shown["input"] == "gs://b/posters/**" and shown["model_uri"] == "gs://b/models/v1/"


def test_dataflow_needs_a_gs_model_and_its_locations(tmp_path, model_dir):
    run = run_pipeline("--input", "gs://b/p/", "--output", "gs://b/o/", "--model-uri", str(model_dir), *DATAFLOW, "--dry-run")
    assert run.returncode != 0 and "gs://" in run.stderr
    run = run_pipeline("--input", "gs://b/p/", "--output", "gs://b/o/", "--model-uri", "gs://b/m/", "--runner", "dataflow", "--dry-run")
    assert run.returncode != 0 and "--temp-location" in run.stderr


def test_workers_need_only_postergenre(tmp_path, model_dir):
    """The handler and DoFns travel by value: they unpickle where this repository's infra/ is not importable."""
    from apache_beam.internal import pickler

    from infra.catalogue.__main__ import _by_value
    from infra.catalogue.handler import PosterModelHandler
    from infra.catalogue.pipeline import ReadPoster

    _by_value()
    blob = tmp_path / "handler.pkl"
    blob.write_bytes(pickle.dumps((pickler.dumps(PosterModelHandler(str(model_dir))), pickler.dumps(ReadPoster(100, {})))))
    code = (
        "import pickle, sys; from apache_beam.internal import pickler\n"
        "h, r = (pickler.loads(b) for b in pickle.loads(open(sys.argv[1], 'rb').read()))\n"
        "assert 'infra' not in sys.modules, sorted(m for m in sys.modules if m.startswith('infra'))\n"
        "print(h.load_model().predictor.manifest.version, r.max_bytes)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code, str(blob)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["test-1", "100"]


def test_local_dry_run_uses_the_fn_api_runner_with_threads(model_dir):
    run = run_pipeline("--input", "posters/", "--output", "out/", "--workers", "2", "--dry-run")
    assert run.returncode == 0, run.stderr[-3000:]
    opts = json.loads(run.stdout)["options"]
    assert (opts["runner"], opts["direct_num_workers"], opts["direct_running_mode"]) == ("FnApiRunner", 2, "multi_threading")
