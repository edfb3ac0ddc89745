"""micrograd's demo: a 2-16-16-1 ReLU MLP separating the two moons with an SVM loss.

``make_moons`` reproduces scikit-learn's generator draw for draw (same ``RandomState`` calls),
so ``np.random.seed(1337)`` gives the demo's exact data without depending on scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from zth.micrograd.nn import Module


def make_moons(n_samples: int = 100, noise: float | None = None,
               rng: np.random.RandomState | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, as ``sklearn.datasets.make_moons`` (shuffled)."""
    rng = rng if rng is not None else np.random.mtrand._rand  # numpy's global RandomState
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    X = np.vstack([np.append(np.cos(t_out), 1 - np.cos(t_in)),
                   np.append(np.sin(t_out), 1 - np.sin(t_in) - 0.5)]).T  # (n, 2)
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    order = np.arange(n_samples)
    rng.shuffle(order)
    X, y = X[order], y[order]
    if noise is not None:
        X = X + rng.normal(scale=noise, size=X.shape)
    return X, y


def svm_loss(model: Module, X: Sequence[Sequence[float]], y: Sequence[int], alpha: float = 1e-4,
             value: Callable | None = None) -> tuple:
    """Mean hinge loss ``relu(1 - y·score)`` plus ``alpha·Σp²``; returns (loss, accuracy).

    ``y`` holds labels in {-1, +1}. ``value`` wraps the inputs (any micrograd-style class; by
    default the class of the model's parameters).
    """
    value = value or type(model.parameters()[0])
    inputs = [[value(x) for x in row] for row in X]
    scores = [model(row) for row in inputs]
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = alpha * sum(p * p for p in model.parameters())
    accuracy = [(yi > 0) == (si.data > 0) for yi, si in zip(y, scores)]
    return data_loss + reg_loss, sum(accuracy) / len(accuracy)


def train_moons(model: Module, X, y, steps: int = 100, value: Callable | None = None,
                callback: Callable[[int, float, float], None] | None = None) -> list[tuple[float, float]]:
    """micrograd's demo loop: full-batch SGD, learning rate decaying 1.0 → 0.1.

    Returns (loss, accuracy) at every step, measured before that step's update.
    """
    history = []
    for k in range(steps):
        history.append(_sgd_step(model, X, y, lr=1.0 - 0.9 * k / steps, value=value))
        if callback is not None:
            callback(k, *history[-1])
    return history


def _sgd_step(model: Module, X, y, lr: float, value: Callable | None) -> tuple[float, float]:
    """One forward, backward and update; the graph is freed when this returns."""
    loss, acc = svm_loss(model, X, y, value=value)
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data, acc
