"""python -m train --data DIR [--data DIR ...] --out DIR --recipe FILE: posters in, a calibrated fp16 TFLite artifact and
its report out.

The stages, one module each: data (read the folders, check every poster) -> features (backbones run on posters decoded
batch by batch; pooled features cached on disk) -> crossval (out-of-fold scores, epochs, figures) -> calibrate
(per-genre thresholds) -> refit (heads on every poster) -> export (fp16 TFLite, manifest, parity) -> report. This file
only wires them; every tuning knob is in the recipe file (train/recipes/, train/recipe.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from postergenre import allocator, artifact
from train import calibrate, data, quiet, recipe


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="dataset folder: train.csv + Images/<Id>.jpg; repeat for more folders (one dataset)")
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to create")
    parser.add_argument("--recipe", type=Path, required=True, help="recipe file, e.g. train/recipes/v3.toml")
    parser.add_argument("--weights", type=Path, default=Path("build/weights"), help="ImageNet weights made by `make weights`")
    parser.add_argument("--cache-dir", type=Path, default=Path("build/cache"), help="features and out-of-fold scores reused between runs")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N posters of each folder (smoke runs)")
    parser.add_argument("--cv-only", action="store_true", help="stop after cross-validation (writes cv.json)")
    parser.add_argument("--version", default=None, help="artifact version (default: UTC timestamp)")
    parser.add_argument("--reports-dir", type=Path, default=None, help="also copy report.md, report.json and plots here")
    parser.add_argument("--latency-compare", default="",
                        help="name=artifact_dir,...: models timed interleaved with the new one (invoke only), e.g. v1=build/v1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        run(args, recipe.load(args.recipe))
    except (data.DataError, recipe.RecipeError, FileNotFoundError) as exc:  # FileNotFoundError: weights not made yet
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


class _Clock:
    """Seconds per stage, for the manifest's record."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 1)
        self.last = now

    def total(self) -> float:
        return round(time.monotonic() - self.start, 1)


def load(args: argparse.Namespace, r: recipe.Recipe) -> data.Dataset:
    """The posters of every --data folder, enough of them for the folds; the output folder is created."""
    dataset = data.load(args.data, r.model.spec(), r.data.min_examples, args.limit)
    if len(dataset.ids) < 2 * r.cross_validation.folds:
        raise data.DataError(f"{len(dataset.ids)} posters are too few for {r.cross_validation.folds}-fold cross-validation")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"posters: {dataset.counts}; genres {len(dataset.label_names)}; dropped genres {dataset.dropped_labels}", flush=True)
    return dataset


def run(args: argparse.Namespace, r: recipe.Recipe) -> None:
    """Data -> features -> cross-validation -> calibration -> refit -> export + parity -> report."""
    with quiet.native_stderr():  # TensorFlow's import-time notices
        from train import crossval, export, features, refit, report

    allocator.tune_allocator()  # freed pixel batches go back to the system: peak RSS does not drift with the posters
    clock = _Clock()
    dataset = load(args, r)
    nets, feats, keys = features.every_backbone(r, dataset, args.weights, args.cache_dir)
    clock.lap("features")
    folds = data.stratified_folds(dataset.labels, r.cross_validation.folds, r.cross_validation.seed)
    cv = crossval.cross_validate(r, dataset, folds, feats, keys, args.cache_dir)
    clock.lap("cross_validation")
    if args.cv_only:
        summary = {"recipe": r.record(), "labels": dataset.label_names, "epochs": cv["epochs"], "sets": cv["sets"]}
        (args.out / "cv.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return
    thresholds = calibrate.thresholds(dataset.labels, cv["scores"], r.calibration.micro_weight)  # the ensemble's OOF scores
    members, net = refit.refit(r, nets, feats, dataset, cv["epochs"])
    clock.lap("refit")

    tflite, manifest = export.package(r, net, dataset.label_names, thresholds[0], args.version)
    posters, pixels = export.probe(r, dataset)
    parity = export.parity(net, manifest, tflite, posters, pixels)
    costs = export.member_costs(r, args.out, members, manifest, posters[: export.LATENCY_POSTERS])
    costs["+".join(r.model.backbones)] = {**export.latency(manifest, tflite, posters[: export.LATENCY_POSTERS]),
                                          "params": int(net.count_params())}
    clock.lap("export")
    training = report.training_record(r, dataset, cv["epochs"], int(net.count_params()),
                                      {**clock.phases, "features_first_run": features.first_seconds(keys, args.cache_dir)})
    manifest = artifact.write(args.out, tflite, {
        **manifest,
        "label_rule": f"genres with fewer than {r.data.min_examples} positive posters in the dataset are not predicted",
        "dropped_labels": dataset.dropped_labels,
        "training": training,
        "metrics": artifact.metrics_entry(cv["result"]["folds"], cv["result"]["pooled"]),
        "parity": parity,
    })
    compare = dict(item.split("=", 1) for item in args.latency_compare.split(",") if item)
    if compare:  # timed against the artifact just written
        runs = {**{k: Path(v) for k, v in compare.items()}, "this model": args.out}
        costs["interleaved"] = export.interleaved_latency(runs, posters[: export.LATENCY_POSTERS])
    full = report.assemble(r, dataset, folds, cv, manifest, thresholds, costs, clock.total())
    report.write(args.out, full)
    if args.reports_dir:
        report.copy(args.out, args.reports_dir)
    print(json.dumps({"artifact": str(args.out), **manifest["metrics"], "parity": parity, "costs": costs}, indent=2), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
