"""Command-line conventions shared by every zth tool.

Every tool is a module with ``main(argv=None, prog=None) -> int``. It parses its arguments with
:class:`ArgumentParser`, whose usage errors are one line on stderr and exit code 2, and it
reports bad input the same way through :func:`fail`. ``prog`` is the name the user typed
(``zth gpt train`` under the ``zth`` command, ``python -m zth.gpt.train`` otherwise), so every
message names the command that was run.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["USAGE_ERROR", "ArgumentParser", "fail", "parse"]

USAGE_ERROR = 2


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are one line (no usage dump) and exit code 2."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """Parsed arguments, or the exit status argparse chose (``--help``: 0, a usage error: 2)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else USAGE_ERROR


def fail(prog: str, message: object) -> int:
    """Print ``prog: error: message`` (its first line) on stderr; returns exit code 2."""
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    print(f"{prog}: error: {lines[0] if lines else message}", file=sys.stderr)
    return USAGE_ERROR
