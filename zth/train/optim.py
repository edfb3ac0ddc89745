"""The optimizers and the learning-rate schedule every run uses.

AdamW decays only the 2-D parameters (matmul weights and embeddings), as GPT-2 and nanoGPT do.
With ``optimizer="muon"``, PyTorch's ``torch.optim.Muon`` updates the hidden matrices (the
2-D weights of ``nn.Linear`` layers other than the output head) and AdamW the rest
(embeddings, head, gains and biases). The schedule is linear warmup, then a cosine down to
``min_lr`` (or a constant); every parameter group follows it in proportion to its own peak.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from zth.train.config import ConfigError, TrainConfig

__all__ = ["configure_adamw", "configure_optimizers", "cosine_lr", "hidden_matrices", "linear_lr", "lr_at"]


def configure_adamw(params: list[nn.Parameter], lr: float, weight_decay: float = 0.1,
                    betas: tuple[float, float] = (0.9, 0.95), eps: float = 1e-8,
                    fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW with weight decay on the 2-D parameters only (biases and norm gains are not decayed).

    ``fused=None`` fuses the update into one kernel when the parameters live on a CUDA device.
    """
    params = [p for p in params if p.requires_grad]
    if fused is None:
        fused = bool(params) and params[0].is_cuda
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas, eps=eps, fused=fused)


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The 2-D weights of the model's ``nn.Linear`` layers, except the output head (the layer
    that maps to the vocabulary) and any weight tied to an embedding."""
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    out, seen = [], set()
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.out_features != vocab and id(m.weight) not in embeddings:
            if id(m.weight) not in seen:
                seen.add(id(m.weight))
                out.append(m.weight)
    return out


def configure_optimizers(model: nn.Module, cfg: TrainConfig) -> list[torch.optim.Optimizer]:
    """The optimizers ``cfg`` asks for; each group remembers its peak rate as ``peak_lr``."""
    params = list(dict.fromkeys(p for p in model.parameters() if p.requires_grad))  # tied weights once
    adamw = dict(weight_decay=cfg.weight_decay, betas=(cfg.beta1, cfg.beta2), fused=cfg.fused_adamw)
    if cfg.optimizer == "adamw":
        opts = [configure_adamw(params, cfg.lr, **adamw)]
    else:
        if not hasattr(torch.optim, "Muon"):
            raise ConfigError(f"optimizer 'muon' needs torch.optim.Muon (PyTorch >= 2.9), "
                              f"not in {torch.__version__}")
        hidden = hidden_matrices(model)
        ids = {id(p) for p in hidden}
        rest = [p for p in params if id(p) not in ids]
        opts = [torch.optim.Muon(hidden, lr=cfg.muon_lr, weight_decay=cfg.weight_decay,
                                 adjust_lr_fn="match_rms_adamw"),
                configure_adamw(rest, cfg.lr, **adamw)]
    for opt in opts:
        for group in opt.param_groups:
            group["peak_lr"] = group["lr"]
    return opts


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


def linear_lr(step: int, max_lr: float, min_lr: float, warmup_steps: int, max_steps: int) -> float:
    """Linear warmup to ``max_lr``, then a straight line down to ``min_lr`` at ``max_steps``."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps or max_steps <= warmup_steps:
        return min_lr
    return max_lr + (min_lr - max_lr) * (step - warmup_steps) / (max_steps - warmup_steps)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of optimizer step ``step`` (from 0): warmup, then cosine, linear or constant.

    ``"constant"`` is the cosine that ends where it starts, at ``lr``.
    """
    end = cfg.lr if cfg.lr_schedule == "constant" else cfg.min_lr
    decay = linear_lr if cfg.lr_schedule == "linear" else cosine_lr
    return decay(step, cfg.lr, end, cfg.warmup_steps, cfg.decay_steps or cfg.max_steps)
