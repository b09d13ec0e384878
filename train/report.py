"""report.json, report.md and plots: our model next to the baselines on the same validation posters."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

HEADLINE = [
    ("mAP_macro", "mAP (macro)", "higher"),
    ("mAP_micro", "mAP (micro)", "higher"),
    ("roc_auc_macro", "ROC-AUC (macro)", "higher"),
    ("one_error", "one-error", "lower"),
    ("coverage", "coverage", "lower"),
    ("ranking_loss", "ranking loss", "lower"),
    ("lrap", "LRAP", "higher"),
    ("precision_at_3", "precision@3", "higher"),
    ("f1_micro", "F1 micro", "higher"),
    ("f1_macro", "F1 macro", "higher"),
    ("f1_samples", "F1 samples", "higher"),
    ("hamming_loss", "Hamming loss", "lower"),
    ("binary_accuracy", "binary accuracy", "higher"),
]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def plot_learning_curves(history: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    left.plot(epochs, [h["val_loss"] for h in history], label="validation loss")
    right.plot(epochs, [h["val_mAP"] for h in history], color="tab:green", label="validation mAP (macro)")
    for axis in (left, right):
        switch = next((h["epoch"] for h in history if h["stage"] == "finetune"), None)
        if switch:
            axis.axvline(switch - 0.5, color="grey", linestyle=":", label="fine-tuning starts")
        axis.set_xlabel("epoch")
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
    axis.set_ylabel("average precision (validation)")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_thresholds(labels: list[str], thresholds: list[float], f1: list[float], path: Path) -> None:
    fig, axis = plt.subplots(figsize=(11, 3.6))
    x = np.arange(len(labels))
    axis.bar(x - 0.2, thresholds, 0.4, label="threshold")
    axis.bar(x + 0.2, f1, 0.4, label="validation F1 at threshold")
    axis.set_xticks(x, labels, rotation=60, ha="right")
    axis.set_ylim(0, 1)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(out: Path, report: dict) -> None:
    """Write report.json, report.md and the three plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    labels = report["labels"]
    plot_learning_curves(report["ours"]["history"], out / "learning_curves.png")
    models = {"ours": report["ours"]["metrics"]["per_label_ap"]}
    if "seed_cnn" in report:
        models = {"seed CNN (as published)": report["seed_cnn"]["metrics"]["per_label_ap"], **models}
    plot_per_genre_ap(labels, models, np.array(report["data"]["val_prior"]), out / "per_genre_ap.png")
    calib = report["ours"]["calibration"]
    plot_thresholds(labels, [calib["thresholds"][label] for label in labels], calib["f1_at_threshold"], out / "thresholds.png")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")


def markdown(report: dict) -> str:
    columns = {"predict nothing": report["baselines"]["predict_nothing"], "label prior": report["baselines"]["label_prior"]}
    if "seed_cnn" in report:
        columns["seed CNN (as published)"] = report["seed_cnn"]["metrics"]
    columns["ours"] = report["ours"]["metrics"]
    columns["ours, cross-fitted thresholds"] = report["ours"]["crossfit_decisions"]
    data, ours = report["data"], report["ours"]
    lines = [
        f"# Model report: {report['manifest']['name']} {report['manifest']['version']}",
        "",
        f"Validation: {data['val_posters']} posters never used for fitting (seeded stratified split, seed {data['seed']}); "
        f"training: {data['train_posters']}. Genres: {len(report['labels'])} kept, dropped (fewer than "
        f"{data['min_examples']} examples): {data['dropped_labels'] or 'none'}. Skipped images: {data['counts']['skipped_missing_or_corrupt']}; "
        f"duplicate rows ignored: {data['counts']['duplicate_rows']}.",
        "",
        "Early stopping and thresholds use the validation split, so 'ours' is slightly optimistic; the cross-fitted "
        "column chooses each poster's thresholds on the other half of validation (the honest decision figure).",
        "",
        "| metric | better | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for key, title, better in HEADLINE:
        lines.append(f"| {title} | {better} | " + " | ".join(_fmt(m.get(key)) for m in columns.values()) + " |")
    facts = [("parameters", "params"), ("model file (MB)", "size_mb"), ("training time (s, this machine)", "train_seconds")]
    lines += ["", "| model | " + " | ".join(title for title, _ in facts) + " |", "|---|" + "---|" * len(facts)]
    if "seed_cnn" in report:
        lines.append("| seed CNN (as published) | " + " | ".join(_fmt(report["seed_cnn"].get(k)) for _, k in facts) + " |")
    lines.append("| ours | " + " | ".join(_fmt(ours.get(k)) for _, k in facts) + " |")
    parity = report["parity"]
    lines += [
        "",
        f"Parity, Keras (training pipeline) vs fp16 TFLite (the function's decode and loader) on {parity['posters']} validation posters: "
        f"max |diff| {parity['max_abs_diff']:.4f}, mean |diff| {parity['mean_abs_diff']:.5f}, top-3 agreement {parity['top3_agreement']:.2%}, "
        f"decision agreement {parity['decision_agreement']:.2%} (posters with identical genre sets {parity['poster_decision_agreement']:.2%}).",
        "",
        "## Per genre (validation)",
        "",
        "| genre | val positives | prior | AP | ROC-AUC | threshold | F1 at threshold |",
        "|---|---|---|---|---|---|---|",
    ]
    calib = ours["calibration"]
    for j, label in enumerate(report["labels"]):
        lines.append(
            f"| {label} | {data['val_positives'][j]} | {data['val_prior'][j]:.3f} | {_fmt(ours['metrics']['per_label_ap'][j])} | "
            f"{_fmt(ours['metrics']['per_label_auc'][j])} | {calib['thresholds'][label]:.2f} | {calib['f1_at_threshold'][j]:.3f} |"
        )
    lines += ["", "![learning curves](learning_curves.png)", "", "![per-genre AP](per_genre_ap.png)", "", "![thresholds](thresholds.png)", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Re-render a run's report, e.g. to add a seed-CNN run that finished later (no retraining)."""
    import argparse
    import shutil

    parser = argparse.ArgumentParser(prog="python -m train.report", description=main.__doc__)
    parser.add_argument("run", type=Path, help="artifact directory with report.json")
    parser.add_argument("--compare", type=Path, default=None, help="a --arch seed-cnn output directory")
    parser.add_argument("--reports-dir", type=Path, default=None, help="also copy report.md, report.json and plots here")
    args = parser.parse_args(argv)
    full = json.loads((args.run / "report.json").read_text())
    if args.compare:
        seed = json.loads((args.compare / "report.json").read_text())
        if seed["labels"] != full["labels"]:
            raise SystemExit("the seed-CNN run used other labels; train it on the same data and --min-examples")
        full["seed_cnn"] = seed
    write(args.run, full)
    if args.reports_dir:
        args.reports_dir.mkdir(parents=True, exist_ok=True)
        for name in ("report.md", "report.json", "learning_curves.png", "per_genre_ap.png", "thresholds.png"):
            shutil.copy2(args.run / name, args.reports_dir / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
