"""Method options declared as data (pystiche's habit: every hyper-parameter says where its value comes from).

A method lists its options once; the CLI's flags, the ComfyUI node inputs and the Python API's checks are
all made from that list, so a default is written in one place and a bad value (NaN, out of range, an
even patch size, an unknown layer) is refused by the same code for every host, naming the option.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import BrushstreamError

KINDS = ("int", "float", "bool", "choice", "floats", "names", "text")
SOURCES = ("paper", "project")


@dataclass(frozen=True)
class Option:
    """One user-settable parameter of a method.

    ``kind``: int, float, bool, choice (one of ``choices``), floats (a tuple of numbers, written
    ``0.5,1``), names (a tuple taken from ``choices``, written ``relu1_1,relu2_1``), text (a non-empty
    string, such as a model's manifest name or file). ``source`` says
    whether the default is the paper's value or the project's choice; ``paper`` notes the paper's
    value where the project deviates.
    """
    name: str
    kind: str
    default: Any
    help: str
    source: str = "project"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    odd: bool = False                 # ints that must be odd (patch sizes)
    paper: str = ""                   # the paper's value, when the default deviates from it
    texture_only: bool = False        # matters only for texture synthesis (no content image)
    weights: str = ""                 # names a weight file of this manifest role (model, encoder, decoder, mask)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: kind must be one of {KINDS}")
        if self.source not in SOURCES:
            raise ValueError(f"option {self.name}: source must be one of {SOURCES}")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def _fail(self, why: str, value: Any) -> BrushstreamError:
        return BrushstreamError(f"{self.name} ({self.flag}) {why}, got {value!r}")

    def _number(self, value: Any, integer: bool):
        if isinstance(value, bool):
            raise self._fail("must be a number", value)
        try:
            if integer:
                number = int(value) if not isinstance(value, float) else None
                if number is None and float(value).is_integer():
                    number = int(value)
                if number is None:
                    raise ValueError
            else:
                number = float(value)
        except (TypeError, ValueError):
            raise self._fail("must be " + ("a whole number" if integer else "a number"), value) from None
        if not math.isfinite(number):
            raise self._fail("must be a finite number", value)
        if self.minimum is not None and number < self.minimum or self.maximum is not None and number > self.maximum:
            raise self._fail(f"must be in {self.range_text()}", value)
        if self.odd and number % 2 == 0:
            raise self._fail("must be odd", value)
        return number

    def range_text(self) -> str:
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"[{lo}, {hi}]"

    def parse(self, value: Any) -> Any:
        """Check ``value`` (a Python value, or the text a user typed) and return it in its proper type."""
        if self.kind == "int":
            return self._number(value, integer=True)
        if self.kind == "float":
            return self._number(value, integer=False)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise self._fail("must be true or false", value)
        if self.kind == "text":
            if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
                raise self._fail("must be a non-empty name or path", value)
            return str(value).strip()
        if self.kind == "choice":
            if value not in self.choices:
                raise self._fail(f"must be one of {', '.join(map(str, self.choices))}", value)
            return value
        items = _split(value)
        if not items:
            raise self._fail("needs at least one value", value)
        if self.kind == "floats":
            return tuple(self._number(v, integer=False) for v in items)
        unknown = [v for v in items if v not in self.choices]
        if unknown:
            raise self._fail(f"has unknown names {', '.join(map(str, unknown))} (known: {', '.join(self.choices)})", value)
        return tuple(items)

    def describe(self) -> str:
        """Help text with the default and its source, as the CLI and node tooltips show it."""
        default = ",".join(map(str, self.default)) if isinstance(self.default, tuple) else self.default
        origin = "paper" if self.source == "paper" else "project's choice" + (f"; paper: {self.paper}" if self.paper else "")
        return f"{self.help} (default {default}, {origin})"


def _split(value: Any) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def parse_options(declared: Iterable[Option], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Check every given option against its declaration; an undeclared name is an error naming ``owner``."""
    table = {o.name: o for o in declared}
    unknown = sorted(set(given) - set(table))
    if unknown:
        known = ", ".join(table) or "none"
        raise BrushstreamError(f"{owner} has no option {', '.join(unknown)} (its options: {known})")
    return {name: table[name].parse(value) for name, value in given.items()}
