"""The three pieces Llama 2 changes inside a GPT block: RMSNorm, rotary embeddings, SwiGLU.

Each follows Meta's reference code (and llama2.c's ``model.py``): RMSNorm computes in float32
and casts back; the rotary embedding rotates *interleaved* pairs ``(x[2i], x[2i+1])`` of each
head by the angle ``pos * theta**(-2i / head_dim)``; the feed-forward is
``w2(silu(w1(x)) * w3(x))`` with no biases.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeedForward", "RMSNorm", "apply_rope", "rope_frequencies", "swiglu_hidden_dim"]


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x**2) + eps) * weight``: LayerNorm without the mean and the bias."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_frequencies(head_dim: int, max_seq_len: int, theta: float = 10000.0,
                     device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of the rotation angles, each of shape ``(max_seq_len, head_dim // 2)``.

    Pair ``i`` of a head at position ``m`` turns by ``m * theta**(-2i / head_dim)``: fast for the
    first pairs, slow for the last ones.
    """
    if head_dim % 2:
        raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device)[: head_dim // 2].float()
                                / head_dim))
    angles = torch.outer(torch.arange(max_seq_len, device=device).float(), inv_freq)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the interleaved pairs of the last dimension of ``x`` (``..., T, head_dim``).

    ``cos`` and ``sin`` are ``(T, head_dim // 2)``: the rows for the positions of ``x``.
    Treating a pair as the complex number ``a + ib``, this multiplies it by ``exp(i * angle)``.
    """
    a, b = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    rotated = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    return rotated.type_as(x)


def swiglu_hidden_dim(dim: int, multiple_of: int) -> int:
    """Llama's feed-forward width: two thirds of ``4 * dim``, rounded up to ``multiple_of``.

    Two thirds keeps the parameter count of a 4x GELU MLP, since SwiGLU has three matrices.
    """
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1(x)) * w3(x))``, a gated MLP with three bias-free matrices."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim, bias=False)  # gate
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)  # down projection
        self.w3 = nn.Linear(dim, hidden_dim, bias=False)  # up projection
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))
