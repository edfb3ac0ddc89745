"""Command-line conventions of zth's entry points: bad input is one line on stderr, exit code 2."""

from __future__ import annotations

import argparse


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` that reports a bad argument as one line (no usage dump) and exits with 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")
