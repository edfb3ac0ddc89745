"""Lecture 4's health checks for a network of ``zth.makemore`` layers, reusable on any ``Sequential``.

Four views: the distribution of a layer kind's forward activations (with the share of
saturated tanh units), of the gradients flowing into those activations, of the weights'
gradients (with the gradient-to-data ratio), and the update-to-data ratio of each weight
over training time. Every ``plot_*`` function draws on the given (or current) axes and
returns the numbers it plotted, so they can be printed or tested.

The forward and gradient views read each layer's ``out`` from the last forward pass; call
``retain_grads(model)`` between the forward pass and ``backward()`` for the gradient view.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from zth.makemore.layers import Layer, Sequential, Tanh

__all__ = ["LayerStats", "activation_stats", "plot_activation_grads", "plot_activations",
           "plot_diagnostics", "plot_update_ratios", "plot_weight_grads", "retain_grads", "update_ratios"]


@dataclass(frozen=True)
class LayerStats:
    """Summary of one tensor: its label, mean, standard deviation and a kind-specific extra.

    ``extra`` is the saturation in percent (``|t| > threshold``) for activations and
    gradients, and the gradient-to-data ratio ``std(grad) / std(data)`` for weights.
    """

    label: str
    mean: float
    std: float
    extra: float


def retain_grads(model: Sequential) -> None:
    """Keep ``.grad`` on every layer's output of the last forward pass (call before ``backward``)."""
    for layer in model.layers:
        if layer.out is not None and layer.out.requires_grad:
            layer.out.retain_grad()


def _layers_of(model: Sequential, kind: type[Layer]) -> list[tuple[int, Layer]]:
    # the last layer produces the logits: not an activation
    return [(i, layer) for i, layer in enumerate(model.layers[:-1]) if isinstance(layer, kind)]


def _histogram(ax, t: torch.Tensor, label: str) -> None:
    hy, hx = torch.histogram(t.detach().float().cpu(), bins=100, density=True)
    ax.plot(hx[:-1].numpy(), hy.numpy(), label=label)


def activation_stats(model: Sequential, kind: type[Layer] = Tanh, grad: bool = False,
                     threshold: float = 0.97) -> list[LayerStats]:
    """Mean, std and saturation (% of ``|out| > threshold``) of each ``kind`` layer's output.

    With ``grad=True`` the same for the gradient of those outputs (needs ``retain_grads``);
    the saturation column then still counts saturated *activations*.
    """
    stats = []
    for i, layer in _layers_of(model, kind):
        out = layer.out
        if out is None or (grad and out.grad is None):
            what = "gradient" if grad else "output"
            raise ValueError(f"layer {i} ({type(layer).__name__}) has no {what}; run a forward pass"
                             + (", retain_grads(model) and backward()" if grad else ""))
        t = out.grad if grad else out
        saturated = (out.detach().abs() > threshold).float().mean().item() * 100
        stats.append(LayerStats(f"layer {i} ({type(layer).__name__})", t.mean().item(), t.std().item(),
                                saturated))
    return stats


def plot_activations(model: Sequential, kind: type[Layer] = Tanh, ax=None, grad: bool = False,
                     threshold: float = 0.97) -> list[LayerStats]:
    """Histogram of each ``kind`` layer's output (or its gradient, ``grad=True``)."""
    ax = ax or plt.gca()
    stats = activation_stats(model, kind, grad=grad, threshold=threshold)
    for (_, layer), s in zip(_layers_of(model, kind), stats, strict=True):
        _histogram(ax, layer.out.grad if grad else layer.out, s.label)
    ax.legend(fontsize="small")
    ax.set_title(("gradient" if grad else "activation") + f" distribution ({kind.__name__} outputs)")
    ax.set(xlabel="gradient at the output" if grad else "output value", ylabel="density")
    return stats


def plot_activation_grads(model: Sequential, kind: type[Layer] = Tanh, ax=None) -> list[LayerStats]:
    """Histogram of the gradient at each ``kind`` layer's output (call ``retain_grads`` first)."""
    return plot_activations(model, kind, ax=ax, grad=True)


def _weights(model: Sequential) -> list[tuple[int, torch.Tensor]]:
    return [(i, p) for i, p in enumerate(model.parameters()) if p.ndim == 2]


def plot_weight_grads(model: Sequential, ax=None) -> list[LayerStats]:
    """Histogram of the gradient of every 2-D parameter; ``extra`` is ``std(grad) / std(data)``."""
    ax = ax or plt.gca()
    stats = []
    for i, p in _weights(model):
        if p.grad is None:
            raise ValueError(f"parameter {i} {tuple(p.shape)} has no gradient; call backward() first")
        s = LayerStats(f"{i} {tuple(p.shape)}", p.grad.mean().item(), p.grad.std().item(),
                       (p.grad.std() / p.detach().std()).item())
        _histogram(ax, p.grad, s.label)
        stats.append(s)
    ax.legend(fontsize="small")
    ax.set_title("weight gradient distribution")
    ax.set(xlabel="gradient", ylabel="density")
    return stats


@torch.no_grad()
def update_ratios(params: list[torch.Tensor], lr: float) -> list[float]:
    """``log10(std(lr * grad) / std(data))`` per parameter: how big a step is relative to the values.

    Call after ``backward()`` and before the update; append the result to a list every step.
    Parameters without a gradient (or of a single element) give ``nan``.
    """
    out = []
    for p in params:
        if p.grad is None or p.numel() < 2:
            out.append(float("nan"))
        else:
            out.append(((lr * p.grad).std() / p.std()).log10().item())
    return out


def plot_update_ratios(history: list[list[float]], params: list[torch.Tensor], ax=None,
                       guide: float = -3.0) -> list[float]:
    """Update-to-data ratio (log10) of each 2-D parameter over training, with a guide line.

    ``history`` holds one ``update_ratios`` list per step. Returns each weight's mean ratio
    over the last tenth of the history.
    """
    ax = ax or plt.gca()
    ud = torch.tensor(history)
    tail = max(1, len(history) // 10)
    finals = []
    for i, p in enumerate(params):
        if p.ndim == 2:
            ax.plot(ud[:, i].numpy(), label=f"param {i} {tuple(p.shape)}")
            finals.append(ud[-tail:, i].mean().item())
    ax.plot([0, len(history)], [guide, guide], "k", label=f"1e{guide:g} guide")
    ax.set(xlabel="step", ylabel="log10(update / data)", title="update-to-data ratio")
    ax.legend(fontsize="small")
    return finals


def plot_diagnostics(model: Sequential, X: torch.Tensor, Y: torch.Tensor,
                     history: list[list[float]] | None = None, kind: type[Layer] = Tanh,
                     title: str = "") -> tuple[plt.Figure, dict[str, list]]:
    """All four views in a 2x2 grid: forward, backward and weight-gradient histograms on the batch
    ``(X, Y)`` (one forward and backward pass, cross-entropy), and the update-to-data
    ``history`` if given. Returns the figure and the stats of each view by name.
    """
    loss = F.cross_entropy(model(X), Y)
    retain_grads(model)
    for p in model.parameters():
        p.grad = None
    loss.backward()
    fig, grid = plt.subplots(2, 2, figsize=(11, 7), layout="constrained")  # legible at a page's width
    axes = grid.ravel()
    if not history:
        axes[3].set_axis_off()
    stats = {"activations": plot_activations(model, kind, ax=axes[0]),
             "gradients": plot_activation_grads(model, kind, ax=axes[1]),
             "weights": plot_weight_grads(model, ax=axes[2])}
    if history:
        stats["updates"] = plot_update_ratios(history, model.parameters(), ax=axes[3])
    if title:
        fig.suptitle(title, fontweight="bold")  # constrained layout keeps it clear of the panel titles
    return fig, stats
