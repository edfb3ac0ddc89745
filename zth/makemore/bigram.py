"""Lecture 2: character n-gram models, by counting and as a single linear layer.

Both read the examples of ``zth.makemore.data.build_dataset`` with ``block_size = n - 1``
(a bigram model sees one previous character, a trigram model two), so both predict every
character of a word, the first one and the final ``.`` included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zth.makemore.data import Examples


def _flat_index(X: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Each context row ``(i, j, ...)`` as one integer ``(i·V + j)·V + ...``."""
    flat = torch.zeros(X.shape[0], dtype=torch.long)
    for col in X.unbind(1):
        flat = flat * vocab_size + col
    return flat


def count_ngrams(examples: Examples, vocab_size: int) -> torch.Tensor:
    """How often each (context, next) pair occurs: a tensor of shape ``(V,) * (block_size + 1)``.

    For a bigram model (block size 1) this is the lecture's 27 × 27 table ``N[first, second]``.
    """
    X, Y = examples
    flat = _flat_index(X, vocab_size) * vocab_size + Y
    order = X.shape[1] + 1
    return torch.bincount(flat, minlength=vocab_size ** order).view((vocab_size,) * order)


@dataclass
class NGramCounts:
    """The counting model: ``P(next | context) = (N + smoothing) / Σ_next (N + smoothing)``."""

    counts: torch.Tensor  # (V,) * order, from count_ngrams
    smoothing: float = 0.0  # add-k smoothing; 1.0 is the lecture's add-one

    @classmethod
    def fit(cls, examples: Examples, vocab_size: int, smoothing: float = 0.0) -> NGramCounts:
        """Count the n-grams of ``examples``."""
        return cls(count_ngrams(examples, vocab_size), smoothing)

    @property
    def probs(self) -> torch.Tensor:
        """The normalized table; every slice along the last axis sums to 1."""
        P = self.counts.float() + self.smoothing
        return P / P.sum(-1, keepdim=True)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (log-probabilities) of the next character for contexts ``X`` (``B × (order - 1)``).

        Longer contexts are cut to their last ``order - 1`` characters.
        """
        k = self.counts.dim() - 1
        if X.dim() != 2 or X.shape[1] < k:
            raise ValueError(f"expected contexts of at least {k} characters, got shape {tuple(X.shape)}")
        return self.probs.log()[tuple(X[:, X.shape[1] - k:].T)]

    def nll(self, examples: Examples) -> float:
        """The average negative log likelihood of ``examples``: ``-mean(log P[context, next])``."""
        X, Y = examples
        return -self.probs.log()[(*X.T, Y)].mean().item()


def all_contexts(vocab_size: int, context: int) -> torch.Tensor:
    """Every possible context (``V**context × context`` indices), in the order of ``counts.view(-1, V)``."""
    grids = torch.meshgrid(*[torch.arange(vocab_size)] * context, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=1)


def count_table(counts: torch.Tensor) -> Examples:
    """The whole training set as one full batch of counts: contexts ``X`` and, per context, the
    counts of each next character (``Y`` is ``V**context × V``), for ``count_weighted_nll``."""
    V = counts.shape[-1]
    return Examples(all_contexts(V, counts.dim() - 1), counts.reshape(-1, V).float())


def count_weighted_nll(logits: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The mean negative log likelihood over all examples, from the count of each (context, next) pair.

    Identical examples contribute identical terms, so ``-Σ N[c, y] log softmax(logits[c])[y] / Σ N``
    equals the cross-entropy over the full list of examples, value and gradient, at the cost of
    one row per context instead of one per example.
    """
    return -(counts * F.log_softmax(logits, dim=1)).sum() / counts.sum()


class NeuralNGram(nn.Module):
    """One linear layer of ``V`` neurons on one-hot inputs: ``logits = onehot(x) @ W``.

    A one-hot row times ``W`` just selects a row of ``W``, so ``forward`` indexes rows instead
    of building the one-hot matrix (the same numbers, see the chapter's exercise E04).

    Args:
        vocab_size: ``V``.
        context: how many previous characters (1 for bigrams, 2 for trigrams).
        joint: one input per *combination* of context characters (``W`` is ``V**context × V``,
            the counting model's table in log space) instead of one one-hot per position,
            concatenated (``W`` is ``context·V × V``; the positions' logits add up).
        seed: the weights are drawn from N(0, 1) with this ``torch.Generator`` seed.
    """

    def __init__(self, vocab_size: int = 27, context: int = 1, joint: bool = False,
                 seed: int = 2147483647):
        super().__init__()
        if context < 1:
            raise ValueError(f"context must be at least 1, got {context}")
        self.vocab_size, self.context, self.joint = vocab_size, context, joint
        rows = vocab_size ** context if joint else context * vocab_size
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn((rows, vocab_size), generator=g))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (``B × V``) for contexts ``X`` (``B × context`` indices)."""
        if X.dim() != 2 or X.shape[1] != self.context:
            raise ValueError(f"expected contexts of shape (B, {self.context}), got {tuple(X.shape)}")
        if self.joint or self.context == 1:
            return self.W[_flat_index(X, self.vocab_size)]
        offsets = torch.arange(self.context) * self.vocab_size
        return self.W[X + offsets].sum(1)

