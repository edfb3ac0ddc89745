"""Characters as tokens: the tokenizer, the train/val split, random batches and the loss estimate."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
import torch.nn as nn


class CharTokenizer:
    """Maps each distinct character of a text to an integer, in sorted order."""

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        if not self.chars or any(len(c) != 1 for c in self.chars):
            raise ValueError("a CharTokenizer needs a non-empty set of single characters")
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}
        self.itos = dict(enumerate(self.chars))

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The vocabulary of ``text``."""
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def vocab(self) -> str:
        """The vocabulary as one string, position = token id (what checkpoints store)."""
        return "".join(self.chars)

    def encode(self, s: str) -> list[int]:
        """Token ids of ``s``; a character outside the vocabulary raises ``ValueError``."""
        try:
            return [self.stoi[c] for c in s]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids."""
        return "".join(self.itos[int(i)] for i in ids)


def train_val_split(data: torch.Tensor, train_fraction: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``train_fraction`` of ``data`` for training, the rest for validation."""
    n = int(train_fraction * len(data))
    return data[:n], data[n:]


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
              device: str | torch.device = "cpu", align: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` random windows ``x`` (B, T) of ``data`` and their targets ``y``, shifted by one.

    Windows start anywhere (``align=1``), or only at multiples of ``align``: for data made of
    records of ``align`` tokens, each window then starts at the beginning of a record.
    """
    if len(data) <= block_size:
        raise ValueError(f"data of length {len(data)} is too short for block_size {block_size}")
    ix = torch.randint((len(data) - block_size - 1) // align + 1, (batch_size,), generator=generator) * align
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
    if torch.device(device).type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


@torch.no_grad()
def estimate_loss(model: nn.Module, splits: dict[str, torch.Tensor], eval_iters: int, batch_size: int,
                  block_size: int, seed: int = 0, device: str | torch.device = "cpu",
                  amp_dtype: torch.dtype | None = None, align: int = 1) -> dict[str, float]:
    """Mean loss over ``eval_iters`` random batches of each split, in eval mode.

    The batches come from their own generator seeded with ``seed``, so every call sees the same
    windows (comparable from one evaluation to the next) and training's random state is untouched.
    ``amp_dtype`` (e.g. ``torch.bfloat16``) runs the forward passes under autocast.
    """
    was_training = model.training
    model.eval()
    out = {}
    for name, data in splits.items():
        g = torch.Generator().manual_seed(seed)
        losses = torch.zeros(eval_iters)
        for k in range(eval_iters):
            x, y = get_batch(data, batch_size, block_size, g, device, align)
            with autocast(device, amp_dtype):
                _, loss = model(x, y)
            losses[k] = loss.item()
        out[name] = losses.mean().item()
    model.train(was_training)
    return out


def amp_dtype(device: torch.device, dtype: str) -> torch.dtype | None:
    """The autocast dtype for a config's ``dtype`` on ``device`` (None: plain float32).

    ``"auto"`` is bf16 on a CUDA GPU that supports it and float32 elsewhere.
    """
    if dtype == "float32":
        return None
    if dtype == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: str | torch.device, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``amp_dtype`` on ``device``, or nothing when ``amp_dtype`` is None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=amp_dtype)


__all__ = ["CharTokenizer", "amp_dtype", "autocast", "estimate_loss", "get_batch", "train_val_split"]
