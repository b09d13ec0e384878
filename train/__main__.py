"""python -m train --data DIR --out DIR: posters in, calibrated fp16 TFLite artifact + report out."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from postergenre import artifact
from train import calibrate, data, metrics, quiet, report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder: train.csv + Images/<Id>.jpg")
    parser.add_argument("--out", type=Path, required=True, help="artifact directory to create")
    parser.add_argument("--arch", choices=("ensemble", "seed-cnn"), default="ensemble")
    parser.add_argument("--weights", default="build/weights", help="folder made by `make weights`, or 'none' (random weights: tests)")
    parser.add_argument(
        "--backbones",
        default="mobilenetv2-mid,lite0-mid",
        help="the ensemble's members: mobilenetv2, lite0, lite1, lite2 (tests: tiny_a, tiny_b), each optionally with -mid (its "
        "stride-16 activations added to the last map: train/backbones.py)",
    )
    parser.add_argument("--candidates", default="", help="more backbones cross-validated for the report only, e.g. lite0,lite1")
    parser.add_argument("--height", type=int, default=336)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--folds", type=int, default=5, help="k of the stratified k-fold cross-validation")
    parser.add_argument("--seed", type=int, default=0, help="folds, head initialisation (seeds seed..seed+head_seeds-1)")
    parser.add_argument("--min-examples", type=int, default=25, help="genres with fewer positives are dropped")
    heads_group = parser.add_argument_group("heads", "default: train/heads.py HeadOptions")
    heads_group.add_argument("--hidden", type=int, help="head hidden units (0: linear head)")
    heads_group.add_argument("--dropout", type=float)
    heads_group.add_argument("--input-dropout", type=float)
    heads_group.add_argument("--max-epochs", type=int, help="length of the cosine schedule; CV picks where to stop")
    heads_group.add_argument("--head-lr", type=float)
    heads_group.add_argument("--weight-decay", type=float)
    heads_group.add_argument("--batch-size", type=int)
    heads_group.add_argument("--rank-weight", type=float, help="weight of the listwise softmax ranking term")
    heads_group.add_argument("--head-seeds", type=int, help="heads per backbone, scores averaged")
    heads_group.add_argument("--gamma-neg", type=float, help="asymmetric loss: focusing power on negatives (0: BCE)")
    heads_group.add_argument("--clip", type=float, help="asymmetric loss: negatives' scores shifted down by this")
    heads_group.add_argument("--pos-weight-power", type=float, help="positives weighted (negatives/positives) ** this per genre")
    parser.add_argument(
        "--augmented-views", type=int, default=0, help="augmented views per poster (crop, scale, colour) next to plain and flipped"
    )
    parser.add_argument(
        "--distill", type=float, default=0.0, help="weight of the teacher's out-of-fold scores in the targets (train/distill.py)"
    )
    parser.add_argument(
        "--adapt-rank", type=int, default=0, help="rank of the update to each backbone's last conv, trained with the heads (0: frozen)"
    )
    parser.add_argument(
        "--teacher-seeds", type=int, default=1, help="head seeds of the teacher's per-fold-pair models (cross-validation only)"
    )
    parser.add_argument(
        "--variants",
        default="",
        help="more head recipes cross-validated on the shipped backbones, 'name:key=value,...;name2:...' (keys: "
        "augmented_views, distill, adapt_rank, adapt_scale, adapt_epochs, adapt_lr, HeadOptions fields); the v2 recipe is always "
        "compared",
    )
    parser.add_argument("--recipe", default=None, help="ship this recipe from --variants instead of the one the options above describe")
    parser.add_argument(
        "--latency-compare",
        default="",
        help="name=artifact_dir,...: models timed interleaved with the new one (invoke only), e.g. v1=build/v1",
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("build/cache"), help="backbone features and CV scores reused between runs")
    parser.add_argument("--cv-only", action="store_true", help="stop after cross-validation (to compare backbones)")
    parser.add_argument("--parity-posters", type=int, default=200)
    parser.add_argument("--seed-epochs", type=int, default=5, help="epochs for --arch seed-cnn (published: 5)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.15, help="validation share of v1's single split (--arch seed-cnn, --compare)"
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N posters (smoke runs)")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="report.json of v1 (single split, with its seed-CNN run): compared on its validation posters",
    )
    parser.add_argument("--name", default="postergenre-ensemble")
    parser.add_argument("--version", default=None, help="artifact version (default: UTC timestamp)")
    parser.add_argument("--reports-dir", type=Path, default=None, help="also copy report.md, report.json and plots here")
    args = parser.parse_args(argv)
    args.backbones = [b for b in args.backbones.split(",") if b]
    args.candidates = [b for b in args.candidates.split(",") if b and b not in args.backbones]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if args.arch == "seed-cnn":
            run_seed(args)
        else:
            run_ours(args)
    except data.DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _split(args: argparse.Namespace, spec: artifact.InputSpec) -> tuple[data.Dataset, np.ndarray, np.ndarray]:
    dataset = data.load(args.data, spec, args.min_examples, args.limit)
    train_idx, val_idx = data.stratified_split(dataset.labels, args.val_fraction, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    splits = {"seed": args.seed, "train": [dataset.ids[i] for i in train_idx], "validation": [dataset.ids[i] for i in val_idx]}
    (args.out / "splits.json").write_text(json.dumps(splits) + "\n", encoding="utf-8")
    print(
        f"posters: {dataset.counts}; train {len(train_idx)}, validation {len(val_idx)}; dropped genres {dataset.dropped_labels}", flush=True
    )
    return dataset, train_idx, val_idx


def _scored(y_val: np.ndarray, scores: np.ndarray, labels: list[str], seed: int) -> dict:
    chosen, f1 = calibrate.thresholds(y_val, scores)
    return {
        "metrics": metrics.evaluate(y_val, scores, metrics.decide(scores, chosen)),
        "crossfit_decisions": metrics.evaluate(
            y_val, scores, calibrate.crossfit_decisions(y_val, scores, np.random.default_rng(seed).permutation(len(y_val)) % 2)
        ),
        "calibration": {"thresholds": {label: float(t) for label, t in zip(labels, chosen, strict=True)}, "f1_at_threshold": f1.tolist()},
        "thresholds_array": chosen,
    }


def run_seed(args: argparse.Namespace) -> None:
    """The original project's CNN, trained as published, scored on the same validation posters."""
    from train import fit, model

    dataset, train_idx, val_idx = _split(args, artifact.InputSpec(350, 350, "bilinear"))
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
    print(json.dumps({k: out["metrics"][k] for k in artifact.HEADLINE_KEYS}), flush=True)


def _features(args: argparse.Namespace, dataset: data.Dataset) -> tuple[dict, dict, dict]:
    """Every backbone (shipped and candidates), its pooled features and their cache key."""
    import keras

    from train import backbones, features

    weights = None if args.weights == "none" else Path(args.weights)
    nets, feats, keys = {}, {}, {}
    for i, name in enumerate(args.backbones + args.candidates):
        keras.utils.set_random_seed(args.seed + i)  # random weights (tests) are reproducible too
        with quiet.native_stderr():
            nets[name] = backbones.build(name, args.height, args.width, weights)
        if weights is None:
            backbones.calibrate_batchnorm(nets[name], dataset.images[: min(256, len(dataset.images))])
        backbones.calibrate_mid(nets[name], dataset.images)
        augmented = args.max_augmented if name in args.backbones else 0
        feats[name], keys[name] = features.backbone_features(
            nets[name], name, weights, dataset.images, dataset.ids, args.cache_dir, augmented
        )
    return nets, feats, keys


def _tops(args: argparse.Namespace, nets: dict, dataset: data.Dataset) -> dict:
    """What adapting each shipped backbone's top needs (train/adapt.py), made once for every recipe and the refit."""
    from train import adapt

    weights = None if args.weights == "none" else Path(args.weights)
    return {name: adapt.prepare(nets[name], name, weights, dataset.images, dataset.ids, args.cache_dir) for name in args.backbones}


def _cross_validate(args, dataset, feats, keys, options) -> dict:
    """OOF scores per backbone at its CV-chosen epoch, and every candidate set's CV figures."""
    from train import crossval

    labels = dataset.labels
    folds = data.stratified_folds(labels, args.folds, args.seed)
    curves, epochs, oof = {}, {}, {}
    for name, feat in feats.items():
        key = None if keys[name] is None else {"features": keys[name], "fold_seed": args.seed, "folds": args.folds}
        curve, _ = crossval.oof_scores(feat[:2], labels, folds, options, name, args.cache_dir, key)
        epochs[name], curves[name] = crossval.best_epoch(curve, labels)
        oof[name] = curve[epochs[name] - 1]
    sets = {}
    for combo in crossval.candidates(list(feats)):
        scores = np.mean([oof[n] for n in combo], axis=0)
        name = "+".join(combo)
        sets[name] = crossval.evaluate(labels, scores, folds)
        f = sets[name]["folds"]
        print(f"CV {name:32s} " + "  ".join(f"{k} {f[k]['mean']:.3f}+/-{f[k]['sd']:.3f}" for k in artifact.HEADLINE_KEYS), flush=True)
    return {"folds": folds, "epochs": epochs, "curves": curves, "oof": oof, "sets": sets}


HEAD_FLAGS = {
    "hidden": "hidden",
    "input_dropout": "input_dropout",
    "dropout": "dropout",
    "max_epochs": "max_epochs",
    "head_lr": "lr",
    "weight_decay": "weight_decay",
    "batch_size": "batch_size",
    "rank_weight": "rank_weight",
    "head_seeds": "seeds",
    "gamma_neg": "gamma_neg",
    "clip": "clip",
    "pos_weight_power": "pos_weight_power",
}


class _Clock:
    """Seconds per training phase, for the manifest's record."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.phases: dict[str, float] = {}

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(now - self.last, 1)
        self.last = now

    def total(self) -> float:
        return round(time.monotonic() - self.start, 1)


def _recipe_cv(args, labels: np.ndarray, feats: dict, keys: dict, recipe, cv: dict, pairs: np.ndarray | None, tops: dict) -> dict:
    """One head recipe on the shipped backbones: per-backbone OOF curves and epochs, the ensemble's CV figures and seconds."""
    from train import adapt, crossval, distill, features

    folds = cv["folds"]
    targets = None
    if recipe.distill:
        targets = np.stack([distill.targets(labels, pairs[k], recipe.distill) for k in range(args.folds)])
    curves, epochs, oof, seconds = {}, {}, {}, 0.0
    for name in args.backbones:
        feat = feats[name][: 2 + recipe.augmented_views]
        key = features.views_key(keys[name], recipe.augmented_views)
        key = None if key is None else {"features": key, "fold_seed": args.seed, "folds": args.folds}
        if recipe.adapt.rank:
            curve, took = adapt.oof_scores(
                tops[name], feat, labels, folds, recipe.options, cv["epochs"][name], recipe.adapt, name, args.cache_dir, key, targets
            )
        else:
            curve, took = crossval.oof_scores(feat, labels, folds, recipe.options, name, args.cache_dir, key, targets)
        seconds += took or 0.0
        epochs[name], curves[name] = crossval.best_epoch(curve, labels)
        oof[name] = curve[epochs[name] - 1]
    scores = np.mean([oof[n] for n in args.backbones], axis=0)
    result = crossval.evaluate(labels, scores, folds)
    f = result["folds"]
    print(f"recipe {recipe.name:24s} " + "  ".join(f"{k} {f[k]['mean']:.3f}+/-{f[k]['sd']:.3f}" for k in crossval.HEADLINE), flush=True)
    return {
        "recipe": recipe.describe(),
        "epochs": epochs,
        "curves": curves,
        "oof": oof,
        "scores": scores,
        "result": result,
        "cv_seconds": round(seconds, 1),
    }


def _recipes(args, options) -> tuple[list, object, object]:
    """(every recipe to cross-validate, the shipped one, the v2 recipe that is also the teacher's)."""
    from train import adapt, backbones, variants

    cli = variants.Recipe("cli", options, args.augmented_views, args.distill, adapt.AdaptOptions(rank=args.adapt_rank))
    base = variants.teacher(cli)
    listed = variants.parse(args.variants, base)
    if args.recipe is not None:
        shipped = next((r for r in listed if r.name == args.recipe), None)
        if shipped is None:
            raise data.DataError(f"--recipe {args.recipe!r} is not one of --variants ({', '.join(r.name for r in listed)})")
    else:
        same = lambda r: (r.options, r.augmented_views, r.distill, r.adapt) == (cli.options, cli.augmented_views, cli.distill, cli.adapt)  # noqa: E731
        shipped = next((r for r in [base, *listed] if same(r)), cli)
    everything = [base, *(r for r in listed if r.name != base.name)]
    if shipped not in everything:
        everything.append(shipped)
    tapped = [b for b in args.backbones if backbones.tapped(b)]
    for r in everything:
        if r.adapt.rank and r.augmented_views:
            raise data.DataError(f"recipe {r.name!r}: an adapted top is trained on the plain and flipped views only (augmented_views 0)")
        if r.adapt.rank and tapped:
            raise data.DataError(f"recipe {r.name!r}: an adapted top needs backbones without the -mid tap (not {', '.join(tapped)})")
    return everything, shipped, base


def run_ours(args: argparse.Namespace) -> None:
    """Features -> cross-validation (backbones, then head recipes) -> refit -> one artifact (model, manifest) -> report."""
    with quiet.native_stderr():  # TensorFlow's import-time notices
        from train import export, heads

    clock = _Clock()
    spec = artifact.InputSpec(args.height, args.width, "bilinear")
    dataset = _load(args, spec)
    options = heads.HeadOptions(**{field: getattr(args, flag) for flag, field in HEAD_FLAGS.items() if getattr(args, flag) is not None})
    recipes, recipe, base = _recipes(args, options)
    args.max_augmented = max(r.augmented_views for r in recipes)
    nets, feats, keys = _features(args, dataset)
    tops = _tops(args, nets, dataset) if any(r.adapt.rank for r in recipes) else {}
    clock.lap("features")
    cv = _cross_validate(args, dataset, feats, keys, base.options)  # the v2 recipe on every backbone: candidates and teacher
    clock.lap("cross_validation")
    results, teacher_seconds = _cross_validate_recipes(args, dataset.labels, feats, keys, recipes, base, cv, tops)
    clock.phases["teacher_pairs"] = round(teacher_seconds or 0.0, 1)
    clock.lap("recipes")
    summary = {name: {k: v for k, v in r.items() if k not in ("oof", "scores")} for name, r in results.items()}
    if args.cv_only:
        cv_json = {"labels": dataset.label_names, "epochs": cv["epochs"], "sets": cv["sets"], "recipes": summary}
        (args.out / "cv.json").write_text(json.dumps(cv_json, indent=2) + "\n", encoding="utf-8")
        return
    ours = results[recipe.name]
    chosen, f1_at = calibrate.thresholds(dataset.labels, ours["scores"])  # out-of-fold scores of the shipped ensemble
    goal = _refit_targets(dataset.labels, recipe, cv, feats)
    members, net = _refit(args, nets, feats, tops, goal, recipe, ours["epochs"], cv["epochs"])
    clock.lap("refit")

    tflite, manifest = _export(args, net, spec, dataset.label_names, chosen)
    posters, pixels = _probe(args, dataset)
    parity = export.parity(net, manifest, tflite, posters, pixels)
    costs = _costs(args, spec, members, dataset.label_names, chosen, posters[:10])
    costs["+".join(args.backbones)] = {**export.latency(manifest, tflite, posters[:10]), "params": int(net.count_params())}
    training = _training_record(args, dataset, recipe, list(feats), cv["epochs"], ours["epochs"], int(net.count_params()), clock.phases)
    manifest = artifact.write(
        args.out,
        tflite,
        {
            **manifest,
            "label_rule": f"genres with fewer than {args.min_examples} positive posters in the dataset are not predicted",
            "dropped_labels": dataset.dropped_labels,
            "training": training,
            "metrics": artifact.metrics_entry(ours["result"]["folds"], ours["result"]["pooled"]),
            "parity": parity,
        },
    )
    compare = dict(item.split("=", 1) for item in args.latency_compare.split(",") if item)
    if compare:  # timed against the artifact just written
        costs["interleaved"] = export.interleaved_latency(
            {**{k: Path(v) for k, v in compare.items()}, "this model": args.out}, posters[:10]
        )
    recipes_report = {
        "cv_curves": {**cv["curves"], **{f"{n} ({recipe.name})": c for n, c in ours["curves"].items()}},
        "recipes": summary,
        "recipe": recipe.name,
        "reference_recipe": base.name,
    }
    _write_report(args, dataset, cv, manifest, training, recipes_report, chosen, f1_at, costs, ours["scores"], clock.total())
    print(json.dumps({"artifact": str(args.out), **manifest["metrics"], "parity": parity, "costs": costs}, indent=2), flush=True)


def _cross_validate_recipes(args, labels: np.ndarray, feats: dict, keys: dict, recipes: list, base, cv: dict, tops: dict
                            ) -> tuple[dict, float]:
    """Every head recipe cross-validated on the shipped backbones (distillation with per-fold-pair
    teachers when a recipe asks for it), with paired bootstrap intervals; and the teachers' seconds."""
    from train import distill

    pairs, teacher_seconds = None, 0.0
    if any(r.distill for r in recipes):
        fold_keys = {n: None if k is None else {"features": k, "fold_seed": args.seed, "folds": args.folds} for n, k in keys.items()}
        teacher = replace(base.options, seeds=args.teacher_seeds)
        pairs, teacher_seconds = distill.pair_scores(
            {n: f[:2] for n, f in feats.items()}, labels, cv["folds"], teacher, cv["epochs"], fold_keys, args.cache_dir
        )
    results = {r.name: _recipe_cv(args, labels, feats, keys, r, cv, pairs, tops) for r in recipes}
    _bootstrap(labels, cv["folds"], results, base.name)
    return results, teacher_seconds


def _load(args: argparse.Namespace, spec: artifact.InputSpec) -> data.Dataset:
    """The posters, enough of them for the folds; the output folder is created."""
    dataset = data.load(args.data, spec, args.min_examples, args.limit)
    if len(dataset.ids) < 2 * args.folds:
        raise data.DataError(f"{len(dataset.ids)} posters are too few for {args.folds}-fold cross-validation")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"posters: {dataset.counts}; genres {len(dataset.label_names)}; dropped genres {dataset.dropped_labels}", flush=True)
    return dataset


def _refit_targets(labels: np.ndarray, recipe, cv: dict, feats: dict) -> np.ndarray:
    """What the shipped heads are refit on: the labels, or with distillation the labels mixed with
    the teacher's (every cross-validated backbone's) out-of-fold scores."""
    from train import distill

    if not recipe.distill:
        return labels
    return distill.targets(labels, np.mean([cv["oof"][n] for n in feats], axis=0), recipe.distill)


def _refit(args: argparse.Namespace, nets: dict, feats: dict, tops: dict, goal: np.ndarray, recipe, epochs: dict, head_epochs: dict
           ) -> tuple[dict, object]:
    """Each shipped backbone's heads refit on every poster (epochs fixed by CV), and their ensemble; an adapted recipe then
    fine-tunes heads and top together (``epochs`` are then its fine-tuning epochs) and merges the top into the backbone."""
    from train import adapt, heads, model

    members = {}
    for name in args.backbones:
        feat = feats[name][: 2 + recipe.augmented_views]
        frozen_epochs = head_epochs[name] if recipe.adapt.rank else epochs[name]
        fitted = heads.fit_seeds(feat, goal, recipe.options, frozen_epochs, args.seed, f"{name}_head")
        if recipe.adapt.rank:
            top = tops[name]
            update, _ = adapt.fit(top.pre_top, top.z0, goal, fitted, recipe.options, recipe.adapt, epochs[name], args.seed, name)
            top.merge(update)
        members[name] = (nets[name], fitted)
    return members, model.ensemble(args.height, args.width, members)


def _export(args: argparse.Namespace, net, spec: artifact.InputSpec, names: list[str], thresholds: np.ndarray) -> tuple[bytes, dict]:
    """The fp16 model with its explanation output, and its sealed manifest (not written yet)."""
    from train import explain, export

    manifest = artifact.new_manifest(args.name, args.version, names, thresholds, spec)
    manifest.update(explain.manifest_entry(net))  # the explanation output (train/explain.py)
    tflite = export.to_tflite(net, spec.height, spec.width, explanations=True)
    return tflite, artifact.sealed(manifest, tflite)


def _probe(args: argparse.Namespace, dataset: data.Dataset) -> tuple[list[bytes], np.ndarray]:
    """The parity posters: their files (the serving side decodes them) and training's pixels."""
    rng = np.random.default_rng(args.seed)
    probe = np.sort(rng.choice(len(dataset.ids), min(args.parity_posters, len(dataset.ids)), replace=False))
    posters = [(args.data / "Images" / f"{dataset.ids[i]}.jpg").read_bytes() for i in probe]
    return posters, dataset.images[probe]


def _training_record(
    args: argparse.Namespace,
    dataset: data.Dataset,
    recipe,
    teachers: list[str],
    epochs: dict,
    shipped_epochs: dict,
    params: int,
    seconds: dict,
) -> dict:
    """The manifest's and the report's "training": how the shipped model was made."""
    from train import backbones

    return {
        "arch": f"{' + '.join(args.backbones)} (ImageNet backbones, each with its normalisation inside"
        + ("; -mid: its stride-16 activations pooled onto the last map; " if any(map(backbones.tapped, args.backbones)) else "; ")
        + (f"last convolution adapted by a rank-{recipe.adapt.rank} update trained with the heads), " if recipe.adapt.rank else "frozen), ")
        + f"each: global average pool + {recipe.options.seeds} MLP heads; scores averaged over heads, then over backbones",
        "weights": "random (--weights none)" if args.weights == "none" else "ImageNet (python -m train.weights)",
        "posters": dataset.counts,
        "selection": f"{args.folds}-fold stratified cross-validation (seed {args.seed}); epochs per backbone from the pooled "
        "out-of-fold mAP; thresholds calibrated on the ensemble's out-of-fold scores; heads refit on all posters",
        "recipe": recipe.describe(),
        "teacher": teachers if recipe.distill else None,
        "epochs": {**epochs, **{f"{n} ({recipe.name})": e for n, e in shipped_epochs.items()}},
        "shipped_epochs": shipped_epochs,
        "head": asdict(recipe.options),
        "params": params,
        "seconds": seconds,
    }


def _write_report(
    args,
    dataset: data.Dataset,
    cv: dict,
    manifest: dict,
    training: dict,
    recipes: dict,
    chosen: np.ndarray,
    f1_at: np.ndarray,
    costs: dict,
    oof: np.ndarray,
    train_seconds: float,
) -> None:
    """report.json, report.md and the plots next to the artifact (and into --reports-dir)."""
    labels, names, shipped = dataset.labels, dataset.label_names, "+".join(args.backbones)
    full = {
        "manifest": {k: manifest[k] for k in ("name", "version", "created", "sha256", "size_bytes")},
        "labels": names,
        "shipped": shipped,
        "data": {
            "min_examples": args.min_examples,
            "dropped_labels": dataset.dropped_labels,
            "counts": dataset.counts,
            "folds": args.folds,
            "fold_seed": args.seed,
            "positives": labels.sum(axis=0).astype(int).tolist(),
            "prior": labels.mean(axis=0).tolist(),
        },
        "training": training,
        "baselines": _baselines(labels, cv["folds"]),
        "cv": {name: {**result, "members": name.split("+")} for name, result in cv["sets"].items()},
        **recipes,
        "calibration": {"thresholds": {label: float(t) for label, t in zip(names, chosen, strict=True)}, "f1_at_threshold": f1_at.tolist()},
        "costs": costs,
        "parity": manifest["parity"],
        "train_seconds": train_seconds,
    }
    if args.compare:
        full["v1_split"] = _compare_v1(args.compare, args.val_fraction, dataset, cv["folds"], oof)
    report.write(args.out, full)
    if args.reports_dir:
        report.copy(args.out, args.reports_dir)


def _bootstrap(labels: np.ndarray, folds: np.ndarray, results: dict, reference: str) -> None:
    """Paired bootstrap intervals of every recipe's pooled figures and of its difference to ``reference`` (cross-fitted decisions)."""
    from train import bootstrap

    pred = {name: calibrate.crossfit_decisions(labels, r["scores"], folds) for name, r in results.items()}
    for name, r in results.items():
        ref = None if name == reference else results[reference]["scores"]
        r["bootstrap"] = bootstrap.paired(labels, r["scores"], pred[name], ref, None if ref is None else pred[reference], resamples=500)


def _costs(args, spec, members: dict, names: list[str], thresholds: np.ndarray, posters: list[bytes]) -> dict:
    """File size and warm single-thread latency of each backbone alone (exported like the ensemble)."""
    from train import export, model

    out = {}
    for name, member in members.items():
        if len(members) == 1:
            break
        single = model.ensemble(spec.height, spec.width, {name: member})
        tflite = export.to_tflite(single, spec.height, spec.width)
        manifest = artifact.write(args.out / "members" / name, tflite, artifact.new_manifest(name, args.version, names, thresholds, spec))
        out[name] = {**export.latency(manifest, tflite, posters), "params": int(single.count_params())}
    return out


def _baselines(labels: np.ndarray, folds: np.ndarray) -> dict:
    """Each fold's prior comes from the other folds' genre frequencies."""
    prior = np.zeros_like(labels)
    for k in range(folds.max() + 1):
        prior[folds == k] = labels[folds != k].mean(axis=0)
    return metrics.baselines(labels, prior)


def _compare_v1(path: Path, val_fraction: float, dataset: data.Dataset, folds: np.ndarray, oof: np.ndarray) -> dict:
    """v1 and the seed CNN were scored on v1's 947 validation posters only: compare there.

    Their split is regenerated (stratified_split, v1's seed and fraction) and checked against
    the positives v1 recorded; the ensemble's out-of-fold scores are restricted to it.
    """
    v1 = json.loads(path.read_text())
    if v1["labels"] != dataset.label_names:
        raise data.DataError(f"{path} was made with other genres; use the same data and --min-examples")
    _, val = data.stratified_split(dataset.labels, val_fraction, v1["data"]["seed"])
    y = dataset.labels[val]
    if len(val) != v1["data"]["val_posters"] or y.sum(axis=0).astype(int).tolist() != v1["data"]["val_positives"]:
        raise data.DataError(f"cannot regenerate v1's validation split from {path}")
    pred = calibrate.crossfit_decisions(dataset.labels, oof, folds)[val]
    return {
        "posters": len(val),
        "v1": {
            **v1["ours"]["metrics"],
            "crossfit_f1_macro": v1["ours"]["crossfit_decisions"]["f1_macro"],
            "crossfit_f1_micro": v1["ours"]["crossfit_decisions"]["f1_micro"],
            "size_mb": v1["ours"]["size_mb"],
        },
        "seed_cnn": {
            **v1["seed_cnn"]["metrics"],
            "crossfit_f1_macro": v1["seed_cnn"]["crossfit_decisions"]["f1_macro"],
            "crossfit_f1_micro": v1["seed_cnn"]["crossfit_decisions"]["f1_micro"],
            "size_mb": v1["seed_cnn"]["size_mb"],
        },
        "label_prior": v1["baselines"]["label_prior"],
        "predict_nothing": v1["baselines"]["predict_nothing"],
        "ensemble_oof": metrics.evaluate(y, oof[val], pred),
    }


if __name__ == "__main__":
    raise SystemExit(main())
