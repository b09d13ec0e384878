"""Command line -> Beam pipeline options, for the local runner and for Dataflow.

Local runs use Beam's FnApiRunner, the engine the DirectRunner itself picks for batch pipelines,
named directly: the DirectRunner first tries to download the Prism runner from the internet.
By default it runs one worker thread per core in one process: the threads share one
model (its interpreter pool) and LiteRT and Pillow release the GIL, while worker processes
each start, load the model and receive every poster over gRPC, which measured slower on 2 cores
(README.md). Dataflow runs stage the function's package
(``pyproject.toml`` at the repository root builds ``postergenre``) and install the pinned
serving dependencies (``requirements-worker.txt``) on top of the Beam SDK container of the
launching Beam version.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from postergenre.config import BUNDLED_MODEL_DIR

ROOT = Path(__file__).resolve().parents[2]
SETUP_FILE = ROOT / "pyproject.toml"
WORKER_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-worker.txt"
LOCAL_RUNNERS = ("direct", "directrunner", "fnapirunner")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m infra.catalogue",
        description="Classify every poster under INPUT with the function's model; write JSON lines to OUTPUT.",
    )
    p.add_argument("--input", required=True, help="a folder, a file or a glob: posters/, 'posters/**/*.jpg', gs://bucket/posters/")
    p.add_argument(
        "--output", required=True, help="output folder (local or gs://): predictions-*.jsonl, errors-*.jsonl (dead letter), summary.json"
    )
    p.add_argument(
        "--model-uri",
        default=os.environ.get("MODEL_URI", "").strip() or str(BUNDLED_MODEL_DIR),
        help="model artifact: a folder or a gs:// version (default: $MODEL_URI, else the bundled model)",
    )
    p.add_argument("--runner", default="direct", help="direct (this machine, default) or dataflow; any other Beam runner name is passed on")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local workers (default: one per core)")
    p.add_argument(
        "--running-mode",
        choices=("multi_threading", "multi_processing"),
        default="multi_threading",
        help="local workers as threads sharing one model (default) or as processes",
    )
    p.add_argument("--csv", action="store_true", help="also write predictions-*.csv (one column per label)")
    p.add_argument("--max-batch-size", type=int, default=None, help="posters per RunInference batch (default: MAX_BATCH, as the function)")
    p.add_argument("--num-shards", type=int, default=0, help="output files per kind (default: the runner decides)")
    p.add_argument("--project", help="Dataflow: Google Cloud project")
    p.add_argument("--region", help="Dataflow: region")
    p.add_argument("--temp-location", help="Dataflow: gs:// folder for temporary and staged files")
    p.add_argument("--service-account", help="Dataflow: the worker service account's email (terraform output catalogue_worker_email)")
    p.add_argument("--job-name", default=f"postergenre-catalogue-{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--dry-run", action="store_true", help="print the pipeline options and exit without running or submitting")
    return p


def is_dataflow(runner: str) -> bool:
    return runner.lower() in ("dataflow", "dataflowrunner")


def beam_flags(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """Beam's own flags for ``args.runner``; ``extra`` (unknown flags) is passed through last, so it wins."""
    runner = args.runner.lower()
    if runner in LOCAL_RUNNERS:
        workers = max(1, args.workers)
        flags = [
            "--runner=FnApiRunner",
            f"--direct_num_workers={workers}",
            f"--direct_running_mode={args.running_mode if workers > 1 else 'in_memory'}",
        ]
    elif is_dataflow(runner):
        missing = [name for name in ("project", "region", "temp_location") if not getattr(args, name)]
        if missing:
            raise SystemExit(f"dataflow needs {', '.join('--' + m.replace('_', '-') for m in missing)}")
        if not args.model_uri.startswith("gs://"):
            raise SystemExit(
                "dataflow workers read the model from Cloud Storage: pass --model-uri gs://BUCKET/PREFIX/VERSION/ (make publish prints it)"
            )
        flags = [
            "--runner=DataflowRunner",
            f"--project={args.project}",
            f"--region={args.region}",
            f"--temp_location={args.temp_location}",
            f"--job_name={args.job_name}",
            f"--setup_file={SETUP_FILE}",
            f"--requirements_file={WORKER_REQUIREMENTS}",
        ]
        if args.service_account:
            flags.append(f"--service_account_email={args.service_account}")
    else:
        flags = [f"--runner={args.runner}"]
    return flags + list(extra)
