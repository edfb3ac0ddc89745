"""Lecture 5, "becoming a backprop ninja": a 2-layer MLP with BatchNorm and its backward pass by hand.

``forward`` breaks the network into atomic tensor operations and returns every intermediate
(named as in the lecture); ``manual_backward`` walks them back one by one and returns the
gradient of each; ``cross_entropy_backward`` and ``batchnorm_backward`` are the closed forms
that replace whole stretches of it; ``fast_backward`` uses them to get the parameter
gradients, which is all training needs. ``make_loss`` plugs them into the shared training loop
(or plugs in autograd's instead), so the two can be compared step for step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["NinjaConfig", "PARAM_NAMES", "batchnorm_backward", "batchnorm_statistics", "compare",
           "cross_entropy_backward", "fast_backward", "forward", "inference_logits", "init_params",
           "make_loss", "manual_backward"]

PARAM_NAMES = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


@dataclass
class NinjaConfig:
    """The lecture's network: embedding ``n_embd`` per character, ``n_hidden`` tanh units."""

    vocab_size: int = 27
    block_size: int = 3
    n_embd: int = 10
    n_hidden: int = 64
    eps: float = 1e-5
    correction: int = 1  # the lecture's Bessel-corrected batch variance; 0 for torch.nn's


def init_params(cfg: NinjaConfig, generator: torch.Generator | None = None,
                check: bool = True) -> dict[str, torch.Tensor]:
    """The lecture's initialization (4,137 parameters for the default config).

    The biases and BatchNorm parameters are drawn small but non-zero on purpose, so that a
    wrong gradient cannot hide behind a zero. ``check=False`` draws the same tensors and then
    starts as chapter 4's BatchNorm network does, for training: the output layer scaled down
    to near-uniform predictions (``W2`` × 0.01 overall, ``b2`` = 0), BatchNorm the identity
    (gain 1, bias 0) and ``b1`` = 0.
    """
    g = generator
    fan_in = cfg.n_embd * cfg.block_size
    p = {
        "C": torch.randn((cfg.vocab_size, cfg.n_embd), generator=g),
        "W1": torch.randn((fan_in, cfg.n_hidden), generator=g) * (5 / 3) / fan_in**0.5,
        "b1": torch.randn(cfg.n_hidden, generator=g) * 0.1,  # useless under BatchNorm; checks the math
        "W2": torch.randn((cfg.n_hidden, cfg.vocab_size), generator=g) * 0.1,
        "b2": torch.randn(cfg.vocab_size, generator=g) * 0.1,
        "bngain": torch.randn((1, cfg.n_hidden), generator=g) * 0.1 + 1.0,
        "bnbias": torch.randn((1, cfg.n_hidden), generator=g) * 0.1,
    }
    if not check:
        p["W2"] *= 0.1
        p["bngain"] = torch.ones_like(p["bngain"])
        for name in ("b1", "b2", "bnbias"):
            p[name] = torch.zeros_like(p[name])
    for t in p.values():
        t.requires_grad_()
    return p


def forward(p: dict[str, torch.Tensor], X: torch.Tensor, Y: torch.Tensor, cfg: NinjaConfig,
            retain_grad: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss, computed in small steps; returns ``(loss, intermediates)``.

    With ``retain_grad=True`` every intermediate keeps its ``.grad`` after ``loss.backward()``,
    for checking the manual gradients against autograd.
    """
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"BatchNorm needs a batch of at least 2 examples, got {n}")
    emb = p["C"][X]
    embcat = emb.view(n, -1)
    hprebn = embcat @ p["W1"] + p["b1"]  # linear layer 1
    bnmeani = 1 / n * hprebn.sum(0, keepdim=True)  # BatchNorm: mean
    bndiff = hprebn - bnmeani
    bndiff2 = bndiff**2
    bnvar = 1 / (n - cfg.correction) * bndiff2.sum(0, keepdim=True)  # variance
    bnvar_inv = (bnvar + cfg.eps) ** -0.5
    bnraw = bndiff * bnvar_inv
    hpreact = p["bngain"] * bnraw + p["bnbias"]
    h = torch.tanh(hpreact)
    logits = h @ p["W2"] + p["b2"]  # linear layer 2
    logit_maxes = logits.max(1, keepdim=True).values  # cross-entropy, step by step
    norm_logits = logits - logit_maxes  # subtract the max for numerical stability
    counts = norm_logits.exp()
    counts_sum = counts.sum(1, keepdim=True)
    counts_sum_inv = counts_sum**-1
    probs = counts * counts_sum_inv
    logprobs = probs.log()
    loss = -logprobs[range(n), Y].mean()
    cache = dict(emb=emb, embcat=embcat, hprebn=hprebn, bnmeani=bnmeani, bndiff=bndiff,
                 bndiff2=bndiff2, bnvar=bnvar, bnvar_inv=bnvar_inv, bnraw=bnraw, hpreact=hpreact,
                 h=h, logits=logits, logit_maxes=logit_maxes, norm_logits=norm_logits, counts=counts,
                 counts_sum=counts_sum, counts_sum_inv=counts_sum_inv, probs=probs, logprobs=logprobs)
    if retain_grad:
        for t in cache.values():
            t.retain_grad()
    return loss, cache


@torch.no_grad()
def manual_backward(p: dict[str, torch.Tensor], c: dict[str, torch.Tensor], X: torch.Tensor,
                    Y: torch.Tensor, cfg: NinjaConfig) -> dict[str, torch.Tensor]:
    """The gradient of the loss with respect to every intermediate and parameter, one op at a time."""
    n = X.shape[0]
    d = {}
    d["logprobs"] = torch.zeros_like(c["logprobs"])
    d["logprobs"][range(n), Y] = -1.0 / n  # loss = -mean of the picked entries
    d["probs"] = d["logprobs"] / c["probs"]  # log
    d["counts_sum_inv"] = (c["counts"] * d["probs"]).sum(1, keepdim=True)  # broadcast over columns
    d["counts"] = c["counts_sum_inv"] * d["probs"]
    d["counts_sum"] = -c["counts_sum"] ** -2 * d["counts_sum_inv"]  # x ** -1
    d["counts"] += d["counts_sum"]  # a sum routes the gradient to each term (second use of counts)
    d["norm_logits"] = c["counts"] * d["counts"]  # exp is its own derivative
    d["logits"] = d["norm_logits"].clone()
    d["logit_maxes"] = -d["norm_logits"].sum(1, keepdim=True)
    d["logits"] += F.one_hot(c["logits"].argmax(1), c["logits"].shape[1]) * d["logit_maxes"]  # max
    d["h"] = d["logits"] @ p["W2"].T  # matrix multiply: the shapes dictate the transposes
    d["W2"] = c["h"].T @ d["logits"]
    d["b2"] = d["logits"].sum(0)
    d["hpreact"] = (1.0 - c["h"] ** 2) * d["h"]  # tanh
    d["bngain"] = (c["bnraw"] * d["hpreact"]).sum(0, keepdim=True)
    d["bnraw"] = p["bngain"] * d["hpreact"]
    d["bnbias"] = d["hpreact"].sum(0, keepdim=True)
    d["bndiff"] = c["bnvar_inv"] * d["bnraw"]
    d["bnvar_inv"] = (c["bndiff"] * d["bnraw"]).sum(0, keepdim=True)
    d["bnvar"] = -0.5 * (c["bnvar"] + cfg.eps) ** -1.5 * d["bnvar_inv"]
    d["bndiff2"] = 1.0 / (n - cfg.correction) * torch.ones_like(c["bndiff2"]) * d["bnvar"]
    d["bndiff"] += 2 * c["bndiff"] * d["bndiff2"]  # second use of bndiff
    d["hprebn"] = d["bndiff"].clone()
    d["bnmeani"] = -d["bndiff"].sum(0, keepdim=True)
    d["hprebn"] += 1.0 / n * torch.ones_like(c["hprebn"]) * d["bnmeani"]
    d["embcat"] = d["hprebn"] @ p["W1"].T
    d["W1"] = c["embcat"].T @ d["hprebn"]
    d["b1"] = d["hprebn"].sum(0)
    d["emb"] = d["embcat"].view(c["emb"].shape)
    d["C"] = torch.zeros_like(p["C"])
    d["C"].index_add_(0, X.reshape(-1), d["emb"].reshape(-1, d["emb"].shape[-1]))  # scatter back
    return d


@torch.no_grad()
def cross_entropy_backward(logits: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Gradient of ``F.cross_entropy(logits, Y)`` (mean over the batch): ``(softmax - onehot) / n``."""
    n = logits.shape[0]
    dlogits = F.softmax(logits, 1)
    dlogits[range(n), Y] -= 1
    return dlogits / n


@torch.no_grad()
def batchnorm_backward(dhpreact: torch.Tensor, bngain: torch.Tensor, bnraw: torch.Tensor,
                       bnvar_inv: torch.Tensor, correction: int = 1) -> torch.Tensor:
    """Gradient at a BatchNorm layer's input, in one expression.

    For ``hpreact = bngain * bnraw + bnbias`` with ``bnraw = (x - mean) * bnvar_inv`` and a
    batch variance divided by ``n - correction``:
    ``dx = bngain * bnvar_inv / n * (n dy - sum(dy) - n / (n - correction) * bnraw * sum(dy * bnraw))``.
    """
    n = dhpreact.shape[0]
    return bngain * bnvar_inv / n * (
        n * dhpreact - dhpreact.sum(0) - n / (n - correction) * bnraw * (dhpreact * bnraw).sum(0))


@torch.no_grad()
def fast_backward(p: dict[str, torch.Tensor], c: dict[str, torch.Tensor], X: torch.Tensor,
                  Y: torch.Tensor, cfg: NinjaConfig) -> dict[str, torch.Tensor]:
    """The parameter gradients only, with the closed-form cross-entropy and BatchNorm steps."""
    d = {}
    dlogits = cross_entropy_backward(c["logits"], Y)
    dh = dlogits @ p["W2"].T
    d["W2"] = c["h"].T @ dlogits
    d["b2"] = dlogits.sum(0)
    dhpreact = (1.0 - c["h"] ** 2) * dh
    d["bngain"] = (c["bnraw"] * dhpreact).sum(0, keepdim=True)
    d["bnbias"] = dhpreact.sum(0, keepdim=True)
    dhprebn = batchnorm_backward(dhpreact, p["bngain"], c["bnraw"], c["bnvar_inv"], cfg.correction)
    d["W1"] = c["embcat"].T @ dhprebn
    d["b1"] = dhprebn.sum(0)
    demb = (dhprebn @ p["W1"].T).view(c["emb"].shape)
    d["C"] = torch.zeros_like(p["C"])
    d["C"].index_add_(0, X.reshape(-1), demb.reshape(-1, demb.shape[-1]))
    return d


class _ManualGradients(torch.autograd.Function):
    """An autograd node for the whole network whose backward is ``fast_backward``."""

    @staticmethod
    def forward(ctx, X, Y, cfg, *params):
        p = dict(zip(PARAM_NAMES, params, strict=True))
        loss, cache = forward(p, X, Y, cfg)  # autograd records nothing inside a Function
        ctx.p, ctx.cache, ctx.X, ctx.Y, ctx.cfg = p, cache, X, Y, cfg
        return loss

    @staticmethod
    def backward(ctx, dloss):
        d = fast_backward(ctx.p, ctx.cache, ctx.X, ctx.Y, ctx.cfg)
        return (None, None, None, *(dloss * d[k] for k in PARAM_NAMES))


def make_loss(p: dict[str, torch.Tensor], cfg: NinjaConfig,
              manual: bool = True) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss_fn(X, Y)`` for ``zth.makemore.train`` (given the identity as ``forward``).

    With ``manual=True`` its ``backward()`` runs ``fast_backward`` and nothing else: autograd
    only hands our gradients to the parameters. With ``manual=False`` autograd differentiates
    ``forward`` itself, for comparison.
    """
    if manual:
        return lambda X, Y: _ManualGradients.apply(X, Y, cfg, *(p[k] for k in PARAM_NAMES))
    return lambda X, Y: forward(p, X, Y, cfg)[0]


@torch.no_grad()
def batchnorm_statistics(p: dict[str, torch.Tensor], X: torch.Tensor,
                         cfg: NinjaConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of the hidden pre-activations over ``X`` (e.g. the whole training set)."""
    hprebn = p["C"][X].view(X.shape[0], -1) @ p["W1"] + p["b1"]
    return hprebn.mean(0, keepdim=True), hprebn.var(0, keepdim=True, correction=cfg.correction)


@torch.no_grad()
def inference_logits(p: dict[str, torch.Tensor], X: torch.Tensor, cfg: NinjaConfig,
                     bnmean: torch.Tensor, bnvar: torch.Tensor) -> torch.Tensor:
    """The logits for ``X`` with fixed BatchNorm statistics (inference: no batch needed)."""
    hprebn = p["C"][X].view(X.shape[0], -1) @ p["W1"] + p["b1"]
    hpreact = p["bngain"] * (hprebn - bnmean) * (bnvar + cfg.eps) ** -0.5 + p["bnbias"]
    return torch.tanh(hpreact) @ p["W2"] + p["b2"]


def compare(manual: torch.Tensor, reference: torch.Tensor) -> tuple[bool, bool, float]:
    """``(exact, approximate, max abs difference)`` between a manual gradient and autograd's."""
    if manual.shape != reference.shape:
        raise ValueError(f"shape mismatch: manual {tuple(manual.shape)} "
                         f"vs reference {tuple(reference.shape)}")
    exact = bool(torch.equal(manual, reference))
    approx = bool(torch.allclose(manual, reference))
    return exact, approx, (manual - reference).abs().max().item()
