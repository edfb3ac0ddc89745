"""Lecture 6: a WaveNet-like hierarchical model, and the same network run as dilated causal convolutions.

``wavenet`` builds the tree: characters are embedded, then fused two at a time
(``FlattenConsecutive(2)`` + ``Linear`` + ``BatchNorm1d`` + ``Tanh``) until one vector is left;
``mlp`` builds the flat model of lectures 3-4 from the same layers. ``conv_logits`` runs a
trained model as a stack of dilated causal convolutions over whole sequences: each
intermediate node is computed once and shared by every window that contains it, instead of
once per window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from zth.makemore.data import Vocab
from zth.makemore.layers import BatchNorm1d, Embedding, FlattenConsecutive, Layer, Linear, Sequential, Tanh

__all__ = ["BatchNorm1dPerStep", "conv_logits", "mlp", "wavenet", "word_sequences"]


class BatchNorm1dPerStep(BatchNorm1d):
    """Lecture 6's first BatchNorm, kept to measure its bug: ``(B, T, C)`` normalized over ``B`` only.

    Each of the ``T`` positions gets its own statistics (and running statistics of shape
    ``(T, C)``), so the layer sees ``T`` times fewer numbers per estimate. Use ``BatchNorm1d``.
    """

    def reduce_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        return (0,)


def _finish(layers: list[Layer], last_scale: float) -> Sequential:
    with torch.no_grad():
        layers[-1].weight *= last_scale  # start near the uniform prediction: loss ≈ ln(vocab_size)
    return Sequential(layers).requires_grad_()


def mlp(vocab_size: int, block_size: int, n_embd: int, n_hidden: int, *, last_scale: float = 0.1,
        generator: torch.Generator | None = None) -> Sequential:
    """The flat model: embed ``block_size`` characters, concatenate, one BatchNorm'd tanh layer."""
    g = generator
    return _finish([
        Embedding(vocab_size, n_embd, generator=g), FlattenConsecutive(block_size),
        Linear(n_embd * block_size, n_hidden, bias=False, generator=g), BatchNorm1d(n_hidden), Tanh(),
        Linear(n_hidden, vocab_size, generator=g),
    ], last_scale)


def wavenet(vocab_size: int, block_size: int = 8, n_embd: int = 24, n_hidden: int = 128, *,
            last_scale: float = 0.1, per_step_batchnorm: bool = False,
            generator: torch.Generator | None = None) -> Sequential:
    """The hierarchical model: ``log2(block_size)`` levels that each fuse two neighbours.

    The defaults are the lecture's final model (76,579 parameters for 27 symbols).
    ``per_step_batchnorm=True`` rebuilds the lecture's buggy version (``BatchNorm1dPerStep``)
    at the levels whose output still has a time dimension.
    """
    levels = round(math.log2(block_size))
    if block_size < 2 or 2**levels != block_size:
        raise ValueError(f"block_size must be a power of two >= 2, got {block_size}")
    g = generator
    layers: list[Layer] = [Embedding(vocab_size, n_embd, generator=g)]
    width = n_embd
    for level in range(levels):
        bn = BatchNorm1dPerStep if per_step_batchnorm and level < levels - 1 else BatchNorm1d
        layers += [FlattenConsecutive(2), Linear(2 * width, n_hidden, bias=False, generator=g),
                   bn(n_hidden), Tanh()]
        width = n_hidden
    layers.append(Linear(n_hidden, vocab_size, generator=g))
    return _finish(layers, last_scale)


def word_sequences(words: Sequence[str], vocab: Vocab, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole words as sequences for ``conv_logits``: ``(inputs, targets)``.

    ``inputs`` is ``block_size`` boundary tokens, then the word, then zero padding, shape
    ``(len(words), block_size + max_len)``; ``targets`` is the word followed by ``.``, padded
    with -100 (``F.cross_entropy``'s ``ignore_index``), shape ``(len(words), max_len + 1)``.
    Target ``j`` belongs to the window ``inputs[:, j : j + block_size]``.
    """
    max_len = max(len(w) for w in words)
    inputs = torch.zeros((len(words), block_size + max_len), dtype=torch.long)
    targets = torch.full((len(words), max_len + 1), -100, dtype=torch.long)
    for i, w in enumerate(words):
        ix = vocab.encode(w)
        inputs[i, block_size:block_size + len(ix)] = torch.tensor(ix, dtype=torch.long)
        targets[i, :len(ix) + 1] = torch.tensor(ix + [0], dtype=torch.long)
    return inputs, targets


@torch.no_grad()
def conv_logits(model: Sequential, idx: torch.Tensor) -> torch.Tensor:
    """Run a trained ``mlp`` or ``wavenet`` (in eval mode) over every window of ``idx`` at once.

    ``idx`` is ``(B, L)``; the result ``(B, L - block_size + 1, vocab)`` holds at ``j`` the logits
    ``model(idx[:, j : j + block_size])``. A ``FlattenConsecutive(n)`` + ``Linear`` pair becomes a
    convolution with kernel ``n`` whose dilation is the product of the earlier levels' ``n``;
    BatchNorm with running statistics is a per-channel affine map; the last ``Linear`` is a 1x1
    convolution.
    """
    x = None
    dilation = 1
    layers = list(model)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Embedding):
            x = layer.weight[idx].transpose(1, 2)  # (B, C, L): channels first, as conv1d wants
        elif isinstance(layer, FlattenConsecutive):
            lin = layers[i + 1]
            if not isinstance(lin, Linear):
                raise ValueError(f"layer {i}: FlattenConsecutive must be followed by a Linear")
            n, C, H = layer.n, x.shape[1], lin.weight.shape[1]
            w = lin.weight.view(n, C, H).permute(2, 1, 0)  # (out, in, kernel): tap k sees step t + k·d
            x = F.conv1d(x, w, lin.bias, dilation=dilation)
            dilation *= n
            i += 1
        elif isinstance(layer, BatchNorm1d):
            if layer.training or layer.running_mean.ndim != 1:
                raise ValueError("conv_logits needs the model in eval mode with per-channel BatchNorm")
            scale = layer.gamma / torch.sqrt(layer.running_var + layer.eps)
            x = (x - layer.running_mean[:, None]) * scale[:, None] + layer.beta[:, None]
        elif isinstance(layer, Tanh):
            x = torch.tanh(x)
        elif isinstance(layer, Linear):
            x = torch.einsum("bcl,ch->bhl", x, layer.weight)
            if layer.bias is not None:
                x = x + layer.bias[:, None]
        else:
            raise ValueError(f"layer {i}: conv_logits does not know {type(layer).__name__}")
        i += 1
    return x.transpose(1, 2)
