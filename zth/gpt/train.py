"""Train the lecture's GPT from the shell.

    python -m zth.gpt.train --preset book --out results/gpt/book-cpu
    python -m zth.gpt.train --preset shakespeare --set compile=true --out results/gpt/shakespeare-h100
    python -m zth.gpt.train --preset shakespeare --out results/gpt/shakespeare-h100 --resume
    python -m zth.gpt.train --preset book --set n_layer=6 lr=1e-3 --print-config

Presets: ``book`` (two CPU cores, minutes), ``shakespeare`` (the lecture's run, for a GPU),
``nanogpt-cpu`` (nanoGPT's documented CPU recipe), ``tiny`` (seconds). ``--set key=value``
overrides any field of ``TrainConfig`` or ``GPTConfig``. Bad input ends with a one-line
message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import torch

from zth.data import DataError
from zth.gpt.config import PRESETS, ConfigError, apply_overrides, preset
from zth.gpt.model import count_params
from zth.gpt.trainer import train
from zth.storage import CheckpointError

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """Parsed arguments, or the exit status argparse chose (``--help``: 0, a usage error: 2)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else USAGE_ERROR


def build_parser(prog: str = "python -m zth.gpt.train") -> argparse.ArgumentParser:
    """The command line of the training command (shared with the ``zth`` command)."""
    ap = _Parser(prog=prog, description="Train the lecture's character-level GPT on tiny Shakespeare.")
    ap.add_argument("--preset", "--config", default="book", metavar="NAME",
                    help=f"named configuration: {', '.join(PRESETS)} (default: book)")
    ap.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="override a field, e.g. --set max_iters=2000 lr=1e-3 n_layer=6")
    ap.add_argument("--out", metavar="DIR", help="write metrics.jsonl, run.json, best.pt and last.pt here")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    ap.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    ap.add_argument("--seed", type=int, help="random seed (batches, initialization, dropout)")
    ap.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    ap.add_argument("--quiet", action="store_true", help="no progress bar, no log lines")
    ap.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    return ap


def main(argv: list[str] | None = None, prog: str = "python -m zth.gpt.train") -> int:
    """Run the training command; returns the exit status (0, 2 on bad input, 130 when stopped)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parse(build_parser(prog), argv)
    if isinstance(args, int):
        return args
    try:
        overrides = list(args.set)
        overrides += [f"device={args.device}"] if args.device else []
        overrides += [f"seed={args.seed}"] if args.seed is not None else []
        cfg = apply_overrides(preset(args.preset), overrides)
        if args.print_config:
            print(json.dumps({"preset": args.preset, "params": count_params(cfg.model), **cfg.to_dict()},
                             indent=2))
            return 0
        if args.resume and not args.out:
            raise ConfigError("--resume needs --out DIR (the run to continue)")
        if args.threads:
            torch.set_num_threads(args.threads)
        result = train(cfg, args.out, resume=args.resume, log=None if args.quiet else print,
                       progress=False if args.quiet else None, command=" ".join([prog, shlex.join(argv)]))
    except (ConfigError, CheckpointError, DataError, FileExistsError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    if result.interrupted:
        return 130
    if not args.quiet:
        print(f"best val loss {result.best_val_loss:.4f} at step {result.best_step}; "
              f"{result.tokens_per_s:,.0f} tokens/s; {result.elapsed_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
