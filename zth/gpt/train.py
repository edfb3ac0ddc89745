"""Train the lecture's GPT: ``train(cfg)`` from Python, ``python -m zth.gpt.train`` from the shell.

    python -m zth.gpt.train --preset book --out results/gpt/book-cpu
    python -m zth.gpt.train --preset shakespeare --set compile=true --out results/gpt/shakespeare-h100
    python -m zth.gpt.train --preset shakespeare --out results/gpt/shakespeare-h100 --resume
    python -m zth.gpt.train --preset book --set n_layer=6 lr=1e-3 --print-config

Presets: ``book`` (two CPU cores, minutes), ``shakespeare`` (the lecture's run, for a GPU),
``nanogpt-cpu`` (nanoGPT's documented CPU recipe), ``tiny`` (seconds). The training loop is
``zth.train.Trainer``, shared with GPT-2 and the Llama; this module supplies the model, the
characters and random windows of them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import zth.data
from zth.gpt.config import PRESETS
from zth.gpt.data import CharTokenizer, train_val_split
from zth.gpt.model import GPT
from zth.storage import CheckpointError
from zth.train import RandomWindows, RunConfig, Trainer, TrainResult, resolve
from zth.train.checkpoint import load_checkpoint, load_state
from zth.train.cli import TrainCommand

__all__ = ["COMMAND", "main", "run_command", "train"]


def train(cfg: RunConfig, out: str | Path | None = None, *, resume: bool = False, text: str | None = None,
          tokenizer: CharTokenizer | None = None, init_model: torch.nn.Module | None = None,
          stop_after: int | None = None, log: Callable[[str], None] | None = print,
          progress: bool | None = None, command: str | None = None, preset_name: str | None = None,
          model_class: Callable[[Any], torch.nn.Module] = GPT) -> TrainResult:
    """Train a ``GPT`` as ``cfg`` says; the run folder ``out`` receives what ``zth.train`` writes.

    Args:
        cfg: the configuration (``zth.gpt.config.preset("book")``, say).
        out: the run folder; None writes nothing.
        resume: continue from ``out/last.pt`` (the vocabulary comes from the checkpoint).
        text: train on this text instead of ``cfg.data.dataset``.
        tokenizer: the vocabulary (default: the characters of ``text``).
        init_model: start from these weights (finetuning) instead of a fresh initialization.
        stop_after: stop after this many steps of this session, as Ctrl-C would.
        log: receives the log lines (None: silent).
        progress: a progress bar instead of per-step lines; default: when stderr is a terminal.
        command: the command line recorded in ``run.json``.
        preset_name: the preset's name, recorded in ``run.json``.
        model_class: builds the model from ``cfg.model`` (Chapter 11 passes Lecture 9's ``GPT2``).
    """
    text = zth.data.text(cfg.data.dataset) if text is None else text
    if resume:
        if out is None:
            raise CheckpointError("resume needs the run's output folder")
        tokenizer = CharTokenizer(load_checkpoint(Path(out) / "last.pt")["meta"]["vocab"])
    tokenizer = tokenizer or CharTokenizer.from_text(text)
    cfg = resolve(RunConfig(replace(cfg.model, vocab_size=tokenizer.vocab_size), cfg.train, cfg.data))
    tc = cfg.train
    train_data, val_data = train_val_split(torch.tensor(tokenizer.encode(text), dtype=torch.long),
                                           cfg.data.train_fraction)
    torch.manual_seed(tc.seed)
    model = model_class(cfg.model)
    if init_model is not None:
        load_state(model, init_model.state_dict(), "init_model")
    windows = dict(batch_size=tc.batch_size, seq_len=tc.seq_len, align=cfg.data.align)
    splits = {"train": train_data, "val": val_data} if cfg.data.eval_train else {"val": val_data}
    evals = {name: RandomWindows(data, seed=tc.seed + 1, **windows) for name, data in splits.items()}
    trainer = Trainer(model, cfg, RandomWindows(train_data, seed=tc.seed, **windows), evals, out=out,
                      meta={"vocab": tokenizer.vocab}, log=log, command=command, preset=preset_name)
    show_bar = progress if progress is not None else (log is not None and sys.stderr.isatty())
    return trainer.train(resume=resume, stop_after=stop_after, progress=show_bar)


def run_command(cfg: RunConfig, args: argparse.Namespace, command: str,
                model_class: Callable[[Any], torch.nn.Module] = GPT) -> TrainResult:
    """``train`` with the command line's options (a ``TrainCommand``'s ``run``)."""
    return train(cfg, args.out, resume=args.resume, log=None if args.quiet else print,
                 progress=False if args.quiet else None, command=command, preset_name=args.preset,
                 model_class=model_class)


COMMAND = TrainCommand("python -m zth.gpt.train",
                       "Train the lecture's character-level GPT on tiny Shakespeare.", PRESETS, "book",
                       run_command)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The training command; returns the exit status (0, 2 on bad input, 130 when stopped)."""
    return COMMAND.main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
