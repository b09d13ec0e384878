"""Training recipes of the shipped backbones' heads, compared by the same cross-validation.

A recipe is the head settings plus what the heads are trained on: how many augmented views of
each poster (train/features.py) and how much of the teacher's scores go into the targets
(train/distill.py). The serving graph is the same for every recipe (pooled features -> MLP
heads), so they differ in quality and training time only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from train import heads


@dataclass(frozen=True)
class Recipe:
    name: str
    options: heads.HeadOptions
    augmented_views: int = 0
    distill: float = 0.0

    def describe(self) -> dict:
        return {"name": self.name, "augmented_views": self.augmented_views, "distill": self.distill, "head": asdict(self.options)}


LOSS_FIELDS = ("gamma_neg", "clip", "pos_weight_power")


def teacher(recipe: Recipe) -> Recipe:
    """The plain recipe (v2's): BCE on the two base views, hard labels; also what the teacher's backbones are trained with."""
    defaults = heads.HeadOptions()
    return Recipe("v2 recipe", replace(recipe.options, **{f: getattr(defaults, f) for f in LOSS_FIELDS}))


def parse(spec: str, base: Recipe) -> list[Recipe]:
    """``name:key=value,key=value;name2:...`` -> recipes overriding ``base`` (keys: augmented_views, distill, or any HeadOptions field)."""
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
            elif key in option_names:
                changes[key] = type(getattr(base.options, key))(value)
            else:
                raise ValueError(f"unknown recipe setting {key!r} in {part!r}")
        out.append(replace(recipe, options=replace(recipe.options, **changes)))
    return out
