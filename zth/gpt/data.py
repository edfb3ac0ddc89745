"""Characters as tokens: the tokenizer and the train/val split (batches: ``zth.train.data``)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


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


__all__ = ["CharTokenizer", "train_val_split"]
