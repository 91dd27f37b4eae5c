"""argparse flags made from the methods' declared options, so the CLI never repeats the registry.

Every option of every registered method becomes one flag (an option several methods share, such as
``seed``, is one flag whose help names each). Flags default to None, so only what the user typed is
passed on; ``method_options`` refuses a flag the chosen method does not have and checks the rest
through the options' own parse (range, finiteness, choices), naming the flag.
"""
from __future__ import annotations

import argparse
from typing import Mapping

from .errors import BrushstreamError
from .methods import StyleMethod
from .methods.options import Option

DEST_PREFIX = "method_opt_"


def _metavar(opt: Option) -> str | None:
    return {"int": "N", "float": "X", "floats": "X,Y", "names": "A,B", "text": "NAME"}.get(opt.kind)


def add_method_options(parser: argparse.ArgumentParser, methods: Mapping[str, type[StyleMethod]]) -> None:
    """One flag per option name across ``methods``, in a group of its own."""
    by_name: dict[str, list[tuple[str, Option]]] = {}
    for method_name, cls in methods.items():
        for opt in cls.options:
            by_name.setdefault(opt.name, []).append((method_name, opt))
    group = parser.add_argument_group("method options (from each method's declared options)")
    for name, owners in by_name.items():
        first = owners[0][1]
        if first.flag in parser._option_string_actions:   # the command declares it itself (e.g. --model)
            continue
        help_text = "; ".join(f"{m}: {o.describe()}" for m, o in owners)
        group.add_argument(first.flag, **argparse_kwargs(first, dest=DEST_PREFIX + name, default=None,
                                                         help_text=help_text))


def argparse_kwargs(opt: Option, *, dest: str | None = None, default=None, help_text: str | None = None) -> dict:
    """The add_argument keywords for one declared option; values stay text for ``Option.parse``."""
    kwargs = dict(default=default, help=(help_text or opt.describe()).replace("%", "%%"))
    if dest:
        kwargs["dest"] = dest
    if opt.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["metavar"] = _metavar(opt) or "{" + ",".join(map(str, opt.choices)) + "}"
    return kwargs


def given_options(args: argparse.Namespace) -> dict[str, object]:
    """The method options the user typed (name -> raw value)."""
    return {k[len(DEST_PREFIX):]: v for k, v in vars(args).items() if k.startswith(DEST_PREFIX) and v is not None}


def method_options(cls: type[StyleMethod], given: Mapping[str, object]) -> dict[str, object]:
    """``given`` checked against ``cls``'s options: a flag of another method is an error naming both."""
    table = {o.name: o for o in cls.options}
    for name in given:
        if name not in table:
            flag = "--" + name.replace("_", "-")
            others = ", ".join(o.flag for o in cls.options) or "none"
            raise BrushstreamError(f"{flag} does not apply to --method {cls.name} (its options: {others})")
    return {name: table[name].parse(value) for name, value in given.items()}
