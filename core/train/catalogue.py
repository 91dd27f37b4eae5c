"""Every training recipe. Importing this module imports each recipe module, whose ``@register_recipe`` fills
the registry in recipe.py (which imports none of them); hosts and the CLI read ``recipes()`` from here.
A new recipe is one module plus its line below."""
from __future__ import annotations

from ..errors import BrushstreamError
from . import (  # noqa: F401  (registration)
    adain_recipe,
    coherent_recipe,
    decoder_recipe,
    distill_recipe,
    flownet_recipe,
    johnson_recipe,
    lst_recipe,
    metanet_recipe,
    microast_recipe,
    msgnet_recipe,
    reconet_recipe,
    swap_inverse_recipe,
    video_multistyle_recipe,
)
from .recipe import Recipe, registered_recipes


def recipes() -> dict[str, type[Recipe]]:
    return registered_recipes()


def get_recipe(name: str) -> type[Recipe]:
    table = recipes()
    if name not in table:
        raise BrushstreamError(f"unknown recipe {name!r}; recipes: {', '.join(table)}")
    return table[name]
