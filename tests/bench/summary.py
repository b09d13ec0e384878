"""The headline figures of README.md, rendered from the result files (the one place they live).

    python3 -m tests.bench.summary          # rewrite the block between the figures markers in README.md
    python3 -m tests.bench.summary --check  # exit 1 if README.md is not what the result files give

Quality comes from train/reports/report.json (the training report of the bundled model), speed and
size from the newest tests/bench/results/bench-*.json measured on the bundled model, memory from the
memory-*.json of the same name (the same make bench run). tests/docs/test_docs.py fails while the block
is stale.
Standard library only, so it runs in any environment.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
REPORT = ROOT / "train/reports/report.json"
RESULTS = ROOT / "tests/bench/results"
MANIFEST = ROOT / "function/model/manifest.json"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
QUALITY = (
    ("mAP_macro", "mAP"),
    ("roc_auc_macro", "ROC-AUC"),
    ("one_error", "one-error (lower is better)"),
    ("f1_macro", "F1 macro"),
    ("f1_micro", "F1 micro"),
)
# The product's quality bar (a target, not a measurement): macro over the genres with enough positives.
QUALITY_BAR = {"mAP_macro": ">= 0.34", "roc_auc_macro": ">= 0.775", "one_error": "<= 0.315", "f1_macro": ">= 0.34", "f1_micro": ">= 0.50"}
MEMORY_MB = 512  # the instance memory tests/bench/run.py measures the memory matrix at (the deployed default)


def pct(values: list[float], q: int) -> float:
    """Linear-interpolated percentile, as numpy.percentile (what tests/bench/run.py prints)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def bench_for(version: str) -> Path:
    """The newest full bench result measured on this model version."""
    results = {path: json.loads(path.read_text()) for path in RESULTS.glob("bench-*.json")}
    found = [(r["date"], path) for path, r in results.items() if r.get("model") == version and "cold_ours_s" in r]
    if not found:
        raise SystemExit(f"no full bench result of the bundled model {version} in {RESULTS}: run make bench, add its bench.json there")
    return max(found)[1]


def machine(described: str) -> str:
    """'x86_64, 2 cores, 3.11.7, Linux-...' (tests/bench/run.py) -> 'x86_64, 2 cores, Python 3.11.7'."""
    arch, cores, python = described.split(", ")[:3]
    return f"{arch}, {cores}, Python {python}"


def link(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return f"[{rel}]({rel})"


def row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def quality(report: dict) -> list[str]:
    shipped, data = report["shipped"], report["data"]
    cv, prior = report["cv"][shipped], report["baselines"]["label_prior"]
    folds, common = cv["folds"], cv["pooled_common"]
    counts = data["counts"].get("all", data["counts"])  # reports before several data folders: one flat count
    return [
        f"Quality: {data['folds']}-fold cross-validation on {counts['used']:,} posters, {len(report['labels'])} genres, "
        f"mean ± sd over folds ({link(REPORT.with_suffix('.md'))}, from {link(REPORT)}):",
        "",
        row("model", *(title for _, title in QUALITY)),
        "|---|" + "---|" * len(QUALITY),
        row("label prior (baseline)", *(f"{prior[key]:.3f}" for key, _ in QUALITY)),
        row(f"**{shipped}** (shipped)", *(f"{folds[key]['mean']:.3f} ± {folds[key]['sd']:.3f}" for key, _ in QUALITY)),
        row(f"{shipped}, the {common['genres']} common genres, pooled out-of-fold", *(f"{common[key]:.3f}" for key, _ in QUALITY)),
        *(row(f"{shipped}, the posters of `{Path(folder).name}` ({data['counts'][folder]['used']:,})",
              *(f"{result['folds'][key]['mean']:.3f} ± {result['folds'][key]['sd']:.3f}" for key, _ in QUALITY))
          for folder, result in cv.get("sources", {}).items()),
        row("quality bar (target, common genres)", *(QUALITY_BAR[key] for key, _ in QUALITY)),
    ]


def speed(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    med = statistics.median
    cold, cold_tf = med(r["cold_ours_s"]), med(r["cold_tf_s"])
    warm, warm_tf = pct(r["typical_ms"], 50), pct(r["tf_typical_ms"], 50)
    batch = {key: med(values) for key, values in r["batch_threads1"].items() if isinstance(values, list)}
    rss, rss_tf = r["peak_rss_mb_threads2"], r["tf_rss_mb"]
    t2 = r["throughput_threads2"]
    return [
        f"Speed: `make bench`, {r['date'][:10]}, {machine(r['machine'])}, model {r['model']}, against a TensorFlow + Flask server "
        f"that loads the same model per request as the seed project did ({link(path)}):",
        "",
        row("measure", "this function (LiteRT)", "TensorFlow baseline", "ratio"),
        "|---|---|---|---|",
        row("Cold start, process start -> first 200 (median)", f"{cold:.2f} s", f"{cold_tf:.2f} s", f"{cold_tf / cold:.1f}x faster"),
        row("Warm latency, 300x450 JPEG, p50 / p95 / p99", " / ".join(f"{pct(r['typical_ms'], q):.1f}" for q in (50, 95, 99)) + " ms",
            f"{warm_tf:.1f} ms p50", f"{warm_tf / warm:.1f}x"),
        row("Warm latency, 3000x4500 JPEG, p50", f"{pct(r['large_ms'], 50):.1f} ms", "", ""),
        row("Throughput, THREADS=2, 1 / 4 / 8 clients", " / ".join(f"{t['rps']:.0f}" for t in t2) + " req/s", "",
            f"{sum(t['errors'] for t in t2)} errors"),
        row(f"Batch of {r['batch_threads1']['posters']} vs one by one, THREADS=1",
            f"{batch['batch'] / batch['single']:.2f}x the posters/s "
            f"({batch['batch_explain'] / batch['single_explain']:.2f}x with `?explain=1`)", "", ""),
        row("Peak RSS, all serving processes, THREADS=2", f"{rss:.0f} MB", f"{rss_tf:.0f} MB", f"{rss_tf / rss:.1f}x less"),
        row("Model file", f"{r['model_mb']:.1f} MB", "", ""),
        row("Installed dependencies", f"{r['installed_function_mb']:.0f} MB",
            f"{r['installed_tensorflow_mb']:.0f} MB (TensorFlow + Keras)", ""),
    ]


def memory(path: Path) -> list[str]:
    rows = json.loads(path.read_text())
    accepted, refused = [r for r in rows if r["status"] == 200], [r for r in rows if r["status"] != 200]
    peak = max(max(r["peak_alone_mb"], r["peak_together_mb"]) for r in accepted)
    base = min(r["base_mb"] for r in rows)
    return [
        f"Memory: the largest input of each format the memory model accepts, alone and two at once, at `MEMORY_MB={MEMORY_MB}` "
        f"`THREADS=2`: warm base {base:.0f} MiB, highest peak {peak:.0f} MiB of {MEMORY_MB} MiB, "
        f"{len(refused)} inputs over the limit refused with 400 ({link(path)})."
    ]


def render() -> str:
    report = json.loads(REPORT.read_text())
    version = json.loads(MANIFEST.read_text())["version"]
    if report["manifest"]["version"] != version:
        raise SystemExit(f"{REPORT} is the report of {report['manifest']['version']}, the bundled model is {version}")
    bench = bench_for(version)
    mem = RESULTS / bench.name.replace("bench-", "memory-", 1)  # the same run's memory matrix
    if not mem.exists():
        raise SystemExit(f"no {mem.name} next to {bench.name}: add the memory.json of the same make bench run")
    lines = [START, "<!-- generated by `python3 -m tests.bench.summary` from the files linked below; do not edit by hand -->", ""]
    lines += quality(report) + [""] + speed(bench) + [""] + memory(mem) + ["", END]
    return "\n".join(lines)


def updated(text: str) -> str:
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md has no {START} ... {END} block")
    return head + render() + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if README.md is stale")
    args = parser.parse_args()
    text = README.read_text()
    new = updated(text)
    if args.check:
        if new != text:
            print("README.md figures are stale: run python3 -m tests.bench.summary", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
