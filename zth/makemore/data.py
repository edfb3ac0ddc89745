"""makemore's data: the character vocabulary, (context → next character) examples, and the
canonical train/dev/test split that every makemore chapter trains and evaluates on.

A word is framed by the single boundary token ``.`` (index 0): ``"emma"`` becomes the examples
``... → e``, ``..e → m``, ``.em → m``, ``emm → a``, ``mma → .`` at block size 3.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

BOUNDARY = "."


@dataclass(frozen=True)
class Vocab:
    """Characters and their indices; index 0 is ``.``, the single start/end token.

    Attributes:
        itos: the symbols in index order (``itos[0] == "."``).
        stoi: the inverse mapping, symbol to index.
    """

    itos: tuple[str, ...]
    stoi: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.itos or self.itos[0] != BOUNDARY:
            raise ValueError(f"a vocabulary starts with the boundary token {BOUNDARY!r}")
        if any(len(s) != 1 for s in self.itos) or len(set(self.itos)) != len(self.itos):
            raise ValueError("a vocabulary holds distinct single characters")
        object.__setattr__(self, "stoi", {s: i for i, s in enumerate(self.itos)})

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Vocab:
        """``.`` followed by the sorted characters that occur in ``words`` (27 for names.txt)."""
        chars = sorted(set("".join(words)))
        if BOUNDARY in chars:
            raise ValueError(f"the words contain the boundary token {BOUNDARY!r}")
        return cls((BOUNDARY, *chars))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, word: str) -> list[int]:
        """The indices of ``word``'s characters (no boundary tokens added)."""
        try:
            return [self.stoi[ch] for ch in word]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} in {word!r} is not in the vocabulary") from None

    def decode(self, indices: Iterable[int]) -> str:
        """The characters of ``indices``, boundary tokens included."""
        return "".join(self.itos[int(i)] for i in indices)


class Examples(NamedTuple):
    """Inputs ``X`` (``N × block_size`` indices) and targets ``Y`` (``N`` next indices)."""

    X: torch.Tensor
    Y: torch.Tensor


def build_dataset(words: Iterable[str], block_size: int, vocab: Vocab) -> Examples:
    """Every (previous ``block_size`` characters → next character) pair of ``words``.

    The context starts as ``block_size`` boundary tokens and each word ends with one, so a
    word of ``n`` characters gives ``n + 1`` examples.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    xs: list[list[int]] = []
    ys: list[int] = []
    for w in words:
        context = [0] * block_size
        for ix in vocab.encode(w) + [0]:
            xs.append(context)
            ys.append(ix)
            context = context[1:] + [ix]
    X = torch.tensor(xs, dtype=torch.long).reshape(len(ys), block_size)
    return Examples(X, torch.tensor(ys, dtype=torch.long))


def split_words(words: Sequence[str], seed: int = 42, train: float = 0.8,
                dev: float = 0.1) -> tuple[list[str], list[str], list[str]]:
    """Shuffle a copy of ``words`` as ``random.seed(seed); random.shuffle(words)`` would, and cut
    it into train / dev / test at ``train`` and ``train + dev`` (80/10/10 by default).

    The global ``random`` state is left alone.
    """
    if not (0 < train and 0 <= dev and train + dev <= 1):
        raise ValueError(f"bad split fractions train={train}, dev={dev}")
    shuffled = list(words)
    random.Random(seed).shuffle(shuffled)
    n1, n2 = int(train * len(shuffled)), int((train + dev) * len(shuffled))
    return shuffled[:n1], shuffled[n1:n2], shuffled[n2:]


@dataclass
class Splits:
    """The canonical makemore split: words and examples for train, dev and test."""

    vocab: Vocab
    block_size: int
    train_words: list[str]
    dev_words: list[str]
    test_words: list[str]
    train: Examples
    dev: Examples
    test: Examples

    def __getitem__(self, name: str) -> Examples:
        """``splits["dev"]`` is ``splits.dev``."""
        if name not in ("train", "dev", "test"):
            raise KeyError(f"no split {name!r}; the splits are 'train', 'dev', 'test'")
        return getattr(self, name)


def load_splits(block_size: int = 3, words: Sequence[str] | None = None, seed: int = 42) -> Splits:
    """The split every makemore chapter uses: names.txt shuffled with ``random.seed(42)``, 80/10/10.

    At block size 3 that is 182,625 / 22,655 / 22,866 examples. The vocabulary is built from
    all the words. ``words`` defaults to ``zth.data.names()``.
    """
    if words is None:
        from zth.data import names
        words = names()
    vocab = Vocab.from_words(words)
    tr, dv, te = split_words(words, seed=seed)
    examples = (build_dataset(ws, block_size, vocab) for ws in (tr, dv, te))
    return Splits(vocab, block_size, tr, dv, te, *examples)
