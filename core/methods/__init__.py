"""One file per style method, all behind :class:`base.StyleMethod`; ``build(name)`` makes one.

Importing this package imports every method module (timm's pattern): their ``@register`` fills the
registry, so hosts that list ``available()`` see every method and the registry imports none of them.
A new method is one new file here plus its line below.
"""
from .. import foreign  # noqa: F401  (other projects' files then load wherever a model is named)
from . import (  # noqa: F401  (registration)
    adain,
    coherent_online,
    gatys,
    johnson,
    lst,
    metanet,
    microast,
    msgnet,
    reconet,
    style_swap,
    video_multistyle,
    wct,
)
from .base import STYLIZE_OPTIONS, Capabilities, StyleCode, StyleMethod, blend_strength
from .options import Option
from .registry import available, build, get, method_for_weights, register
from .style_spec import StyleSpec

# The method every host runs when none is named: the README's first command, `brushstream stylize`, the Python API.
DEFAULT_METHOD = "microast"

__all__ = ["DEFAULT_METHOD", "Capabilities", "Option", "STYLIZE_OPTIONS", "StyleCode", "StyleMethod", "StyleSpec",
           "available", "blend_strength", "build", "get", "method_for_weights", "register"]
