"""One file per style method, all behind :class:`base.StyleMethod`; ``registry.build(name)`` makes one."""
from .base import Capabilities, StyleCode, StyleMethod
from .registry import available, build

__all__ = ["Capabilities", "StyleCode", "StyleMethod", "available", "build"]
