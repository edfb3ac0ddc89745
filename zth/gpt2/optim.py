"""The optimizer and learning-rate schedule of the GPT-2 reproduction (any model can use them)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def configure_adamw(model: nn.Module, lr: float, weight_decay: float = 0.1,
                    betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                    fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on the 2-D parameters (matmul weights, embeddings) only.

    Biases and LayerNorm/RMSNorm gains (1-D) are not decayed. ``fused=None`` fuses the update
    into one kernel when the parameters live on a CUDA device.
    """
    params = [p for p in model.parameters() if p.requires_grad]  # tied weights appear once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    if fused is None:
        fused = bool(params) and params[0].is_cuda
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused)


def cosine_lr(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Linear warmup to ``max_lr`` over ``warmup_steps``, then cosine decay to ``min_lr``.

    ``step`` counts from 0; the first step already uses ``max_lr / warmup_steps``. After
    ``max_steps`` the rate stays at ``min_lr``.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps or max_steps <= warmup_steps:
        return min_lr
    ratio = (step - warmup_steps) / (max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)
