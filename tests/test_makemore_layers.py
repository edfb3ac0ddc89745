"""The hand-written makemore layers against their ``torch.nn`` counterparts."""

import pytest
import torch
import torch.nn as nn

from zth.makemore.layers import (
    BatchNorm1d,
    Embedding,
    FlattenConsecutive,
    Linear,
    Sequential,
    Tanh,
    calibrate_batchnorm,
    fold_batchnorm,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _double():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _grads(params):
    return [p.grad.clone() for p in params]


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    g = torch.Generator().manual_seed(0)
    ours = Linear(7, 5, bias=bias, gain=5 / 3, generator=g)
    if bias:
        ours.bias = torch.randn(5, generator=g)
    ref = nn.Linear(7, 5, bias=bias)
    with torch.no_grad():
        ref.weight.copy_(ours.weight.T)
        if bias:
            ref.bias.copy_(ours.bias)
    for p in ours.parameters():
        p.requires_grad_()
    x = torch.randn(4, 3, 7, generator=g)
    up = torch.randn(4, 3, 5, generator=g)
    (ours(x) * up).sum().backward()
    (ref(x) * up).sum().backward()
    torch.testing.assert_close(ours.out, ref(x))
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad.T)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
    assert len(ours.parameters()) == (2 if bias else 1)


def test_linear_init_scale():
    g = torch.Generator().manual_seed(1)
    w = Linear(400, 300, gain=5 / 3, generator=g).weight
    assert w.std().item() == pytest.approx((5 / 3) / 400**0.5, rel=0.02)
    assert Linear(3, 2).bias.eq(0).all()


def _torch_bn(x, bn):
    """torch.nn.BatchNorm1d wants (N, C) or (N, C, L); ours takes (N, C) or (N, L, C)."""
    return bn(x) if x.ndim == 2 else bn(x.transpose(1, 2)).transpose(1, 2)


@pytest.mark.parametrize("shape", [(32, 6), (16, 4, 6), (5, 1, 6)])
def test_batchnorm_matches_torch(shape):
    g = torch.Generator().manual_seed(2)
    ours = BatchNorm1d(6, momentum=0.2)
    ref = nn.BatchNorm1d(6, momentum=0.2)
    ours.gamma = torch.randn(6, generator=g).requires_grad_()
    ours.beta = torch.randn(6, generator=g).requires_grad_()
    with torch.no_grad():
        ref.weight.copy_(ours.gamma)
        ref.bias.copy_(ours.beta)
    for _ in range(3):  # several updates of the running statistics
        x = (torch.randn(shape, generator=g) * 3 + 1).requires_grad_()
        xr = x.detach().clone().requires_grad_()
        up = torch.randn(shape, generator=g)
        y, yr = ours(x), _torch_bn(xr, ref)
        torch.testing.assert_close(y, yr)
        (y * up).sum().backward()
        (yr * up).sum().backward()
        torch.testing.assert_close(x.grad, xr.grad)
        torch.testing.assert_close(ours.running_mean, ref.running_mean)
        torch.testing.assert_close(ours.running_var, ref.running_var)
    torch.testing.assert_close(ours.gamma.grad, ref.weight.grad)
    torch.testing.assert_close(ours.beta.grad, ref.bias.grad)
    ours.training = False
    ref.eval()
    x = torch.randn(shape, generator=g)
    torch.testing.assert_close(ours(x), _torch_bn(x, ref))


def test_batchnorm_3d_uses_batch_and_time():
    """The lecture 6 bug: (B, T, C) must be normalized over B and T together."""
    x = torch.randn(8, 4, 3) + torch.arange(4.0).view(1, 4, 1) * 10  # each step its own mean
    y = BatchNorm1d(3)(x)
    torch.testing.assert_close(y.mean((0, 1)), torch.zeros(3), atol=1e-12, rtol=0)
    assert y.mean(0).abs().max() > 1  # per-step means are not removed separately


def test_batchnorm_rejects_wrong_width():
    with pytest.raises(ValueError, match="expects"):
        BatchNorm1d(3)(torch.randn(4, 5))


def test_tanh_and_embedding_match_torch():
    g = torch.Generator().manual_seed(3)
    emb = Embedding(27, 10, generator=g)
    ref = nn.Embedding(27, 10)
    with torch.no_grad():
        ref.weight.copy_(emb.weight)
    emb.weight.requires_grad_()
    idx = torch.randint(0, 27, (6, 8), generator=g)
    up = torch.randn(6, 8, 10, generator=g)
    y, yr = Tanh()(emb(idx)), nn.Tanh()(ref(idx))
    torch.testing.assert_close(y, yr)
    (y * up).sum().backward()
    (yr * up).sum().backward()
    torch.testing.assert_close(emb.weight.grad, ref.weight.grad)


def test_flatten_consecutive():
    x = torch.randn(4, 8, 10)
    y = FlattenConsecutive(2)(x)
    # the lecture's explicit form: concatenate the even and the odd steps
    torch.testing.assert_close(y, torch.cat([x[:, ::2, :], x[:, 1::2, :]], dim=2))
    assert FlattenConsecutive(8)(x).shape == (4, 80)
    torch.testing.assert_close(FlattenConsecutive(8)(x), nn.Flatten()(x))
    with pytest.raises(ValueError, match="cannot split"):
        FlattenConsecutive(3)(x)


class _TorchBN(nn.BatchNorm1d):
    def forward(self, x):
        return _torch_bn(x, super().forward) if x.ndim == 3 else super().forward(x)


def _wavenet(g):
    return Sequential([
        Embedding(27, 6, generator=g),
        FlattenConsecutive(2), Linear(12, 16, bias=False, generator=g), BatchNorm1d(16), Tanh(),
        FlattenConsecutive(2), Linear(32, 16, bias=False, generator=g), BatchNorm1d(16), Tanh(),
        Linear(16, 27, generator=g),
    ])


def _to_torch(model):
    mods = []
    for layer in model:
        if isinstance(layer, Embedding):
            m = nn.Embedding(*layer.weight.shape)
            m.weight.data.copy_(layer.weight)
        elif isinstance(layer, Linear):
            m = nn.Linear(*layer.weight.shape, bias=layer.bias is not None)
            m.weight.data.copy_(layer.weight.T)
            if layer.bias is not None:
                m.bias.data.copy_(layer.bias)
        elif isinstance(layer, BatchNorm1d):
            m = _TorchBN(layer.gamma.shape[0])
        elif isinstance(layer, Tanh):
            m = nn.Tanh()
        else:
            m = _Flat(layer.n)
        mods.append(m)
    return nn.Sequential(*mods)


class _Flat(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def forward(self, x):
        B, T, C = x.shape
        return nn.Flatten()(x) if T == self.n else x.reshape(B, T // self.n, C * self.n)


def test_sequential_wavenet_matches_torch():
    g = torch.Generator().manual_seed(4)
    model = _wavenet(g)
    ref = _to_torch(model)
    model.requires_grad_()
    x = torch.randint(0, 27, (32, 4), generator=g)
    y = torch.randint(0, 27, (32,), generator=g)
    loss = nn.functional.cross_entropy(model(x), y)
    loss_ref = nn.functional.cross_entropy(ref(x), y)
    torch.testing.assert_close(loss, loss_ref)
    loss.backward()
    loss_ref.backward()
    for ours, theirs in zip(model.parameters(), ref.parameters(), strict=True):
        expected = theirs.grad.T if ours.ndim == 2 and ours.shape != theirs.shape else theirs.grad
        torch.testing.assert_close(ours.grad, expected)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in ref.parameters())
    model.eval()
    ref.eval()
    torch.testing.assert_close(model(x), ref(x))
    assert not any(layer.training for layer in model)


def test_fold_batchnorm():
    g = torch.Generator().manual_seed(5)
    torch.set_default_dtype(torch.float32)  # the folding tolerance is stated for float32
    model = _wavenet(g)
    model.layers.insert(-1, BatchNorm1d(16))  # a BatchNorm not after a Linear is kept
    for layer in model:
        if isinstance(layer, BatchNorm1d):
            layer.gamma = torch.rand(layer.gamma.shape, generator=g) + 0.5
            layer.beta = torch.randn(layer.beta.shape, generator=g)
    for _ in range(20):  # accumulate running statistics
        model(torch.randint(0, 27, (64, 4), generator=g))
    model.eval()
    folded = fold_batchnorm(model)
    x = torch.randint(0, 27, (200, 4), generator=g)
    assert (folded(x) - model(x)).abs().max().item() <= 1e-5
    assert sum(isinstance(layer, BatchNorm1d) for layer in folded) == 1
    assert len(folded) == len(model) - 2
    assert model[3].training is False and isinstance(model[3], BatchNorm1d)  # original untouched


@pytest.mark.parametrize("per_step", [False, True])
def test_calibrate_batchnorm(per_step):
    from zth.makemore.wavenet import BatchNorm1dPerStep

    g = torch.Generator().manual_seed(6)
    model = _wavenet(g)
    if per_step:
        model.layers[3] = BatchNorm1dPerStep(16)
    X = torch.randint(0, 27, (1000, 4), generator=g)
    calibrate_batchnorm(model, X, batch_size=300)  # chunks that do not divide 1000
    assert not any(layer.training for layer in model)
    # oracle: each BatchNorm's input over all of X, with the earlier ones calibrated
    h = X
    for layer in model:
        if isinstance(layer, BatchNorm1d):
            dims = (0,) if per_step and layer is model[3] else tuple(range(h.ndim - 1))
            torch.testing.assert_close(layer.running_mean, h.mean(dims))
            torch.testing.assert_close(layer.running_var, h.var(dims))
        h = layer(h)
    assert model[3].running_mean.shape == ((2, 16) if per_step else (16,))
