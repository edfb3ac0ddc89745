"""Lecture 4's networks for studying initialization: the MLP's fixes one by one, and a deep tanh net.

``init_variant`` rebuilds lecture 3's MLP (block 3, embedding 10, 200 tanh units; 11,897
parameters) at each step of lecture 4's path, cumulatively:

* ``"original"``: every tensor ``N(0, 1)``; the logits are huge, so the first loss is ~27
  instead of ``-ln(1/27) = 3.29``.
* ``"fix_softmax"``: output weights scaled by 0.01 and output bias zero: near-uniform
  predictions at the start.
* ``"fix_tanh"``: hidden weights scaled by 0.2 and hidden bias by 0.01: the tanh units no longer
  start saturated.
* ``"kaiming"``: hidden weights scaled by ``(5/3) / sqrt(fan_in)``, the Kaiming gain for tanh.
* ``"batchnorm"``: the Kaiming network with a ``BatchNorm1d`` after the hidden ``Linear``,
  whose bias it makes useless (so it has none: 12,097 parameters).

``deep_mlp`` is the lecture's six-layer network for the diagnostics.
"""

from __future__ import annotations

import torch

from zth.makemore.layers import BatchNorm1d, Embedding, FlattenConsecutive, Layer, Linear, Sequential, Tanh
from zth.makemore.mlp import MLP, MLPConfig

__all__ = ["VARIANTS", "deep_mlp", "init_variant"]

VARIANTS = ("original", "fix_softmax", "fix_tanh", "kaiming", "batchnorm")


def init_variant(variant: str, vocab_size: int = 27, block_size: int = 3, n_embd: int = 10,
                 n_hidden: int = 200, seed: int = 2147483647) -> Sequential:
    """Lecture 3's MLP initialized as at one step of lecture 4 (see the module docstring).

    The tensors start as ``zth.makemore.mlp.MLP``'s ``"lecture"`` draws (all N(0, 1), in the
    lecture's order from ``seed``) and are rescaled per variant; ``"kaiming"`` equals that
    model's ``"scaled"`` initialization.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    step = VARIANTS.index(variant)
    fan_in = n_embd * block_size
    raw = MLP(MLPConfig(vocab_size, block_size, n_embd, n_hidden), init="lecture", seed=seed)
    C, W1, b1, W2, b2 = (t.detach().clone() for t in (raw.C, raw.W1, raw.b1, raw.W2, raw.b2))
    if step >= 1:  # fix_softmax
        W2, b2 = W2 * 0.01, b2 * 0
    if step >= 2:  # fix_tanh (the "magic" 0.2) or kaiming
        W1 = W1 * ((5 / 3) / fan_in**0.5 if step >= 3 else 0.2)
        b1 = b1 * 0.01
    emb = Embedding(vocab_size, n_embd)
    emb.weight = C
    hidden: list[Layer] = [Linear.from_tensors(W1, b1)]
    if step >= 4:
        hidden = [Linear.from_tensors(W1), BatchNorm1d(n_hidden)]
    layers = [emb, FlattenConsecutive(block_size), *hidden, Tanh(), Linear.from_tensors(W2, b2)]
    return Sequential(layers).requires_grad_()


def deep_mlp(vocab_size: int = 27, block_size: int = 3, n_embd: int = 10, n_hidden: int = 100,
             n_layers: int = 6, batchnorm: bool = True, gain: float = 5 / 3,
             generator: torch.Generator | None = None) -> Sequential:
    """The lecture's deep network: ``n_layers`` Linear layers with tanh between them.

    With ``batchnorm`` every Linear (the last too) is followed by ``BatchNorm1d`` and has no
    bias (47,024 parameters by default); the last BatchNorm's gain starts at 0.1 so that the
    first predictions are near uniform. Without, the last Linear's weight is scaled by 0.1
    instead. ``gain`` multiplies the other Linear weights (5/3 is right for tanh).
    """
    if n_layers < 2:
        raise ValueError(f"n_layers must be at least 2, got {n_layers}")
    g = generator
    sizes = [n_embd * block_size] + [n_hidden] * (n_layers - 1) + [vocab_size]
    layers: list[Layer] = [Embedding(vocab_size, n_embd, generator=g), FlattenConsecutive(block_size)]
    for i in range(n_layers):
        last = i == n_layers - 1
        linear = Linear(sizes[i], sizes[i + 1], bias=not batchnorm, generator=g,
                        gain=1.0 if last else gain)
        layers.append(linear)
        if batchnorm:
            layers.append(BatchNorm1d(sizes[i + 1]))
        if not last:
            layers.append(Tanh())
    with torch.no_grad():
        if batchnorm:
            layers[-1].gamma *= 0.1
        else:
            layers[-1].weight *= 0.1
    return Sequential(layers).requires_grad_()
