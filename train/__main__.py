"""python -m train --data DIR --out DIR: posters in, calibrated fp16 TFLite artifact + report out."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from train import calibrate, data, export, imaging, metrics, report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder: train.csv + Images/<Id>.jpg")
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to create")
    parser.add_argument("--arch", choices=("mobilenet", "seed-cnn"), default="mobilenet")
    parser.add_argument("--weights", default="imagenet", help="'imagenet', 'none' or a path to MobileNetV2 no-top .h5 weights")
    parser.add_argument("--height", type=int, default=336)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-examples", type=int, default=25, help="genres with fewer positives are dropped")
    parser.add_argument("--head-epochs", type=int, default=8)
    parser.add_argument("--finetune-epochs", type=int, default=16)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--finetune-lr", type=float, default=1e-4)
    parser.add_argument("--views", type=int, default=6, help="cached views per training poster (1 plain, 1 flipped, rest augmented)")
    parser.add_argument("--dropout", type=float, default=0.4)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--max-pos-weight", type=float, default=1.0, help="cap of the per-genre positive weights (1 = plain BCE)")
    parser.add_argument("--rank-weight", type=float, default=1.0, help="weight of the listwise softmax ranking term")
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse cached backbone features between runs")
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed-epochs", type=int, default=5, help="epochs for --arch seed-cnn (published: 5)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N posters (smoke runs)")
    parser.add_argument("--compare", type=Path, default=None, help="a --arch seed-cnn output dir to include in the report")
    parser.add_argument("--name", default="postergenre-mobilenetv2")
    parser.add_argument("--version", default=None, help="artifact version (default: UTC timestamp)")
    parser.add_argument("--reports-dir", type=Path, default=None, help="also copy report.md and plots here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.arch == "seed-cnn":
        run_seed(args)
    else:
        run_ours(args)
    return 0


def _split(args: argparse.Namespace, spec: imaging.InputSpec) -> tuple[data.Dataset, np.ndarray, np.ndarray]:
    dataset = data.load(args.data, spec, args.min_examples, args.limit)
    train_idx, val_idx = data.stratified_split(dataset.labels, args.val_fraction, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {"seed": args.seed, "train": [dataset.ids[i] for i in train_idx], "validation": [dataset.ids[i] for i in val_idx]}
    (args.out / "splits.json").write_text(json.dumps(splits) + "\n", encoding="utf-8")
    print(f"posters: {dataset.counts}; train {len(train_idx)}, validation {len(val_idx)}; dropped genres {dataset.dropped_labels}", flush=True)
    return dataset, train_idx, val_idx


def _scored(y_val: np.ndarray, scores: np.ndarray, labels: list[str], seed: int) -> dict:
    chosen, f1 = calibrate.thresholds(y_val, scores)
    return {
        "metrics": metrics.evaluate(y_val, scores, metrics.decide(scores, chosen)),
        "crossfit_decisions": metrics.evaluate(y_val, scores, calibrate.crossfit_decisions(y_val, scores, seed)),
        "calibration": {"thresholds": {label: float(t) for label, t in zip(labels, chosen)}, "f1_at_threshold": f1.tolist()},
        "thresholds_array": chosen,
    }


def run_seed(args: argparse.Namespace) -> None:
    """The original project's CNN, trained as published, scored on the same validation posters."""
    from train import fit, model

    dataset, train_idx, val_idx = _split(args, imaging.InputSpec(350, 350, "bilinear"))
    net = model.seed_cnn(len(dataset.label_names))
    history = fit.fit_seed_cnn(net, dataset.images[train_idx], dataset.labels[train_idx], epochs=args.seed_epochs, seed=args.seed)
    scores = fit.predict(net, dataset.images[val_idx].astype(np.float32), batch_size=32)
    result = _scored(dataset.labels[val_idx], scores, dataset.label_names, args.seed)
    result.pop("thresholds_array")
    out = {
        "labels": dataset.label_names,
        "params": int(net.count_params()),
        "size_mb": round(net.count_params() * 2 / 1e6, 1),  # fp16, as the seed project shipped it
        "train_seconds": round(history.seconds, 1),
        "epochs": args.seed_epochs,
        "history": history.epochs,
        **result,
    }
    (args.out / "report.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: out["metrics"][k] for k in ("mAP_macro", "roc_auc_macro", "one_error", "f1_macro", "f1_micro")}), flush=True)


def run_ours(args: argparse.Namespace) -> None:
    import keras

    from train import explain, fit, model

    keras.utils.set_random_seed(args.seed)  # the head's (and, without weights, the backbone's) initial weights

    spec = imaging.InputSpec(args.height, args.width, "bilinear")
    dataset, train_idx, val_idx = _split(args, spec)
    labels = dataset.label_names
    y_train, y_val = dataset.labels[train_idx], dataset.labels[val_idx]
    net = model.mobilenet(spec.height, spec.width, len(labels), args.weights, dropout=args.dropout)
    if args.weights == "none":
        model.calibrate_batchnorm(net, dataset.images[train_idx[:256]].astype(np.float32))
    options = fit.FitOptions(
        head_epochs=args.head_epochs,
        finetune_epochs=args.finetune_epochs,
        batch_size=args.batch_size,
        head_lr=args.head_lr,
        finetune_lr=args.finetune_lr,
        views=args.views,
        patience=args.patience,
        weight_decay=args.weight_decay,
        rank_weight=args.rank_weight,
        max_pos_weight=args.max_pos_weight,
        seed=args.seed,
    )
    cache_key = {"data": str(args.data.resolve()), "ids": dataset.ids, "train": train_idx.tolist(), "size": [spec.height, spec.width], "weights": str(args.weights)}
    history = fit.fit_mobilenet(net, dataset.images[train_idx], y_train, dataset.images[val_idx], y_val, options, args.cache_dir, cache_key)
    scores = fit.predict(net, dataset.images[val_idx].astype(np.float32))
    np.save(args.out / "val_scores.npy", scores)  # for re-analysis without retraining
    result = _scored(y_val, scores, labels, args.seed)
    chosen = result.pop("thresholds_array")

    manifest = export.base_manifest(args.name, args.version, labels, chosen, spec)
    manifest.update(explain.manifest_entry(net))  # the explanation output (train/explain.py)
    tflite = export.to_tflite(net, spec.height, spec.width, explanations=True)
    manifest = export.write_artifact(args.out, tflite, manifest)
    posters = [(args.data / "Images" / f"{dataset.ids[i]}.jpg").read_bytes() for i in val_idx]
    parity = export.parity(net, args.out, posters, dataset.images[val_idx])
    baselines = metrics.baselines(y_train, y_val)
    headline = ("mAP_macro", "mAP_micro", "roc_auc_macro", "one_error", "f1_macro", "f1_micro", "f1_samples", "precision_at_3")
    manifest = export.write_artifact(
        args.out,
        tflite,
        {
            **manifest,
            "label_rule": f"genres with fewer than {args.min_examples} positive posters in the dataset are not predicted",
            "dropped_labels": dataset.dropped_labels,
            "training": {
                "arch": "MobileNetV2 1.0 (ImageNet) + GAP + dropout + sigmoid dense; blocks 13-16 fine-tuned, batch-norm frozen",
                "imbalance": "positive weights sqrt(neg/pos) capped, then removed from the output bias (prior correction)",
                "weights": "imagenet" if args.weights == "imagenet" else Path(args.weights).name,
                "posters": dataset.counts,
                "train_posters": len(train_idx),
                "val_posters": len(val_idx),
                "split_seed": args.seed,
                "options": asdict(options),
                "best_epoch": history.best_epoch,
                "train_seconds": round(history.seconds, 1),
                "params": int(net.count_params()),
            },
            "metrics": {
                "validation": {k: result["metrics"][k] for k in headline},
                "validation_crossfit_decisions": {k: result["crossfit_decisions"][k] for k in ("f1_macro", "f1_micro", "f1_samples")},
                "label_prior": {k: baselines["label_prior"][k] for k in headline},
            },
            "parity": parity,
        },
    )
    compare = {}
    if args.compare and (args.compare / "report.json").exists():
        seed = json.loads((args.compare / "report.json").read_text())
        if seed["labels"] == labels:
            compare["seed_cnn"] = seed
    full = {
        "manifest": {k: manifest[k] for k in ("name", "version", "created", "sha256", "size_bytes")},
        "labels": labels,
        "data": {
            "seed": args.seed,
            "min_examples": args.min_examples,
            "dropped_labels": dataset.dropped_labels,
            "counts": dataset.counts,
            "train_posters": len(train_idx),
            "val_posters": len(val_idx),
            "val_positives": y_val.sum(axis=0).astype(int).tolist(),
            "val_prior": y_val.mean(axis=0).tolist(),
        },
        "baselines": baselines,
        "ours": {
            **result,
            "history": history.epochs,
            "best_epoch": history.best_epoch,
            "params": int(net.count_params()),
            "size_mb": round(len(tflite) / 1e6, 2),
            "train_seconds": round(history.seconds, 1),
        },
        "parity": parity,
        **compare,
    }
    (args.out / "report.json").write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    report.main([str(args.out), *(["--reports-dir", str(args.reports_dir)] if args.reports_dir else [])])
    print(json.dumps({"artifact": str(args.out), **manifest["metrics"]["validation"], "parity": parity}, indent=2), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
