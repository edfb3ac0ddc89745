"""Lecture 3: the multilayer perceptron language model of Bengio et al. (2003).

Each of the ``block_size`` previous characters is looked up in an embedding table ``C``; the
concatenated embeddings go through one ``tanh`` hidden layer and a linear output layer that
gives the logits of the next character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

INITS = ("lecture", "scaled")


@dataclass
class MLPConfig:
    """The lecture's final model: block 3, embedding 10, hidden 200 (11,897 parameters)."""

    vocab_size: int = 27
    block_size: int = 3
    n_embd: int = 10
    n_hidden: int = 200


class MLP(nn.Module):
    """``logits = tanh(C[X].view(B, -1) @ W1 + b1) @ W2 + b2``.

    Args:
        config: the sizes.
        init: ``"lecture"`` draws every parameter from N(0, 1), as lecture 3 does (in the lecture's
            order, so ``seed=2147483647`` gives its weights); ``"scaled"`` keeps ``C`` at N(0, 1),
            scales ``W1`` by ``(5/3)/sqrt(fan_in)`` (Kaiming for tanh) and ``b1`` by 0.01, and
            shrinks the output layer (``W2`` × 0.01, ``b2`` = 0) so that the first predictions
            are nearly uniform and the initial loss is close to ``ln(vocab_size)``.
        seed: seeds the ``torch.Generator`` the weights are drawn from.
    """

    def __init__(self, config: MLPConfig | None = None, init: str = "scaled", seed: int = 2147483647):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        self.config = c = config or MLPConfig()
        g = torch.Generator().manual_seed(seed)
        fan_in = c.block_size * c.n_embd
        C = torch.randn((c.vocab_size, c.n_embd), generator=g)
        W1 = torch.randn((fan_in, c.n_hidden), generator=g)
        b1 = torch.randn(c.n_hidden, generator=g)
        W2 = torch.randn((c.n_hidden, c.vocab_size), generator=g)
        b2 = torch.randn(c.vocab_size, generator=g)
        if init == "scaled":
            W1 *= (5 / 3) / math.sqrt(fan_in)
            b1 *= 0.01
            W2 *= 0.01
            b2 *= 0.0
        self.C, self.W1, self.b1 = nn.Parameter(C), nn.Parameter(W1), nn.Parameter(b1)
        self.W2, self.b2 = nn.Parameter(W2), nn.Parameter(b2)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (``B × vocab_size``) for a batch of contexts ``X`` (``B × block_size`` indices)."""
        if X.dim() != 2 or X.shape[1] != self.config.block_size:
            raise ValueError(f"expected contexts of shape (B, {self.config.block_size}), "
                             f"got {tuple(X.shape)}")
        x = self.C[X].view(X.shape[0], -1)  # (B, block_size * n_embd), the concatenated embeddings
        h = torch.tanh(x @ self.W1 + self.b1)  # (B, n_hidden)
        return h @ self.W2 + self.b2  # (B, vocab_size)

