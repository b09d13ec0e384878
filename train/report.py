"""report.json, report.md and plots: every candidate next to the baselines on the same out-of-fold posters."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from postergenre import artifact  # noqa: E402


def _fmt(value) -> str:
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
    if "recipes" in report:
        models[f"{shipped} ({report['recipe']})"] = report["recipes"][report["recipe"]]["result"]["pooled"]["per_label_ap"]
    plot_per_genre_ap(labels, models, np.array(report["data"]["prior"]), out / "per_genre_ap.png")
    calib = report["calibration"]
    plot_thresholds(labels, [calib["thresholds"][label] for label in labels], calib["f1_at_threshold"], out / "thresholds.png")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")


def copy(run: Path, reports_dir: Path) -> None:
    import shutil

    reports_dir.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "report.json", *PLOTS):
        shutil.copy2(run / name, reports_dir / name)


def _table(columns: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *("| " + " | ".join(row) + " |" for row in rows)]


def _pm(result: dict, key: str) -> str:
    return f"{result['folds'][key]['mean']:.3f} ± {result['folds'][key]['sd']:.3f}"


def markdown(report: dict) -> str:
    """report.md: the data, the cross-validation tables, v1's posters (when compared), parity, per genre."""
    sections = (_summary, _cross_validation, _v1_split, _recipes, _parity, _per_genre)
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
    data, training, counts = report["data"], report["training"], report["data"]["counts"]
    seconds = training["seconds"]
    return [
        f"# Model report: {report['manifest']['name']} {report['manifest']['version']}",
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


def _cross_validation(report: dict) -> list[str]:
    cv, costs, shipped = report["cv"], report["costs"], report["shipped"]
    lines = [
        f"## Cross-validation ({report['data']['folds']} folds, every poster scored by heads that never saw it)",
        "",
        "Mean ± sd over folds; decisions (F1) use thresholds calibrated on the other folds' out-of-fold scores. "
        "The epoch count per backbone is the one value chosen on these same scores (a small optimism); the head settings are "
        "given (compare others with --cv-only). Pooled: all out-of-fold scores together. Baselines score each fold with the "
        "other folds' genre frequencies.",
        "",
    ]
    rows = []
    for name in ("predict_nothing", "label_prior"):
        m = report["baselines"][name]
        rows.append([name.replace("_", " "), *(_fmt(m[k]) for k, _ in CV_COLUMNS), *(_fmt(m[k]) for k in POOLED), "-", "-", "-"])
    for name, result in cv.items():
        cost = costs.get(name, {})
        rows.append(
            [
                f"**{name}** (shipped)" if name == shipped else name,
                *(_pm(result, k) for k, _ in CV_COLUMNS),
                *(_fmt(result["pooled"][k]) for k in POOLED),
                *(_fmt(cost.get(k)) for k in ("params", "size_mb", "p50_ms")),
            ]
        )
    lines += _table(
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
    lines += _table(
        ["model", *(t for _, t in CV_COLUMNS)],
        [[name, *(_fmt(result["pooled_common"][k]) for k, _ in CV_COLUMNS)] for name, result in cv.items()],
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
    return lines + _table(
        ["model", *(t for _, t in V1_COLUMNS), "F1 macro, cross-fitted", "F1 micro, cross-fitted"],
        [
            [title, *(_fmt(m.get(k)) for k, _ in V1_COLUMNS), _fmt(m.get("crossfit_f1_macro")), _fmt(m.get("crossfit_f1_micro"))]
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
    ensemble = report["recipes"][report["recipe"]]["result"]["pooled"] if "recipes" in report else cv[shipped]["pooled"]
    members = [name for name, result in cv.items() if len(result["members"]) == 1 and name in shipped.split("+")]
    return ["", "## Per genre (out-of-fold)", ""] + _table(
        ["genre", "positives", "prior", *(f"AP {m}" for m in members), "AP ensemble", "ROC-AUC ensemble", "threshold", "F1 at threshold"],
        [
            [
                label,
                str(data["positives"][j]),
                f"{data['prior'][j]:.3f}",
                *(_fmt(cv[m]["pooled"]["per_label_ap"][j]) for m in members),
                _fmt(ensemble["per_label_ap"][j]),
                _fmt(ensemble["per_label_auc"][j]),
                f"{calib['thresholds'][label]:.2f}",
                f"{calib['f1_at_threshold'][j]:.3f}",
            ]
            for j, label in enumerate(report["labels"])
        ],
    )


def _ci(interval: list[float]) -> str:
    return f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def _signed_ci(interval: list[float]) -> str:
    return f"[{interval[0]:+.3f}, {interval[1]:+.3f}]"


def _recipes(report: dict) -> list[str]:
    """The head recipes compared on the shipped backbones, with bootstrap intervals against the v2 recipe."""
    if "recipes" not in report:
        return []
    recipes, reference, shipped = report["recipes"], report["reference_recipe"], report["shipped"]
    lines = [
        "",
        f"## Head recipes on {shipped} ({report['data']['folds']}-fold CV, same folds)",
        "",
        f"Every recipe trains the same heads (pooled features -> MLP) on the same backbones, so the serving graph, parameters, file "
        f"size and invoke time are the shipped model's (below); they differ in what the heads are trained on, and an adapted top's "
        f"low-rank update is merged into the backbone's last convolution (train/adapt.py). The first row is v2's "
        f"recipe. Pooled figures with 95% bootstrap intervals over posters ({next(iter(recipes.values()))['bootstrap']['resamples']} "
        f"resamples); the difference to **{reference}** is paired (same resamples), decisions are the cross-fitted ones. Distillation "
        "targets for a fold's training posters come from teacher heads that saw neither that fold nor the poster's own fold.",
        "",
    ]
    rows = []
    for name, r in recipes.items():
        spec, boot, pooled = r["recipe"], r["bootstrap"], r["result"]["pooled"]
        head = spec["head"]
        settings = [f"{2 + spec['augmented_views']} views"]
        if head["gamma_neg"] or head["clip"]:
            settings.append(f"ASL gamma- {head['gamma_neg']:g}, clip {head['clip']:g}")
        if head["pos_weight_power"]:
            settings.append(f"pos. weight power {head['pos_weight_power']:g}")
        if spec["distill"]:
            settings.append(f"distill {spec['distill']:g}")
        if spec.get("adapt", {}).get("rank"):
            settings.append(f"top adapted, rank {spec['adapt']['rank']} (scale {spec['adapt']['scale']:g})")
        diff = boot.get("difference")
        rows.append(
            [
                f"**{name}** (shipped)" if name == report["recipe"] else name,
                ", ".join(settings),
                *(_pm(r["result"], k) for k, _ in CV_COLUMNS),
                f"{pooled['mAP_macro']:.3f} {_ci(boot['interval']['mAP_macro'])}",
                f"{pooled['roc_auc_macro']:.3f}",
                f"{pooled['one_error']:.3f} {_ci(boot['interval']['one_error'])}",
                f"{pooled['f1_macro']:.3f} / {pooled['f1_micro']:.3f}",
                "-" if diff is None else _signed_ci(diff["mAP_macro"]),
                "-" if diff is None else _signed_ci(diff["roc_auc_macro"]),
                "-" if diff is None else _signed_ci(diff["one_error"]),
                "-" if diff is None else _signed_ci(diff["f1_macro"]),
                ", ".join(f"{e}" for e in r["epochs"].values()),
                _fmt(r.get("cv_seconds")),
            ]
        )
    lines += _table(
        [
            "recipe",
            "trained on",
            *(t for _, t in CV_COLUMNS),
            "pooled mAP [95%]",
            "pooled ROC-AUC",
            "pooled one-error [95%]",
            "pooled F1 macro / micro",
            f"Δ mAP vs {reference}",
            "Δ ROC-AUC",
            "Δ one-error",
            "Δ F1 macro",
            "epochs per backbone",
            "CV seconds",
        ],
        rows,
    )
    inter = report["costs"].get("interleaved")
    cost = report["costs"].get(shipped, {})
    lines += ["", f"Shipped graph: {cost.get('params', '-')} parameters, {_fmt(cost.get('size_mb'))} MB."]
    if inter:
        lines += [
            "",
            "Invoke time of the scoring signature (decode excluded), LiteRT, one thread, models interleaved poster by poster in "
            "one run (ratio to the first):",
            "",
        ]
        lines += _table(
            ["model", "invoke p50 ms", "ratio", "file MB", "runs"],
            [[name, f"{c['invoke_p50_ms']:.2f}", f"{c['ratio']:.2f}x", f"{c['size_mb']:.2f}", str(c["runs"])] for name, c in inter.items()],
        )
    seconds = report["training"]["seconds"]
    lines += [
        "",
        "Training time per step on this machine (seconds; cached steps count their first computation where recorded): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in seconds.items())
        + ".",
    ]
    return lines


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
