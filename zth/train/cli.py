"""The one command line of every training tool (``zth gpt train``, ``zth gpt2 train``,
``zth llama train`` and their ``python -m`` forms)::

    --preset NAME        a named RunConfig of the tool
    --set KEY=VALUE ...  override any field of the model, training or data config (repeatable)
    --device DEVICE      auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps
    --out DIR            the run folder: metrics.jsonl, run.json, best.pt, last.pt
    --seed N             the random seed
    --resume             continue the run in --out from its last.pt
    --print-config       print the resolved configuration and exit

Tools differ only in their presets, their data and a few options of their own. Bad input
(an unknown preset or key, a value of the wrong type, a checkpoint of another model or
format, ``--resume`` with nothing to resume, an output path that is a file or read-only)
ends with one line and exit code 2, before anything is written; Ctrl-C with 130.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from zth.command import ArgumentParser, fail, parse
from zth.data import DataError
from zth.storage import CheckpointError
from zth.train.config import ConfigError, RunConfig, apply_overrides, resolve
from zth.train.ddp import cleanup_distributed
from zth.train.session import check_out_dir
from zth.train.trainer import TrainingDiverged, TrainResult

__all__ = ["TrainCommand"]

BAD_INPUT = (ConfigError, CheckpointError, DataError, TrainingDiverged, ValueError, OSError)


@dataclass
class TrainCommand:
    """A training tool: its presets, how it runs one configuration, and its own options.

    ``run(cfg, args, command)`` builds the model and data for ``cfg`` (resolved, with the
    overrides applied), trains, and returns the ``TrainResult`` (None on ranks other than 0).
    """

    prog: str
    description: str
    presets: dict[str, RunConfig]
    default_preset: str
    run: Callable[[RunConfig, argparse.Namespace, str], TrainResult | None]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None

    def preset(self, name: str) -> RunConfig:
        """A fresh copy of the named preset."""
        if name not in self.presets:
            raise ConfigError(f"unknown preset {name!r}; known: {', '.join(self.presets)}")
        return self.presets[name].copy()

    def parser(self, prog: str | None = None) -> argparse.ArgumentParser:
        ap = ArgumentParser(prog=prog or self.prog, description=self.description)
        ap.add_argument("--preset", default=self.default_preset, metavar="NAME",
                        help=f"named configuration: {', '.join(self.presets)} "
                             f"(default: {self.default_preset})")
        ap.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override a field of the model, training or data config, "
                             "e.g. --set max_steps=2000 lr=1e-3")
        ap.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
        ap.add_argument("--out", metavar="DIR", help="run folder: metrics.jsonl, run.json, best.pt, last.pt")
        ap.add_argument("--seed", type=int, help="random seed (initialization, batches, dropout)")
        ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
        ap.add_argument("--threads", type=int, help="CPU threads for PyTorch")
        ap.add_argument("--quiet", action="store_true", help="no log lines")
        ap.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration and exit")
        if self.add_arguments is not None:
            self.add_arguments(ap)
        return ap

    def config(self, args: argparse.Namespace) -> RunConfig:
        """The preset with ``--set``, ``--device`` and ``--seed`` applied, resolved."""
        overrides = list(args.set)
        overrides += [f"device={args.device}"] if args.device else []
        overrides += [f"seed={args.seed}"] if args.seed is not None else []
        return resolve(apply_overrides(self.preset(args.preset), overrides))

    def main(self, argv: list[str] | None = None, prog: str | None = None) -> int:
        """Run the tool; returns the exit status (0; 2 on bad input; 130 when stopped by Ctrl-C)."""
        prog = prog or self.prog
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parse(self.parser(prog), argv)
        if isinstance(args, int):
            return args
        try:
            cfg = self.config(args)
            if args.print_config:
                print(json.dumps({"preset": args.preset, **cfg.to_dict()}, indent=2))
                return 0
            if os.environ.get("RANK", "0") == "0":  # under torchrun rank 0 checks; the trainer tells the rest
                check_out_dir(args.out, args.resume)
            if args.threads:
                torch.set_num_threads(args.threads)
            result = self.run(cfg, args, " ".join([prog, shlex.join(argv)]))
        except BAD_INPUT as e:
            return fail(prog, e)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        finally:
            cleanup_distributed()
        if result is None:
            return 0
        if result.interrupted:
            return 130
        if not args.quiet:
            print(f"best val loss {result.best_val_loss:.4f} at step {result.best_step}; "
                  f"{result.tokens_per_s:,.0f} tokens/s; {result.elapsed_s:.1f} s")
        return 0
