"""Command-line conventions of zth's entry points: bad input is one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
from dataclasses import fields, replace


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` that reports a bad argument as one line (no usage dump) and exits with 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_dataclass_options(parser: argparse.ArgumentParser, *classes: type,
                          skip: tuple[str, ...] = ()) -> None:
    """Add ``--field-name`` for every field of the dataclasses ``classes`` (default None: keep)."""
    for cls in classes:
        for f in fields(cls):
            if f.name in skip:
                continue
            flag, kind = "--" + f.name.replace("_", "-"), str(f.type).split("|")[0].strip()
            if kind == "bool":
                parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
            else:
                parser.add_argument(flag, type={"int": int, "float": float, "str": str}[kind], default=None)


def apply_overrides(config, args: argparse.Namespace, **extra):
    """A copy of the dataclass ``config`` with the fields given on the command line (not None)."""
    given = {f.name: getattr(args, f.name) for f in fields(config)
             if getattr(args, f.name, None) is not None}
    return replace(config, **given, **extra)
