"""Mixtures of language models: average the next-character distributions of several models.

Bengio et al. (2003) obtained their best results by averaging the neural network's probabilities
with those of an interpolated trigram model; ``mixture`` does this for any models that map
contexts to logits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]


def mixture(models: Sequence[Forward], weights: Sequence[float]) -> Forward:
    """A model with ``P(next | context) = Σ_i weights[i] · P_i(next | context)``.

    Its logits are the log of the mixed probabilities, so it can be evaluated with
    ``F.cross_entropy`` and sampled like any other model. ``weights`` are non-negative and sum to 1.
    """
    if len(models) != len(weights) or not models:
        raise ValueError(f"need one weight per model, got {len(models)} models and {len(weights)} weights")
    w = torch.tensor([float(x) for x in weights])
    if (w < 0).any() or abs(w.sum().item() - 1) > 1e-6:
        raise ValueError(f"mixture weights must be non-negative and sum to 1, got {list(weights)}")
    log_w = w.log().view(-1, 1, 1)

    def forward(X: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([F.log_softmax(m(X), dim=-1) for m in models])  # (models, B, V)
        return torch.logsumexp(log_probs + log_w, dim=0)

    return forward
