"""python -m train.compare --data DIR [--data DIR ...] --recipe A --recipe B [...] --out DIR: recipes compared by
cross-validation on the same posters and folds, with paired bootstrap intervals against the first recipe.

Each recipe's features and out-of-fold scores come from the same caches as `python -m train`, so comparing a recipe
with the one already trained costs only what differs. Writes compare.json and compare.md into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from train import bootstrap, data, quiet, recipe
from train.report import CV_COLUMNS, fmt, pm, table

RESAMPLES = 500


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True, help="dataset folder (repeat for more)")
    parser.add_argument("--recipe", type=Path, action="append", required=True, help="recipe file (repeat; the first is the reference)")
    parser.add_argument("--out", type=Path, required=True, help="folder for compare.json and compare.md")
    parser.add_argument("--weights", type=Path, default=Path("build/weights"), help="ImageNet weights made by `make weights`")
    parser.add_argument("--cache-dir", type=Path, default=Path("build/cache"), help="features and out-of-fold scores reused between runs")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N posters of each folder (smoke runs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        recipes = [recipe.load(path) for path in args.recipe]
        comparison = compare(recipes, args.data, args.weights, args.cache_dir, args.limit)
    except (data.DataError, recipe.RecipeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps(comparison, indent=2) + "\n", encoding="utf-8")
    (args.out / "compare.md").write_text("\n".join(markdown(comparison)) + "\n", encoding="utf-8")
    print("\n".join(markdown(comparison)), flush=True)
    return 0


def compare(recipes: list[recipe.Recipe], folders: list[Path], weights: Path, cache: Path | None, limit: int | None) -> dict:
    """Every recipe's cross-validated figures on one set of posters and folds, with bootstrap intervals, paired with the first's."""
    with quiet.native_stderr():
        from train import crossval, features

    first = recipes[0]
    names = [r.name for r in recipes]
    if len(recipes) < 2 or len(set(names)) != len(names):
        raise recipe.RecipeError(f"compare needs two or more recipes with different names, got {names}")
    for r in recipes[1:]:
        if (r.data.min_examples, r.cross_validation) != (first.data.min_examples, first.cross_validation):
            raise recipe.RecipeError(f"{r.file} and {first.file} differ in data.min_examples or [cross_validation]: other genres or folds")
    dataset = data.load(folders, first.model.spec(), first.data.min_examples, limit)
    folds = data.stratified_folds(dataset.labels, first.cross_validation.folds, first.cross_validation.seed)
    results = {}
    for r in recipes:
        _, feats, keys = features.every_backbone(r, dataset, weights, cache)
        results[r.name] = crossval.cross_validate(r, dataset, folds, feats, keys, cache)
    labels, reference = dataset.labels, results[first.name]
    out = {"data": {"folders": dataset.folders, "counts": dataset.counts, "labels": dataset.label_names}, "reference": first.name,
           "recipes": {}}
    subsets = {"all": np.arange(len(labels))}
    if len(dataset.folders) > 1:
        subsets.update({folder: dataset.folder_rows(k) for k, folder in enumerate(dataset.folders)})
    for r in recipes:
        res = results[r.name]
        boot = {
            name: bootstrap.paired(labels[rows], res["scores"][rows], res["pred"][rows],
                                   None if r is first else reference["scores"][rows], None if r is first else reference["pred"][rows],
                                   resamples=RESAMPLES)
            for name, rows in subsets.items()
        }
        out["recipes"][r.name] = {"recipe": r.record(), "epochs": res["epochs"], "result": res["result"], "bootstrap": boot["all"],
                                  "bootstrap_sources": {k: v for k, v in boot.items() if k != "all"}, "cv_seconds": res["seconds"]}
    return out


def _ci(interval: list[float], signed: bool = False) -> str:
    return f"[{interval[0]:+.3f}, {interval[1]:+.3f}]" if signed else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def markdown(comparison: dict) -> list[str]:
    """compare.md: one row per recipe, pooled figures with 95% intervals and the paired difference to the reference."""
    reference, recipes = comparison["reference"], comparison["recipes"]
    lines = [
        f"# Recipes compared on {comparison['data']['counts']['all']['used']} posters "
        f"({', '.join(comparison['data']['folders'])})",
        "",
        f"Same posters, same folds. Fold mean ± sd; pooled out-of-fold figures with 95% bootstrap intervals over posters "
        f"({RESAMPLES} resamples); the difference to **{reference}** is paired (same resamples, cross-fitted decisions).",
        "",
    ]
    rows = []
    for name, r in recipes.items():
        boot, pooled, diff = r["bootstrap"], r["result"]["pooled"], r["bootstrap"].get("difference")
        rows.append([
            f"{name} (`{r['recipe']['file']}`)",
            *(pm(r["result"], k) for k, _ in CV_COLUMNS),
            f"{pooled['mAP_macro']:.3f} {_ci(boot['interval']['mAP_macro'])}",
            f"{pooled['one_error']:.3f} {_ci(boot['interval']['one_error'])}",
            *("-" if diff is None else _ci(diff[k], signed=True) for k in ("mAP_macro", "roc_auc_macro", "one_error", "f1_macro")),
            ", ".join(str(e) for e in r["epochs"].values()),
            fmt(r["cv_seconds"]),
        ])
    lines += table(["recipe", *(t for _, t in CV_COLUMNS), "pooled mAP [95%]", "pooled one-error [95%]", f"Δ mAP vs {reference}",
                     "Δ ROC-AUC", "Δ one-error", "Δ F1 macro", "epochs per backbone", "CV seconds"], rows)
    for name, r in recipes.items():
        sources = r["result"].get("sources")
        if sources:
            lines += ["", f"{name}, per data folder (out-of-fold, fold mean ± sd; paired 95% difference to {reference} on that "
                          "folder's posters):", ""]
            rows = []
            for folder, result in sources.items():
                diff = r["bootstrap_sources"][folder].get("difference")
                rows.append([folder, *(pm(result, k) for k, _ in CV_COLUMNS),
                             *("-" if diff is None else _ci(diff[k], signed=True) for k in ("mAP_macro", "roc_auc_macro", "one_error"))])
            lines += table(["folder", *(t for _, t in CV_COLUMNS), "Δ mAP", "Δ ROC-AUC", "Δ one-error"], rows)
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
