"""report.json, report.md and plots: every candidate next to the baselines on the same out-of-fold posters."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from postergenre import artifact  # noqa: E402
from train import backbones, calibrate, metrics  # noqa: E402
from train.data import DataError, Dataset, stratified_split  # noqa: E402
from train.recipe import ROOT, Recipe  # noqa: E402

V1_VAL_FRACTION = 0.15  # v1's single split (its validation share)


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def plot_cv_curves(curves: dict[str, list[float]], epochs: dict[str, int], path: Path) -> None:
    fig, axis = plt.subplots(figsize=(6.5, 3.6))
    for name, curve in curves.items():
        line, = axis.plot(range(1, len(curve) + 1), curve, label=name)
        axis.plot([epochs[name]], [curve[epochs[name] - 1]], "o", color=line.get_color())
    axis.set_xlabel("epoch (of the cosine schedule)")
    axis.set_ylabel("out-of-fold mAP (macro)")
    axis.set_title("cross-validation: heads' mAP by epoch (dot: epochs used)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_per_genre_ap(labels: list[str], models: dict[str, list], prior: np.ndarray, path: Path) -> None:
    order = np.argsort(-prior)
    fig, axis = plt.subplots(figsize=(11, 4))
    width = 0.8 / (len(models) + 1)
    x = np.arange(len(labels))
    axis.bar(x - 0.4 + width / 2, prior[order], width, label="label prior (chance AP)", color="lightgrey")
    for k, (name, ap) in enumerate(models.items(), start=1):
        values = np.array([np.nan if v is None else v for v in ap])[order]
        axis.bar(x - 0.4 + width / 2 + k * width, values, width, label=name)
    axis.set_xticks(x, [labels[i] for i in order], rotation=60, ha="right")
    axis.set_ylabel("average precision (out-of-fold)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_thresholds(labels: list[str], thresholds: list[float], f1: list[float], path: Path) -> None:
    fig, axis = plt.subplots(figsize=(11, 3.6))
    x = np.arange(len(labels))
    axis.bar(x - 0.2, thresholds, 0.4, label="threshold")
    axis.bar(x + 0.2, f1, 0.4, label="out-of-fold F1 at threshold")
    axis.set_xticks(x, labels, rotation=60, ha="right")
    axis.set_ylim(0, 1)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


PLOTS = ("cv_curves.png", "per_genre_ap.png", "thresholds.png")
POOLED = artifact.SUMMARY_KEYS
CV_COLUMNS = tuple((key, artifact.TITLES[key]) for key in ("mAP_macro", "roc_auc_macro", "one_error", "f1_macro", "f1_micro"))
V1_COLUMNS = tuple(
    (key, artifact.TITLES[key]) for key in ("mAP_macro", "roc_auc_macro", "one_error", "precision_at_3", "f1_macro", "f1_micro")
)


def write(out: Path, report: dict) -> None:
    """Write report.json, report.md and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    labels, shipped = report["labels"], report["shipped"]
    plot_cv_curves(report["cv_curves"], report["training"]["epochs"], out / "cv_curves.png")
    models = {
        name: result["pooled"]["per_label_ap"] for name, result in report["cv"].items() if len(result["members"]) == 1 or name == shipped
    }
    plot_per_genre_ap(labels, models, np.array(report["data"]["prior"]), out / "per_genre_ap.png")
    calib = report["calibration"]
    plot_thresholds(labels, [calib["thresholds"][label] for label in labels], calib["f1_at_threshold"], out / "thresholds.png")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")


def copy(run: Path, reports_dir: Path) -> None:
    import shutil

    reports_dir.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "report.json", *PLOTS):
        shutil.copy2(run / name, reports_dir / name)


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *("| " + " | ".join(row) + " |" for row in rows)]


def pm(result: dict, key: str) -> str:
    return f"{result['folds'][key]['mean']:.3f} ± {result['folds'][key]['sd']:.3f}"


def markdown(report: dict) -> str:
    """report.md: the data, the cross-validation tables, v1's posters (when compared), parity, per genre."""
    sections = (_summary, _cross_validation, _sources, _v1_split, _costs, _parity, _per_genre)
    lines = [line for section in sections for line in section(report)]
    lines += [
        "",
        "![cross-validation curves](cv_curves.png)",
        "",
        "![per-genre AP](per_genre_ap.png)",
        "",
        "![thresholds](thresholds.png)",
        "",
    ]
    return "\n".join(lines)


def _summary(report: dict) -> list[str]:
    data, training = report["data"], report["training"]
    counts = data["counts"]["all"]
    seconds = training["seconds"]
    return [
        f"# Model report: {report['manifest']['name']} {report['manifest']['version']}",
        "",
        f"Recipe: `{training['recipe']['file']}` (its text is in report.json and in the manifest).",
        "",
        f"Posters: {counts['used']} used (duplicate rows ignored: {counts['duplicate_rows']}, unreadable images skipped: "
        f"{counts['skipped_missing_or_corrupt']}). Genres: {len(report['labels'])} kept, dropped (fewer than {data['min_examples']} "
        f"examples): {data['dropped_labels'] or 'none'}.",
        "",
        f"Shipped: **{report['shipped']}**. {training['selection']}. Epochs: {training['epochs']}. "
        f"Heads: {training['head']}. Training time on this machine: {report['train_seconds']:.0f} s "
        f"(features {seconds['features']:.0f} s, cross-validation {seconds['cross_validation']:.0f} s, "
        f"refit {seconds['refit']:.0f} s; the rest is export, parity and latency).",
        "",
    ]


def _sources(report: dict) -> list[str]:
    """Per data folder: its posters, and the shipped set's out-of-fold figures on them (one model, one set of thresholds)."""
    folders, shipped = report["data"]["folders"], report["cv"][report["shipped"]]
    if len(folders) < 2:
        return []
    counts = report["data"]["counts"]
    lines = ["", "## Per data folder", "", "Each folder's posters scored out-of-fold by the shipped set, with the thresholds "
             "cross-fitted on all posters (folds are stratified over the union):", ""]
    return lines + table(
        ["folder", "posters used", "skipped", *(t for _, t in CV_COLUMNS), "pooled mAP", "pooled one-error"],
        [[folder, str(counts[folder]["used"]), str(counts[folder]["skipped_missing_or_corrupt"]),
          *(pm(shipped["sources"][folder], k) for k, _ in CV_COLUMNS),
          fmt(shipped["sources"][folder]["pooled"]["mAP_macro"]), fmt(shipped["sources"][folder]["pooled"]["one_error"])]
         for folder in folders],
    )


def _cross_validation(report: dict) -> list[str]:
    cv, costs, shipped = report["cv"], report["costs"], report["shipped"]
    lines = [
        f"## Cross-validation ({report['data']['folds']} folds, every poster scored by heads that never saw it)",
        "",
        "Mean ± sd over folds; decisions (F1) use thresholds calibrated on the other folds' out-of-fold scores. "
        "The epoch count per backbone is the one value chosen on these same scores (a small optimism); the head settings are "
        "given by the recipe (compare recipes with python -m train.compare). Pooled: all out-of-fold scores together. "
        "Baselines score each fold with the other folds' genre frequencies.",
        "",
    ]
    rows = []
    for name in ("predict_nothing", "label_prior"):
        m = report["baselines"][name]
        rows.append([name.replace("_", " "), *(fmt(m[k]) for k, _ in CV_COLUMNS), *(fmt(m[k]) for k in POOLED), "-", "-", "-"])
    for name, result in cv.items():
        cost = costs.get(name, {})
        rows.append(
            [
                f"**{name}** (shipped)" if name == shipped else name,
                *(pm(result, k) for k, _ in CV_COLUMNS),
                *(fmt(result["pooled"][k]) for k in POOLED),
                *(fmt(cost.get(k)) for k in ("params", "size_mb", "p50_ms")),
            ]
        )
    lines += table(
        [
            "model",
            *(t for _, t in CV_COLUMNS),
            "pooled mAP",
            "pooled ROC-AUC",
            "pooled one-error",
            "params",
            "file MB",
            "warm p50 ms, 1 thread",
        ],
        rows,
    )
    common = next(iter(cv.values()))["pooled_common"]["genres"]
    lines += ["", f"Pooled out-of-fold, macro over the {common} genres with at least 1% of posters (as the quality bar counts them):", ""]
    lines += table(
        ["model", *(t for _, t in CV_COLUMNS)],
        [[name, *(fmt(result["pooled_common"][k]) for k, _ in CV_COLUMNS)] for name, result in cv.items()],
    )
    return lines + [
        "",
        "File size and latency: fp16 TFLite, through the function's own `imaging.decode` and `model.Predictor` (LiteRT, one "
        "interpreter, one thread), median of warm runs on posters, decode included, on a CPU shared with other jobs.",
    ]


def _v1_split(report: dict) -> list[str]:
    if "v1_split" not in report:
        return []
    v1 = report["v1_split"]
    rows = {
        "predict nothing": v1["predict_nothing"],
        "label prior": v1["label_prior"],
        "seed CNN (as published)": v1["seed_cnn"],
        "v1 (MobileNetV2 fine-tuned, bundled before)": v1["v1"],
        f"{report['shipped']}, out-of-fold": v1["ensemble_oof"],
    }
    lines = [
        "",
        f"## On v1's {v1['posters']} validation posters",
        "",
        "v1 and the seed CNN were trained on v1's single split, so only its validation posters are unseen by them. v1's epochs and "
        "thresholds were chosen on these very posters (optimistic); its and the seed CNN's F1 with cross-fitted thresholds is in the "
        "last two columns. The ensemble's figures are its out-of-fold scores on the same posters.",
        "",
    ]
    return lines + table(
        ["model", *(t for _, t in V1_COLUMNS), "F1 macro, cross-fitted", "F1 micro, cross-fitted"],
        [
            [title, *(fmt(m.get(k)) for k, _ in V1_COLUMNS), fmt(m.get("crossfit_f1_macro")), fmt(m.get("crossfit_f1_micro"))]
            for title, m in rows.items()
        ],
    )


def _parity(report: dict) -> list[str]:
    parity = report["parity"]
    return [
        "",
        f"Parity, Keras (training pipeline) vs fp16 TFLite (the function's decode and loader) on {parity['posters']} posters: "
        f"max |diff| {parity['max_abs_diff']:.4f}, mean |diff| {parity['mean_abs_diff']:.5f}, "
        f"top-3 agreement {parity['top3_agreement']:.2%}, decision agreement {parity['decision_agreement']:.2%} "
        f"(posters with identical genre sets {parity['poster_decision_agreement']:.2%}).",
    ]


def _per_genre(report: dict) -> list[str]:
    cv, data, calib, shipped = report["cv"], report["data"], report["calibration"], report["shipped"]
    ensemble = cv[shipped]["pooled"]
    members = [name for name, result in cv.items() if len(result["members"]) == 1 and name in shipped.split("+")]
    return ["", "## Per genre (out-of-fold)", ""] + table(
        ["genre", "positives", "prior", *(f"AP {m}" for m in members), "AP ensemble", "ROC-AUC ensemble", "threshold", "F1 at threshold"],
        [
            [
                label,
                str(data["positives"][j]),
                f"{data['prior'][j]:.3f}",
                *(fmt(cv[m]["pooled"]["per_label_ap"][j]) for m in members),
                fmt(ensemble["per_label_ap"][j]),
                fmt(ensemble["per_label_auc"][j]),
                f"{calib['thresholds'][label]:.2f}",
                f"{calib['f1_at_threshold'][j]:.3f}",
            ]
            for j, label in enumerate(report["labels"])
        ],
    )


def _costs(report: dict) -> list[str]:
    """The shipped graph's size, its invoke time against other models timed in the same run, the time per stage."""
    shipped = report["shipped"]
    inter, cost = report["costs"].get("interleaved"), report["costs"].get(shipped, {})
    lines = ["", f"Shipped graph: {cost.get('params', '-')} parameters, {fmt(cost.get('size_mb'))} MB."]
    if inter:
        lines += [
            "",
            "Invoke time of the scoring signature (decode excluded), LiteRT, one thread, models interleaved poster by poster in "
            "one run (ratio to the first):",
            "",
        ]
        lines += table(
            ["model", "invoke p50 ms", "ratio", "file MB", "runs"],
            [[name, f"{c['invoke_p50_ms']:.2f}", f"{c['ratio']:.2f}x", f"{c['size_mb']:.2f}", str(c["runs"])] for name, c in inter.items()],
        )
    seconds = report["training"]["seconds"]
    return lines + [
        "",
        "Training time per stage on this machine (seconds; cached stages count their first computation where recorded): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in seconds.items() if isinstance(v, float))
        + "; the features' first extraction per backbone and data folder (in --data order): "
        + "; ".join(f"{name} " + ", ".join("-" if t is None else f"{t:.0f}" for t in by_folder.values())
                    for name, by_folder in seconds.get("features_first_run", {}).items())
        + ".",
    ]


def training_record(recipe: Recipe, dataset: Dataset, epochs: dict, params: int, seconds: dict) -> dict:
    """The manifest's and the report's "training": how the shipped model was made, its recipe file included."""
    m = recipe.model
    return {
        "arch": f"{' + '.join(m.backbones)} (ImageNet backbones, each with its normalisation inside"
        + ("; -mid: its stride-16 activations pooled onto the last map; " if any(map(backbones.tapped, m.backbones)) else "; ")
        + f"frozen), each: global average pool + {recipe.heads.seeds} MLP heads; scores averaged over heads, then over backbones",
        "weights": "random (tests)" if m.weights == "random" else "ImageNet (python -m train.weights)",
        "posters": dataset.counts,
        "selection": f"{recipe.cross_validation.folds}-fold stratified cross-validation (seed {recipe.cross_validation.seed}); "
        "epochs per backbone from the pooled out-of-fold mAP; thresholds calibrated on the ensemble's out-of-fold scores; "
        "heads refit on all posters",
        "recipe": recipe.record(),
        "epochs": epochs,
        "shipped_epochs": {name: epochs[name] for name in m.backbones},
        "head": asdict(recipe.heads),
        "params": params,
        "seconds": seconds,
    }


def assemble(recipe: Recipe, dataset: Dataset, folds: np.ndarray, cv: dict, manifest: dict, calibration: tuple[np.ndarray, np.ndarray],
             costs: dict, train_seconds: float) -> dict:
    """report.json's content: data, training, baselines, every backbone set's CV figures, calibration, costs, parity."""
    labels, names = dataset.labels, dataset.label_names
    chosen, f1_at = calibration
    full = {
        "manifest": {k: manifest[k] for k in ("name", "version", "created", "sha256", "size_bytes")},
        "labels": names,
        "shipped": "+".join(recipe.model.backbones),
        "data": {
            "folders": dataset.folders,
            "min_examples": recipe.data.min_examples,
            "dropped_labels": dataset.dropped_labels,
            "counts": dataset.counts,
            "folds": recipe.cross_validation.folds,
            "fold_seed": recipe.cross_validation.seed,
            "positives": labels.sum(axis=0).astype(int).tolist(),
            "prior": labels.mean(axis=0).tolist(),
        },
        "training": manifest["training"],
        "baselines": _baselines(labels, folds),
        "cv": {name: {**result, "members": name.split("+")} for name, result in cv["sets"].items()},
        "cv_curves": cv["curves"],
        "calibration": {"thresholds": {label: float(t) for label, t in zip(names, chosen, strict=True)}, "f1_at_threshold": f1_at.tolist()},
        "costs": costs,
        "parity": manifest["parity"],
        "train_seconds": train_seconds,
    }
    if recipe.report.v1_report:
        try:
            full["v1_split"] = _compare_v1(ROOT / recipe.report.v1_report, dataset, folds, cv["scores"])
        except DataError as exc:  # other posters than v1's (your own, --limit, more folders): nothing to compare on
            print(f"report: no comparison with v1: {exc}", flush=True)
    return full


def _baselines(labels: np.ndarray, folds: np.ndarray) -> dict:
    """Each fold's prior comes from the other folds' genre frequencies."""
    prior = np.zeros_like(labels)
    for k in range(folds.max() + 1):
        prior[folds == k] = labels[folds != k].mean(axis=0)
    return metrics.baselines(labels, prior)


def _compare_v1(path: Path, dataset: Dataset, folds: np.ndarray, oof: np.ndarray) -> dict:
    """v1 and the seed CNN were scored on v1's 947 validation posters only: compare there.

    Their split is regenerated (stratified_split, v1's seed and fraction) and checked against
    the positives v1 recorded; the ensemble's out-of-fold scores are restricted to it.
    """
    v1 = json.loads(path.read_text())
    if v1["labels"] != dataset.label_names:
        raise DataError(f"{path} was made with other genres; use the same data and data.min_examples")
    _, val = stratified_split(dataset.labels, V1_VAL_FRACTION, v1["data"]["seed"])
    y = dataset.labels[val]
    if len(val) != v1["data"]["val_posters"] or y.sum(axis=0).astype(int).tolist() != v1["data"]["val_positives"]:
        raise DataError(f"cannot regenerate v1's validation split from {path}: train on the data v1 was trained on")
    pred = calibrate.crossfit_decisions(dataset.labels, oof, folds)[val]
    recorded = lambda m: {**m["metrics"], "crossfit_f1_macro": m["crossfit_decisions"]["f1_macro"],  # noqa: E731
                          "crossfit_f1_micro": m["crossfit_decisions"]["f1_micro"], "size_mb": m["size_mb"]}
    return {
        "posters": len(val),
        "v1": recorded(v1["ours"]),
        "seed_cnn": recorded(v1["seed_cnn"]),
        "label_prior": v1["baselines"]["label_prior"],
        "predict_nothing": v1["baselines"]["predict_nothing"],
        "ensemble_oof": metrics.evaluate(y, oof[val], pred),
    }


def main(argv: list[str] | None = None) -> int:
    """Re-render a run's report.md and plots from its report.json (no retraining)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m train.report", description=main.__doc__)
    parser.add_argument("run", type=Path, help="artifact directory with report.json")
    parser.add_argument("--reports-dir", type=Path, default=None, help="also copy report.md, report.json and plots here")
    args = parser.parse_args(argv)
    write(args.run, json.loads((args.run / "report.json").read_text()))
    if args.reports_dir:
        copy(args.run, args.reports_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
