"""Lecture 4's networks and the diagnostics that inspect them."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from zth.makemore import diagnostics as dg  # noqa: E402
from zth.makemore.initialization import VARIANTS, deep_mlp, init_variant  # noqa: E402
from zth.makemore.layers import BatchNorm1d, Linear, Tanh  # noqa: E402
from zth.makemore.mlp import MLP, MLPConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(seed=0, n=256):
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 27, (n, 3), generator=g)
    return X, (X[:, -1] * 7 + 3) % 27


def test_variant_parameter_counts_and_initial_losses():
    X, Y = _batch()
    counts, losses = {}, {}
    for v in VARIANTS:
        model = init_variant(v)
        counts[v] = sum(p.numel() for p in model.parameters())
        losses[v] = F.cross_entropy(model(X), Y).item()
    assert counts == {"original": 11_897, "fix_softmax": 11_897, "fix_tanh": 11_897, "kaiming": 11_897,
                      "batchnorm": 12_097}
    assert losses["original"] > 15  # confidently wrong: the lecture's ~27
    for v in VARIANTS[1:]:
        assert losses[v] == pytest.approx(math.log(27), abs=0.05)  # near uniform
    with pytest.raises(ValueError, match="variant must be"):
        init_variant("xavier")


def test_variants_match_lecture_3_mlp():
    X, _ = _batch()
    for variant, init in (("original", "lecture"), ("kaiming", "scaled")):
        ours = init_variant(variant, seed=7)
        ref = MLP(MLPConfig(), init=init, seed=7)
        torch.testing.assert_close(ours(X), ref(X))


def test_deep_mlp_parameter_counts():
    assert sum(p.numel() for p in deep_mlp().parameters()) == 47_024
    no_bn = deep_mlp(batchnorm=False)
    assert sum(p.numel() for p in no_bn.parameters()) == 46_497
    assert sum(isinstance(layer, Tanh) for layer in no_bn) == 5


def test_saturation_tracks_the_gain():
    X, _ = _batch()
    sat = {}
    for gain in (0.5, 5 / 3, 3.0):
        model = deep_mlp(batchnorm=False, gain=gain, generator=torch.Generator().manual_seed(1))
        model(X)
        stats = dg.activation_stats(model)
        assert len(stats) == 5
        sat[gain] = stats[-1].extra
        # oracle: recompute from the stored outputs
        t = model[-2].out
        assert stats[-1].std == pytest.approx(t.std().item())
        assert stats[-1].extra == pytest.approx((t.abs() > 0.97).float().mean().item() * 100)
    assert sat[0.5] < sat[5 / 3] < sat[3.0]
    assert sat[0.5] == 0


def test_gradient_views_and_update_ratios():
    X, Y = _batch()
    model = deep_mlp(generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="no output"):
        dg.activation_stats(model)
    loss = F.cross_entropy(model(X), Y)
    dg.retain_grads(model)
    loss.backward()
    fig, axes = plt.subplots(1, 3)
    acts = dg.plot_activations(model, ax=axes[0])
    grads = dg.plot_activation_grads(model, ax=axes[1])
    weights = dg.plot_weight_grads(model, ax=axes[2])
    assert len(acts) == len(grads) == 5 and len(axes[0].lines) == 5
    tanhs = [layer for layer in model.layers[:-1] if isinstance(layer, Tanh)]
    assert grads[0].std == pytest.approx(tanhs[0].out.grad.std().item())
    linears = [layer for layer in model if isinstance(layer, Linear)]
    assert len(weights) == 6 + 1  # the embedding table is 2-D too
    w = linears[-1].weight
    assert weights[-1].extra == pytest.approx((w.grad.std() / w.std()).item())
    params = model.parameters()
    ratios = dg.update_ratios(params, lr=0.1)
    p = params[1]
    assert ratios[1] == pytest.approx(math.log10((0.1 * p.grad).std().item() / p.std().item()))
    finals = dg.plot_update_ratios([ratios, ratios], params, ax=axes[0])
    assert finals == pytest.approx([r for r, q in zip(ratios, params, strict=True) if q.ndim == 2])
    plt.close(fig)


def test_batchnorm_keeps_activations_unit_scale():
    X, _ = _batch()
    model = deep_mlp(generator=torch.Generator().manual_seed(3))
    model(X)
    for layer in model.layers[:-1]:
        if isinstance(layer, BatchNorm1d):
            assert layer.out.std().item() == pytest.approx(1.0, abs=0.01)
