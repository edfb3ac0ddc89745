"""A small minibatch training loop shared by the makemore chapters.

``train`` works with any model given as a ``forward`` function (indices → logits) and the list of
tensors it learns. It records every step's loss, prints a few compact lines (or draws a progress
bar when run in a terminal) and can write its log points as JSON lines for plots.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from zth.makemore.data import Examples
from zth.storage import write_text_atomic

Forward = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    """How to train: steps, batch size, learning rate (a number or a function of the step).

    ``batch_size=None`` trains on the whole training set at every step (full-batch gradient descent).
    ``weight_decay`` shrinks every weight matrix (a tensor of two or more dimensions; not the
    biases or BatchNorm's gain and bias) by a factor ``1 - lr * weight_decay`` after each step.
    """

    steps: int = 10_000
    batch_size: int | None = 32
    lr: float | Callable[[int], float] = 0.1
    seed: int = 42  # seeds the minibatch sampler
    log_lines: int = 5  # how many log lines to print (the first and last step included); 0: none
    weight_decay: float = 0.0

    def lr_at(self, step: int) -> float:
        """The learning rate used at ``step`` (0-based)."""
        return float(self.lr(step) if callable(self.lr) else self.lr)


@dataclass
class History:
    """What ``train`` measured: every step's minibatch loss and learning rate, and the log points."""

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def piecewise(lr: float, drops: Sequence[tuple[int, float]] = ()) -> Callable[[int], float]:
    """``lr`` until the first ``(step, new_lr)`` of ``drops``, then ``new_lr``, and so on.

    The lecture's schedule is ``piecewise(0.1, [(100_000, 0.01)])``.
    """
    drops = sorted(drops)
    def schedule(step: int) -> float:
        current = lr
        for at, value in drops:
            if step >= at:
                current = value
        return current
    return schedule


def cosine(lr_max: float, lr_min: float, steps: int, warmup: int = 0) -> Callable[[int], float]:
    """Linear warm-up to ``lr_max`` over ``warmup`` steps, then a cosine decay to ``lr_min`` at ``steps``."""
    def schedule(step: int) -> float:
        if step < warmup:
            return lr_max * (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, steps - warmup))
        return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t))
    return schedule


def exponential(lr_start: float, lr_end: float, steps: int) -> Callable[[int], float]:
    """From ``lr_start`` to ``lr_end`` in ``steps`` geometric steps: the learning-rate finder's sweep."""
    def schedule(step: int) -> float:
        return lr_start * (lr_end / lr_start) ** (step / max(1, steps - 1))
    return schedule


@torch.no_grad()
def evaluate_loss(forward: Forward, examples: Examples, batch_size: int = 65_536,
                  loss_fn: LossFn = F.cross_entropy) -> float:
    """The mean loss of ``forward`` over all of ``examples`` (in chunks, without gradients)."""
    X, Y = examples
    if len(Y) == 0:
        raise ValueError("cannot evaluate on an empty set of examples")
    total = 0.0
    for i in range(0, len(Y), batch_size):
        total += loss_fn(forward(X[i:i + batch_size]), Y[i:i + batch_size]).item() * len(Y[i:i + batch_size])
    return total / len(Y)


def _want_progress_bar(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def _write_jsonl(path: Path, records: list[dict]) -> None:
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def train(forward: Forward, parameters: Sequence[torch.Tensor], data: Examples, config: TrainConfig,
          evals: dict[str, Examples] | None = None, loss_fn: LossFn = F.cross_entropy,
          callback: Callable[[int, float, float], None] | None = None, progress: bool | None = None,
          metrics_path: str | Path | None = None) -> History:
    """Minibatch SGD: ``p -= lr * p.grad`` for every tensor in ``parameters`` (and weight decay).

    Args:
        forward: maps a batch of inputs ``X[ix]`` to logits.
        parameters: the leaf tensors to learn (``requires_grad=True``).
        data: the training examples.
        config: steps, batch size, learning-rate schedule, seed, number of log lines.
        evals: named example sets (e.g. ``{"dev": splits.dev}``) evaluated at every log point.
        loss_fn: ``loss_fn(logits, targets)``; cross-entropy by default.
        callback: called as ``callback(step, lr, loss)`` after each update, gradients still in place.
        progress: draw a progress bar; by default only when stderr is a terminal (never in the book).
        metrics_path: write the log points there as JSON lines (rewritten atomically at each point).
            A log point's ``step`` counts the updates done; its ``loss`` is the mean minibatch loss
            since the previous point, and the ``<name>_loss`` of ``evals`` are measured after the update.

    Returns:
        The ``History``: the minibatch loss and learning rate of every step and the log points.
    """
    parameters = list(parameters)
    if any(not p.requires_grad for p in parameters):
        raise ValueError("every parameter must have requires_grad=True")
    if config.steps < 1 or (config.batch_size is not None and config.batch_size < 1):
        raise ValueError(f"need steps >= 1 and batch_size >= 1, got {config.steps}, {config.batch_size}")
    X, Y = data
    batch_size = len(Y) if config.batch_size is None else config.batch_size
    g = torch.Generator().manual_seed(config.seed)
    every = max(1, math.ceil(config.steps / max(1, config.log_lines - 1)))
    bar = None
    if _want_progress_bar(progress):
        from tqdm.auto import tqdm
        bar = tqdm(total=config.steps, unit="step", dynamic_ncols=True)
    emit = bar.write if bar is not None else print
    hist = History()
    t0 = time.perf_counter()
    last_logged = 0
    try:
        for step in range(config.steps):
            if config.batch_size is None:
                loss = loss_fn(forward(X), Y)
            else:
                ix = torch.randint(0, len(Y), (batch_size,), generator=g)
                loss = loss_fn(forward(X[ix]), Y[ix])
            for p in parameters:
                p.grad = None
            loss.backward()
            lr = config.lr_at(step)
            with torch.no_grad():
                for p in parameters:
                    p -= lr * p.grad
                    if config.weight_decay and p.ndim >= 2:
                        p *= 1 - lr * config.weight_decay
            hist.loss.append(loss.item())
            hist.lr.append(lr)
            if callback is not None:
                callback(step, lr, hist.loss[-1])
            if bar is not None:
                bar.update(1)
            last = step == config.steps - 1
            if config.log_lines > 0 and (step % every == 0 or last):
                window = hist.loss[last_logged:step + 1]
                last_logged = step + 1
                elapsed = time.perf_counter() - t0
                record = {"step": step + 1, "lr": lr, "loss": sum(window) / len(window),
                          "examples_per_s": (step + 1) * batch_size / elapsed, "elapsed": elapsed}
                for name, ex in (evals or {}).items():
                    record[f"{name}_loss"] = evaluate_loss(forward, ex, loss_fn=loss_fn)
                hist.log.append(record)
                evals_text = "".join(f"  {k[:-5]} {v:.4f}" for k, v in record.items() if k.endswith("_loss"))
                emit(f"step {step + 1:>{len(str(config.steps))}d}/{config.steps}  lr {lr:.3g}  "
                     f"train {record['loss']:.4f}{evals_text}  ({elapsed:.1f}s)")
                if metrics_path is not None:
                    _write_jsonl(Path(metrics_path), hist.log)
    finally:
        if bar is not None:
            bar.close()
    hist.seconds = time.perf_counter() - t0
    return hist
