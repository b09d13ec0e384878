"""A training recipe: one TOML (or JSON) file under train/recipes/ that says how a model is made.

Every tuning knob lives here, not on the command line (TF Model Garden's experiment configs,
Hugging Face's ``TrainingArguments``): backbones and input size, the views the heads see, the
heads, the folds, the calibration, the export. A missing key takes the default below; an unknown
key or a value of the wrong type is an error that names the file, the section and the key. The
manifest of a trained model carries the file's name and text and the parsed recipe
(``Recipe.record``), so every model can be traced to how it was made.
"""

from __future__ import annotations

import json
import tomllib
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from postergenre import artifact

ROOT = Path(__file__).resolve().parent.parent  # recipe files are named relative to the repository


class RecipeError(ValueError):
    """The recipe file is missing, unreadable, or has an unknown key or a value of the wrong type."""


@dataclass(frozen=True)
class HeadOptions:
    """How the heads are trained (train/heads.py): an MLP per backbone and seed on pooled features."""

    hidden: int = 512  # 0: a linear head
    input_dropout: float = 0.2
    dropout: float = 0.5
    max_epochs: int = 20  # length of the cosine schedule; cross-validation picks where to stop
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    rank_weight: float = 0.0  # weight of the listwise softmax ranking term
    seeds: int = 3  # heads per backbone, scores averaged
    gamma_neg: float = 0.0  # asymmetric loss: focusing power on negatives (0 with clip 0: plain BCE)
    clip: float = 0.0  # asymmetric loss: negatives' scores shifted down by this
    pos_weight_power: float = 0.0  # positives weighted (negatives / positives) ** this, per genre

    def __post_init__(self) -> None:
        _check(self.max_epochs >= 1 and self.seeds >= 1 and self.batch_size >= 1, "heads.max_epochs/seeds/batch_size", ">= 1")
        _check(0 <= self.input_dropout < 1 and 0 <= self.dropout < 1, "heads.input_dropout/dropout", "in [0, 1)")


@dataclass(frozen=True)
class Model:
    """The ensemble's members (train/backbones.py names) and the poster size they run on."""

    backbones: tuple[str, ...] = ("mobilenetv2-mid", "lite0-mid")
    candidates: tuple[str, ...] = ()  # more backbones cross-validated for the report only
    height: int = 336
    width: int = 224
    weights: str = "imagenet"  # "imagenet" (files made by `make weights`) or "random" (tiny test backbones)

    def spec(self) -> artifact.InputSpec:
        """The model's input: what the manifest records and the function decodes to."""
        return artifact.InputSpec(self.height, self.width, "bilinear")

    def __post_init__(self) -> None:
        _check(bool(self.backbones), "model.backbones", "at least one backbone")
        every = self.backbones + self.candidates
        _check(len(set(every)) == len(every), "model.backbones/candidates", "different backbones")
        _check(self.height >= 32 and self.width >= 32, "model.height/width", ">= 32 (the backbones' stride)")
        _check(self.weights in ("imagenet", "random"), "model.weights", "'imagenet' or 'random'")


@dataclass(frozen=True)
class Data:
    min_examples: int = 25  # genres with fewer positive posters (all --data folders together) are not predicted
    # Weight of each data folder's posters in the heads' loss, by folder name (others 1); 0 leaves a folder out of
    # training while it is still scored out-of-fold: a paired comparison with training on the others alone.
    source_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.min_examples >= 1, "data.min_examples", ">= 1")
        _check(all(w >= 0 for w in self.source_weights.values()), "data.source_weights", ">= 0")


@dataclass(frozen=True)
class Views:
    """What the heads train on besides each poster as is and flipped: ``augmented`` views per poster
    (a random crop rescaled to the input size, colour jitter, odd ones mirrored; train/features.py)."""

    augmented: int = 0
    area: tuple[float, float] = (0.55, 1.0)  # crop area share
    aspect: tuple[float, float] = (0.8, 1.25)  # crop aspect change
    brightness: float = 0.12  # x 255, added
    contrast: float = 0.25  # factor 1 +/- this, around the image mean
    saturation: float = 0.3  # factor 1 +/- this, around the grey value

    def __post_init__(self) -> None:
        _check(self.augmented >= 0, "views.augmented", ">= 0")
        _check(0 < self.area[0] <= self.area[1] <= 1 and 0 < self.aspect[0] <= self.aspect[1], "views.area/aspect",
               "increasing pairs, area within (0, 1], aspect above 0")


@dataclass(frozen=True)
class CrossValidation:
    folds: int = 5  # k of the stratified k-fold cross-validation
    seed: int = 0  # folds, the refit heads' initialisation (seeds seed..seed+heads.seeds-1), random backbone weights

    def __post_init__(self) -> None:
        _check(self.folds >= 2, "cross_validation.folds", ">= 2")


@dataclass(frozen=True)
class Calibration:
    micro_weight: float = 0.5  # thresholds maximise macro-F1 + this x micro-F1 (train/calibrate.py)


@dataclass(frozen=True)
class Export:
    name: str = "postergenre-ensemble"  # the artifact's name in its manifest
    parity_posters: int = 200  # posters scored by Keras and by the served fp16 model

    def __post_init__(self) -> None:
        _check(self.parity_posters >= 1, "export.parity_posters", ">= 1")


@dataclass(frozen=True)
class Report:
    v1_report: str = ""  # v1's report.json (repository path): compared on v1's validation posters; "" for none


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    model: Model = field(default_factory=Model)
    data: Data = field(default_factory=Data)
    views: Views = field(default_factory=Views)
    heads: HeadOptions = field(default_factory=HeadOptions)
    cross_validation: CrossValidation = field(default_factory=CrossValidation)
    calibration: Calibration = field(default_factory=Calibration)
    export: Export = field(default_factory=Export)
    report: Report = field(default_factory=Report)
    file: str = ""  # where it was read from (repository path when inside it)
    text: str = ""  # the file as written

    def record(self) -> dict:
        """The manifest's and the report's copy: the file's name and text, and every setting with its defaults."""
        settings = asdict(self)
        del settings["file"], settings["text"]
        return {"file": self.file, "text": self.text, "settings": settings}


def _check(ok: bool, key: str, expected: str) -> None:
    if not ok:
        raise RecipeError(f"{key} must be {expected}")


def _typed(value, kind, where: str):
    """``value`` as the field type ``kind`` (int, float, str, bool, tuple[T, ...], tuple[T, T], dict[str, T]), or a RecipeError."""
    origin = typing.get_origin(kind)
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: expected a table, got {value!r}")
        return {str(k): _typed(v, typing.get_args(kind)[1], f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, list) or (args[-1] is not Ellipsis and len(value) != len(args)):
            raise RecipeError(f"{where}: expected a list{'' if args[-1] is Ellipsis else f' of {len(args)}'}, got {value!r}")
        item = args[0]
        return tuple(_typed(v, item, where) for v in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and type(value) is kind:
        return value
    raise RecipeError(f"{where}: expected {kind.__name__}, got {value!r}")


def _section(cls, values: dict, where: str):
    """One dataclass from a table: unknown keys refused, types checked, defaults for what is missing."""
    if not isinstance(values, dict):
        raise RecipeError(f"{where}: expected a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.name not in ("file", "text")}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out = {}
    for name, value in values.items():
        kind = hints[name]
        if isinstance(kind, type) and hasattr(kind, "__dataclass_fields__"):
            out[name] = _section(kind, value, f"{where} [{name}]")
        else:
            out[name] = _typed(value, kind, f"{where} {name}")
    missing = [f.name for f in known.values() if f.name not in out and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise RecipeError(f"{where}: missing key(s) {', '.join(missing)}")
    try:
        return cls(**out)
    except RecipeError as exc:
        raise RecipeError(f"{where}: {exc}") from None


def load(path: Path) -> Recipe:
    """Read and check a recipe file (.toml or .json)."""
    try:
        text = path.read_text(encoding="utf-8")
        values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise RecipeError(f"recipe {path}: {exc}") from None
    resolved = path.resolve()
    name = str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)
    return replace(_section(Recipe, values, f"recipe {name}"), file=name, text=text)
