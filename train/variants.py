"""Training recipes of the shipped backbones' heads, compared by the same cross-validation.

A recipe is the head settings plus what the heads are trained on: how many augmented views of
each poster (train/features.py), how much of the teacher's scores go into the targets
(train/distill.py), and whether each backbone's last convolution is adapted with the heads
(train/adapt.py: rank 0 keeps it frozen). The serving graph is the same for every recipe (the
adapted convolution is merged into the backbone), so they differ in quality and training time only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from train import adapt, heads


@dataclass(frozen=True)
class Recipe:
    name: str
    options: heads.HeadOptions
    augmented_views: int = 0
    distill: float = 0.0
    adapt: adapt.AdaptOptions = adapt.AdaptOptions(rank=0)

    def describe(self) -> dict:
        return {"name": self.name, "augmented_views": self.augmented_views, "distill": self.distill, "adapt": asdict(self.adapt),
                "head": asdict(self.options)}


LOSS_FIELDS = ("gamma_neg", "clip", "pos_weight_power")


def teacher(recipe: Recipe) -> Recipe:
    """The plain recipe (v2's): BCE on the two base views, hard labels, frozen backbones (also the teacher's recipe)."""
    defaults = heads.HeadOptions()
    return Recipe("v2 recipe", replace(recipe.options, **{f: getattr(defaults, f) for f in LOSS_FIELDS}))


ADAPT_KEYS = {"adapt_rank": "rank", "adapt_scale": "scale", "adapt_epochs": "epochs", "adapt_lr": "lr"}


def parse(spec: str, base: Recipe) -> list[Recipe]:
    """``name:key=value,key=value;name2:...`` -> recipes overriding ``base`` (keys: augmented_views, distill, adapt_rank,
    adapt_scale, adapt_epochs, adapt_lr, or any HeadOptions field)."""
    option_names = {f.name: f.type for f in fields(heads.HeadOptions)}
    out = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, _, settings = part.partition(":")
        recipe, changes = replace(base, name=name.strip()), {}
        for item in filter(None, (s.strip() for s in settings.split(","))):
            key, _, value = item.partition("=")
            key = key.strip()
            if key == "augmented_views":
                recipe = replace(recipe, augmented_views=int(value))
            elif key == "distill":
                recipe = replace(recipe, distill=float(value))
            elif key in ADAPT_KEYS:
                field = ADAPT_KEYS[key]
                recipe = replace(recipe, adapt=replace(recipe.adapt, **{field: type(getattr(recipe.adapt, field))(value)}))
            elif key in option_names:
                changes[key] = type(getattr(base.options, key))(value)
            else:
                raise ValueError(f"unknown recipe setting {key!r} in {part!r}")
        out.append(replace(recipe, options=replace(recipe.options, **changes)))
    return out
