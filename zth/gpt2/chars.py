"""GPT-2 on characters: ``train_chars(cfg)`` trains a ``GPT2`` on a text, one token per character.

Chapter 11's front-end: the model is Lecture 9's ``GPT2`` (with its modern switches), the data
Lecture 7's characters (``CharTokenizer``, ``train_val_split``, ``CharData``) in random windows,
and the loop ``zth.train.Trainer``. It is importable by name, so ``zth.train.train_many`` runs
several of these side by side. ``time_to_loss`` reads from a run's metrics when it first reached
a validation loss, counting training time only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

import zth.data
from zth.gpt.config import CharData
from zth.gpt.data import CharTokenizer, train_val_split
from zth.gpt2.model import GPT2, GPT2Config
from zth.train import RandomWindows, RunConfig, TrainConfig, Trainer, TrainResult, apply_overrides, resolve

__all__ = ["char_config", "time_to_loss", "train_chars"]


def char_config(**overrides) -> RunConfig:
    """A ``RunConfig`` of a ``GPT2Config``, a ``TrainConfig`` and ``CharData`` (tiny Shakespeare),
    with ``overrides`` applied by bare field name (``n_layer=2``, ``rope=True``, ``lr=3e-3``)."""
    return apply_overrides(RunConfig(GPT2Config(), TrainConfig(), CharData()), overrides)


def train_chars(cfg: RunConfig, out: str | Path | None = None, *, text: str | None = None,
                tokenizer: CharTokenizer | None = None, log: Callable[[str], None] | None = print,
                command: str | None = None) -> TrainResult:
    """Train a ``GPT2`` as ``cfg`` says on the characters of ``text`` (default: ``cfg.data.dataset``).

    The vocabulary is ``tokenizer``'s (default: the characters of ``text``), so ``vocab_size`` is
    set from it. Training windows are drawn with seed ``seed``, the evaluation's fixed windows of
    the train and val splits with ``seed + 1``, as Lecture 7's ``zth.gpt.train.train`` does.
    """
    data_cfg = cfg.data if cfg.data is not None else CharData()
    text = zth.data.text(data_cfg.dataset) if text is None else text
    tokenizer = tokenizer or CharTokenizer.from_text(text)
    cfg = resolve(RunConfig(replace(cfg.model, vocab_size=tokenizer.vocab_size), cfg.train, data_cfg))
    tc = cfg.train
    train_data, val_data = train_val_split(torch.tensor(tokenizer.encode(text), dtype=torch.long),
                                           data_cfg.train_fraction)
    torch.manual_seed(tc.seed)
    model = GPT2(cfg.model)
    windows = dict(batch_size=tc.batch_size, seq_len=tc.seq_len, align=data_cfg.align)
    evals = {"train": RandomWindows(train_data, seed=tc.seed + 1, **windows),
             "val": RandomWindows(val_data, seed=tc.seed + 1, **windows)}
    trainer = Trainer(model, cfg, RandomWindows(train_data, seed=tc.seed, **windows), evals, out=out,
                      meta={"vocab": tokenizer.vocab}, log=log, command=command)
    return trainer.train()


def time_to_loss(metrics: list[dict], target: float, key: str = "val_loss") -> tuple[float, int] | None:
    """``(seconds, step)`` of the first evaluation whose ``key`` is at most ``target``; None if none is.

    The seconds are training time: the sum of the optimizer steps' own durations up to that
    evaluation's step, read from the train records (each covers ``log_interval`` steps at its
    ``tokens_per_s``), so time spent evaluating is left out. Run with ``log_interval`` dividing
    ``eval_interval``, so that every evaluation's step closes a train record.
    """
    seconds, last = 0.0, 0
    for r in metrics:
        if r["kind"] == "train":
            seconds += (r["step"] - last) * (r["tokens"] / r["step"]) / r["tokens_per_s"]
            last = r["step"]
        elif r.get(key) is not None and r[key] <= target:
            if r["step"] != last:
                raise ValueError(f"the evaluation at step {r['step']} falls inside a log interval "
                                 f"(last train record: step {last}); make log_interval divide eval_interval")
            return seconds, r["step"]
    return None
