"""Hand-written, PyTorch-like layers, as lectures 4 and 6 build them.

Each layer is a plain object holding tensors: ``__call__`` runs it forward (and keeps the
result in ``self.out`` so the diagnostics can inspect it), ``parameters()`` lists the
tensors to train. Shapes follow ``torch.nn`` except for ``Linear``, whose weight is stored
``(fan_in, fan_out)`` as in the lectures (``x @ weight``).

``BatchNorm1d`` normalizes over every dimension but the last: over the batch for ``(B, C)``
inputs and over batch *and* time for ``(B, T, C)`` inputs. Lecture 6 first normalized
``(B, T, C)`` over the batch only, keeping ``T`` separate statistics; that bug is fixed here.
Like ``torch.nn.BatchNorm1d`` it normalizes with the biased batch variance and tracks the
unbiased one in ``running_var``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch

__all__ = ["BatchNorm1d", "Embedding", "FlattenConsecutive", "Layer", "Linear", "Sequential", "Tanh",
           "calibrate_batchnorm", "fold_batchnorm"]


class Layer:
    """Base class: no parameters, always in training mode until told otherwise."""

    training: bool = True
    out: torch.Tensor | None = None

    def parameters(self) -> list[torch.Tensor]:
        return []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Layer):
    """``x @ weight + bias`` with ``weight ~ N(0, 1) * gain / sqrt(fan_in)`` (Kaiming-style).

    Use ``gain=5/3`` before a ``Tanh``; the bias starts at zero.
    """

    def __init__(self, fan_in: int, fan_out: int, bias: bool = True, *, gain: float = 1.0,
                 generator: torch.Generator | None = None):
        self.weight = torch.randn((fan_in, fan_out), generator=generator) * (gain / fan_in**0.5)
        self.bias = torch.zeros(fan_out) if bias else None

    @classmethod
    def from_tensors(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Linear:
        """A ``Linear`` holding the given ``(fan_in, fan_out)`` weight and optional bias."""
        if weight.ndim != 2 or (bias is not None and bias.shape != weight.shape[1:]):
            raise ValueError(f"need a 2-D weight and a bias of its fan_out, got {tuple(weight.shape)} "
                             f"and {None if bias is None else tuple(bias.shape)}")
        layer = cls.__new__(cls)
        layer.weight, layer.bias = weight, bias
        return layer

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = x @ self.weight
        if self.bias is not None:
            self.out = self.out + self.bias
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight] + ([] if self.bias is None else [self.bias])

    def __repr__(self) -> str:
        fan_in, fan_out = self.weight.shape
        return f"Linear({fan_in}, {fan_out}, bias={self.bias is not None})"


class BatchNorm1d(Layer):
    """Batch normalization over all dimensions but the last (features).

    Training: normalize with the batch mean and (biased) variance and update the running
    statistics with ``momentum``. Evaluation (``training = False``): use the running ones.
    """

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1):
        self.eps = eps
        self.momentum = momentum
        self.training = True
        self.gamma = torch.ones(dim)
        self.beta = torch.zeros(dim)
        self.running_mean = torch.zeros(dim)
        self.running_var = torch.ones(dim)

    def reduce_dims(self, x: torch.Tensor) -> tuple[int, ...]:
        """The dimensions the statistics are taken over: all but the features."""
        return tuple(range(x.ndim - 1))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim not in (2, 3) or x.shape[-1] != self.gamma.shape[0]:
            raise ValueError(f"BatchNorm1d({self.gamma.shape[0]}) expects (B, C) or (B, T, C) input "
                             f"with C = {self.gamma.shape[0]}, got shape {tuple(x.shape)}")
        if self.training:
            dims = self.reduce_dims(x)
            mean = x.mean(dims)
            xc = x - mean
            var = (xc * xc).mean(dims)  # biased; two passes are faster here than torch.var_mean
            with torch.no_grad():
                n = x.numel() // mean.numel()
                self.running_mean = torch.lerp(self.running_mean, mean, self.momentum)
                self.running_var = torch.lerp(self.running_var, var * (n / max(n - 1, 1)), self.momentum)
        else:
            xc, var = x - self.running_mean, self.running_var
        # gamma * (x - mean) / sqrt(var + eps) + beta, with the per-feature factor computed once
        self.out = torch.addcmul(self.beta, xc, self.gamma * torch.rsqrt(var + self.eps))
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.gamma, self.beta]

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.gamma.shape[0]}, momentum={self.momentum})"


class Tanh(Layer):
    """Elementwise ``tanh``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.out = torch.tanh(x)
        return self.out


class Embedding(Layer):
    """A lookup table of ``num_embeddings`` rows of size ``embedding_dim``, ``N(0, 1)`` init."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *,
                 generator: torch.Generator | None = None):
        self.weight = torch.randn((num_embeddings, embedding_dim), generator=generator)

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.out = self.weight[idx]
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [self.weight]

    def __repr__(self) -> str:
        return f"Embedding({self.weight.shape[0]}, {self.weight.shape[1]})"


class FlattenConsecutive(Layer):
    """``(B, T, C) -> (B, T // n, C * n)``: concatenate each run of ``n`` consecutive steps.

    When a single step remains the time dimension is dropped, giving ``(B, C * n)``.
    """

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"FlattenConsecutive needs n >= 1, got {n}")
        self.n = n

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        if T % self.n:
            raise ValueError(f"FlattenConsecutive({self.n}) cannot split a sequence of length {T}")
        x = x.reshape(B, T // self.n, C * self.n)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        self.out = x
        return self.out

    def __repr__(self) -> str:
        return f"FlattenConsecutive({self.n})"


class Sequential(Layer):
    """Layers applied in order."""

    def __init__(self, layers: Iterable[Layer]):
        self.layers = list(layers)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        self.out = x
        return self.out

    def parameters(self) -> list[torch.Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]

    def train(self, mode: bool = True) -> Sequential:
        """Set every layer's ``training`` flag (BatchNorm's batch vs running statistics)."""
        self.training = mode
        for layer in self.layers:
            if isinstance(layer, Sequential):
                layer.train(mode)
            else:
                layer.training = mode
        return self

    def eval(self) -> Sequential:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Sequential:
        """Switch gradient tracking on (or off) for every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"


def fold_batchnorm(model: Sequential) -> Sequential:
    """A copy of ``model`` with each ``BatchNorm1d`` folded into the ``Linear`` before it.

    In evaluation mode BatchNorm is an affine map per feature,
    ``y = gamma * (z - running_mean) / sqrt(running_var + eps) + beta``, so after
    ``z = x @ W + b`` it can be absorbed: ``W' = W * s`` and ``b' = (b - running_mean) * s + beta``
    with ``s = gamma / sqrt(running_var + eps)``. The copy computes what ``model`` computes in
    evaluation mode, without the normalization step. A BatchNorm not directly after a
    ``Linear`` is kept. The copy is returned in evaluation mode; ``model`` is not changed.
    """
    folded: list[Layer] = []
    for layer in model.layers:
        prev = folded[-1] if folded else None
        if isinstance(layer, BatchNorm1d) and isinstance(prev, Linear):
            with torch.no_grad():
                scale = layer.gamma / torch.sqrt(layer.running_var + layer.eps)
                bias = prev.bias if prev.bias is not None else torch.zeros_like(layer.beta)
                folded[-1] = Linear.from_tensors(prev.weight * scale,
                                                 (bias - layer.running_mean) * scale + layer.beta)
        else:
            folded.append(_detached_copy(layer))
    return Sequential(folded).eval()


@torch.no_grad()
def calibrate_batchnorm(model: Sequential, X: torch.Tensor, batch_size: int = 16_384) -> None:
    """Set every ``BatchNorm1d``'s running statistics to those of its input over all of ``X``.

    Lecture 4's "calibrate the batch norm at the end of training". Layer by layer, with the
    earlier ones already calibrated, the mean and unbiased variance are accumulated over
    ``X`` in chunks. Leaves ``model`` in eval mode.
    """
    model.eval()
    for k, layer in enumerate(model.layers):
        if not isinstance(layer, BatchNorm1d):
            continue
        head = Sequential(model.layers[:k])
        total = total_sq = 0.0
        n = 0
        for i in range(0, len(X), batch_size):
            h = head(X[i:i + batch_size]).double()
            dims = layer.reduce_dims(h)
            total = total + h.sum(dims)
            total_sq = total_sq + (h * h).sum(dims)
            n += math.prod(h.shape[d] for d in dims)
        mean = total / n
        layer.running_mean = mean.to(layer.gamma.dtype)
        layer.running_var = ((total_sq - n * mean * mean) / max(n - 1, 1)).to(layer.gamma.dtype)


def _detached_copy(layer: Layer) -> Layer:
    """A shallow copy of ``layer`` whose tensors are detached clones."""
    new = object.__new__(type(layer))
    for name, value in vars(layer).items():
        if isinstance(value, torch.Tensor):
            value = value.detach().clone()
        elif isinstance(value, list) and isinstance(layer, Sequential):
            value = [_detached_copy(v) for v in value]
        setattr(new, name, value)
    new.out = None
    return new
