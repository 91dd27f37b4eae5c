"""Method names -> classes, and ``build``: the one place options are checked (timm's registry idea).

The registry imports no method: ``core/methods/__init__.py`` imports every method module, whose
``@register`` puts it here. Hosts read ``available()`` and each class's ``options`` and ``capabilities``.
"""
from __future__ import annotations

import inspect

from ..errors import BrushstreamError
from .base import STYLIZE_OPTIONS, StyleMethod
from .options import parse_options

_REGISTRY: dict[str, type[StyleMethod]] = {}
_RESERVED = {o.name for o in STYLIZE_OPTIONS}


def register(cls: type[StyleMethod]) -> type[StyleMethod]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    names = [o.name for o in cls.options]
    if len(set(names)) != len(names) or _RESERVED & set(names):
        raise ValueError(f"{cls.__name__}: option names must be unique and not one of {sorted(_RESERVED)}")
    accepted = inspect.signature(cls.__init__).parameters
    missing = [n for n in names if n not in accepted]
    if missing:
        raise ValueError(f"{cls.__name__}: declared options {missing} are not constructor arguments")
    other = _REGISTRY.get(cls.name)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"method name {cls.name!r} is taken by {other.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def available() -> dict[str, type[StyleMethod]]:
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> type[StyleMethod]:
    if name not in _REGISTRY:
        raise BrushstreamError(f"unknown method {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def method_for_weights(source: str) -> str | None:
    """The method that loads ``source`` (manifest name, file, another project's file or hf:// reference) as its model:
    the manifest's method, else the file's ``method`` metadata (imported files), else the method declaring its
    ``arch``; None when no method's model option takes it."""
    from ..hub import weights as weight_store

    manifest = weight_store.load_manifest()
    if source in manifest:
        entry = manifest[source]
        names = [m for m in entry.method.split(",") if m in _REGISTRY]
        return names[0] if entry.role == "model" and names else None
    meta = weight_store.read_metadata(weight_store.resolve(source))
    if meta.get("method") in _REGISTRY and meta.get("role", "model") == "model":
        return meta["method"]
    return next((name for name, cls in sorted(_REGISTRY.items()) if meta.get("arch") in cls.archs), None)


def build(name: str, *, progress: bool | None = None, **kwargs) -> StyleMethod:
    """A new, ready-to-use method: declared options are checked; other keywords (weight files) go to the
    constructor as they are. ``progress`` reaches methods that show progress bars and is ignored by the
    rest, so hosts need not know which. Every call returns new networks (weights are shared verified
    tensors, never live modules)."""
    cls = get(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if progress is not None and "progress" in accepted:
        kwargs["progress"] = progress
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise BrushstreamError(f"{name} has no option {', '.join(unknown)} "
                               f"(its options: {', '.join(o.name for o in cls.options) or 'none'})")
    declared = {o.name for o in cls.options}
    checked = parse_options(cls.options, {k: v for k, v in kwargs.items() if k in declared}, name)
    return cls(**{**kwargs, **checked}).eval()
