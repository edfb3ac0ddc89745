"""GPT-2 on characters: Lecture 9's ``GPT2`` (with its modern switches) trained as Lecture 7 trains.

``train_chars(cfg)`` is Lecture 7's ``zth.gpt.train.train`` with the model swapped: the same
characters, random windows, evaluation windows and ``zth.train.Trainer``. Chapter 11 runs its
ladder and its CPU speedrun with it; from the shell::

    python -m zth.gpt2.chars --preset speedrun --out results/gpt2/speedrun-cpu
    python -m zth.gpt2.chars --preset ladder --set rope=true qk_norm=true optimizer=muon

Presets: ``ladder`` (the ladder's small model and budget, GPT-2's recipe; Chapter 11 turns the
switches on one by one) and ``speedrun`` (the recipe that races Lecture 7's ``book`` preset to a
validation loss of 1.70, and stops there).
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

from zth.gpt.config import CharData
from zth.gpt.train import run_command, train
from zth.gpt2.model import GPT2, GPT2Config
from zth.train import RunConfig, TrainConfig, TrainResult, apply_overrides
from zth.train.cli import TrainCommand

__all__ = ["COMMAND", "PRESETS", "char_config", "main", "train_chars"]


def char_config(**overrides) -> RunConfig:
    """A ``RunConfig`` of a ``GPT2Config``, a ``TrainConfig`` and ``CharData`` (tiny Shakespeare),
    with ``overrides`` applied by bare field name (``n_layer=2``, ``rope=True``, ``lr=3e-3``)."""
    return apply_overrides(RunConfig(GPT2Config(), TrainConfig(), CharData()), overrides)


def train_chars(cfg: RunConfig, out: str | Path | None = None, **kwargs) -> TrainResult:
    """Train a ``GPT2`` as ``cfg`` says on characters: ``zth.gpt.train.train`` (same arguments) with
    Lecture 9's model in place of Lecture 7's. ``vocab_size`` comes from the text's characters."""
    return train(cfg, out, model_class=GPT2, **kwargs)


PRESETS: dict[str, RunConfig] = {
    # Chapter 11's ladder: a small model, a short budget, GPT-2's recipe (the switches all off)
    "ladder": char_config(
        n_layer=2, n_head=4, n_embd=64, block_size=32, batch_size=16, max_steps=320, lr=3e-3, min_lr=3e-4,
        warmup_steps=20, weight_decay=0.1, beta2=0.99, muon_lr=0.02, eval_interval=0, eval_steps=20,
        log_interval=50, eval_train=False),
    # Chapter 11's CPU speedrun, chosen from trial runs on two CPU cores (four seeds each): the
    # changes that paid for their time per step (rotary embeddings, an untied head, zero-initialised
    # projections, Muon); LayerNorm and Lecture 7's ReLU, which cost less per step than RMSNorm,
    # GELU or ReLU squared; no QK-norm or soft-capping, which cost time and bought no loss at this
    # size; the book preset's depth, context and batch at 96 channels instead of 128 (a step costs
    # two thirds as much; it takes more steps to get there, but not that many more); a high
    # AdamW rate for the embeddings and the head; a short straight-line schedule; and a stop at
    # the first evaluation at val 1.70
    "speedrun": char_config(
        n_layer=2, n_head=3, n_embd=96, block_size=64, batch_size=32, rope=True, mlp="relu", untied_head=True,
        zero_init=True, optimizer="muon", max_steps=640, lr=5e-2, min_lr=3e-5, lr_schedule="linear",
        muon_lr=0.02, warmup_steps=30, weight_decay=0.1, beta2=0.99, target_loss=1.70, eval_interval=25,
        eval_steps=10, log_interval=25, eval_train=False),
}


COMMAND = TrainCommand("python -m zth.gpt2.chars",
                       "Train GPT-2 (with Chapter 11's switches) on the characters of tiny Shakespeare.",
                       PRESETS, "speedrun", partial(run_command, model_class=GPT2))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The training command; returns the exit status (0, 2 on bad input, 130 when stopped)."""
    return COMMAND.main(argv, prog)


if __name__ == "__main__":
    sys.exit(main())
