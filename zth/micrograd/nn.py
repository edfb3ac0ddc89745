"""A tiny neural-network library on top of ``Value``: Neuron, Layer, MLP, on either engine.

The layout and the order of random draws follow the ``micrograd`` package, so that with the
same seed both build the same weights: a neuron draws its weights from U(-1, 1) and starts its
bias at 0; ``parameters()`` lists layer by layer, neuron by neuron, weights then bias.

``engine="lecture"`` (the default) builds on ``zth.micrograd.engine.Value`` exactly as the
lecture writes it; ``engine="fast"`` builds on ``zth.micrograd.fast.Value`` and computes each
neuron as one fused node (``fast.Value.neuron``): the same numbers, bit for bit, much sooner.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from zth.micrograd import engine as lecture
from zth.micrograd import fast

ENGINES = {"lecture": lecture.Value, "fast": fast.Value}
ACTIVATIONS = ("relu", "tanh")


class Module:
    """Something with parameters whose gradients can be reset."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0

    def parameters(self) -> list:
        return []


class Neuron(Module):
    """``act(w · x + b)``; a linear neuron when ``nonlin`` is False."""

    def __init__(self, nin: int, nonlin: bool = True, activation: str = "relu", engine: str = "lecture"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {tuple(ENGINES)}, got {engine!r}")
        Value = ENGINES[engine]
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin
        self.activation = activation
        self.engine = engine

    def __call__(self, x: Sequence):
        if self.engine == "fast":  # the same computation as one node
            return fast.Value.neuron(self.w, self.b, x, self.activation if self.nonlin else "linear")
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)  # b + w0*x0 + w1*x1 + ...
        return getattr(act, self.activation)() if self.nonlin else act

    def parameters(self) -> list:
        return self.w + [self.b]

    def __repr__(self) -> str:
        kind = {"relu": "ReLU", "tanh": "Tanh"}[self.activation] if self.nonlin else "Linear"
        return f"{kind}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` independent neurons reading the same inputs."""

    def __init__(self, nin: int, nout: int, **kwargs):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """Layers of sizes ``nouts``; every layer but the last is nonlinear."""

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu", engine: str = "lecture"):
        sizes = [nin, *nouts]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlin=i != len(nouts) - 1, activation=activation, engine=engine)
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
