"""Lecture 5's manual gradients against PyTorch autograd, on random shapes."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from zth.makemore import Examples, TrainConfig, ninja, train
from zth.makemore.ninja import NinjaConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _setup(seed, n, cfg, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    p = ninja.init_params(cfg, g)
    p = {k: v.detach().to(dtype).requires_grad_() for k, v in p.items()}
    X = torch.randint(0, cfg.vocab_size, (n, cfg.block_size), generator=g)
    Y = torch.randint(0, cfg.vocab_size, (n,), generator=g)
    return p, X, Y


shapes = st.fixed_dictionaries(dict(
    seed=st.integers(0, 10_000), n=st.integers(2, 40), vocab_size=st.integers(2, 30),
    block_size=st.integers(1, 5), n_embd=st.integers(1, 8), n_hidden=st.integers(1, 20),
    correction=st.sampled_from([0, 1])))


@settings(max_examples=25, deadline=None)
@given(shapes)
def test_manual_backward_matches_autograd(s):
    cfg = NinjaConfig(s["vocab_size"], s["block_size"], s["n_embd"], s["n_hidden"],
                      correction=s["correction"])
    p, X, Y = _setup(s["seed"], s["n"], cfg)
    loss, cache = ninja.forward(p, X, Y, cfg, retain_grad=True)
    loss.backward()
    d = ninja.manual_backward(p, cache, X, Y, cfg)
    assert set(d) == set(cache) | set(ninja.PARAM_NAMES)
    for name, t in {**cache, **p}.items():
        torch.testing.assert_close(d[name], t.grad, rtol=1e-9, atol=1e-12, msg=name)
    fast = ninja.fast_backward(p, cache, X, Y, cfg)
    for name in ninja.PARAM_NAMES:
        torch.testing.assert_close(fast[name], p[name].grad, rtol=1e-9, atol=1e-12, msg=name)


def test_forward_matches_torch_functional():
    cfg = NinjaConfig(correction=0)
    p, X, Y = _setup(0, 32, cfg)
    loss, _ = ninja.forward(p, X, Y, cfg)
    hprebn = p["C"][X].view(32, -1) @ p["W1"] + p["b1"]
    hpreact = F.batch_norm(hprebn, None, None, p["bngain"][0], p["bnbias"][0], training=True)
    ref = F.cross_entropy(torch.tanh(hpreact) @ p["W2"] + p["b2"], Y)
    torch.testing.assert_close(loss, ref)
    assert sum(t.numel() for t in ninja.init_params(NinjaConfig()).values()) == 4137


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 50), st.integers(2, 40))
def test_cross_entropy_backward(seed, n, vocab):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, vocab, generator=g, dtype=torch.float64) * 3).requires_grad_()
    Y = torch.randint(0, vocab, (n,), generator=g)
    F.cross_entropy(logits, Y).backward()
    torch.testing.assert_close(ninja.cross_entropy_backward(logits.detach(), Y), logits.grad)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 50), st.integers(1, 20), st.sampled_from([0, 1]))
def test_batchnorm_backward(seed, n, width, correction):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, width, generator=g, dtype=torch.float64) * 2 + 1).requires_grad_()
    gain = torch.randn(1, width, generator=g, dtype=torch.float64)
    bias = torch.randn(1, width, generator=g, dtype=torch.float64)
    dy = torch.randn(n, width, generator=g, dtype=torch.float64)
    var_inv = (x.var(0, keepdim=True, correction=correction) + 1e-5) ** -0.5
    raw = (x - x.mean(0, keepdim=True)) * var_inv
    ((gain * raw + bias) * dy).sum().backward()
    dx = ninja.batchnorm_backward(dy, gain, raw.detach(), var_inv.detach(), correction)
    torch.testing.assert_close(dx, x.grad)


def test_training_with_manual_gradients_matches_autograd():
    cfg = NinjaConfig()
    g = torch.Generator().manual_seed(1)
    X = torch.randint(0, 27, (400, 3), generator=g)
    Y = (X[:, -1] + 1) % 27  # a learnable rule: the next letter
    runs = {}
    for manual in (True, False):
        p = ninja.init_params(cfg, torch.Generator().manual_seed(2))
        config = TrainConfig(steps=40, batch_size=32, lr=0.1, log_lines=0)
        hist = train(lambda x: x, list(p.values()), Examples(X, Y), config,
                     loss_fn=ninja.make_loss(p, cfg, manual=manual))
        runs[manual] = p, hist.loss
    (p_m, loss_m), (p_a, loss_a) = runs[True], runs[False]
    assert loss_m == pytest.approx(loss_a, abs=1e-5)
    for k in ninja.PARAM_NAMES:
        torch.testing.assert_close(p_m[k], p_a[k], atol=1e-5, rtol=1e-4)
    assert loss_m[-1] < 3.0 < loss_m[0]  # it is learning the rule, starting from about 3.3
    mean, var = ninja.batchnorm_statistics(p_m, X, cfg)
    with torch.no_grad():
        hprebn = p_m["C"][X].view(400, -1) @ p_m["W1"] + p_m["b1"]
        hpreact = p_m["bngain"] * (hprebn - mean) / (var + cfg.eps).sqrt() + p_m["bnbias"]
        ref = F.cross_entropy(torch.tanh(hpreact) @ p_m["W2"] + p_m["b2"], Y).item()
    loss = F.cross_entropy(ninja.inference_logits(p_m, X, cfg, mean, var), Y).item()
    assert loss == pytest.approx(ref, rel=1e-6)


def test_manual_loss_backward_is_fast_backward():
    cfg = NinjaConfig()
    p, X, Y = _setup(3, 16, cfg)
    loss = ninja.make_loss(p, cfg, manual=True)(X, Y)
    (2 * loss).backward()  # the upstream gradient is applied
    _, cache = ninja.forward(p, X, Y, cfg)
    d = ninja.fast_backward(p, cache, X, Y, cfg)
    for k in ninja.PARAM_NAMES:
        torch.testing.assert_close(p[k].grad, 2 * d[k])


def test_compare_and_errors():
    a = torch.ones(3, dtype=torch.float64)
    assert ninja.compare(a, a.clone()) == (True, True, 0.0)
    exact, approx, diff = ninja.compare(a, a + 1e-6)
    assert not exact and approx and diff == pytest.approx(1e-6, rel=1e-2)
    assert ninja.compare(a, a + 1e-3)[1] is False
    with pytest.raises(ValueError, match="shape mismatch"):
        ninja.compare(a, torch.ones(4))
    cfg = NinjaConfig()
    p, X, Y = _setup(0, 1, cfg)
    with pytest.raises(ValueError, match="at least 2"):
        ninja.forward(p, X, Y, cfg)


def test_training_init_draws_the_same_tensors_and_starts_near_uniform():
    """``check=False``: the same embedding and first layer, an identity BatchNorm, zero biases,
    and a first loss near ln(vocab_size) (the lecture's checking init starts far above it)."""
    cfg = NinjaConfig(n_hidden=200)
    check = ninja.init_params(cfg, torch.Generator().manual_seed(7))
    train_p = ninja.init_params(cfg, torch.Generator().manual_seed(7), check=False)
    assert set(check) == set(train_p)
    torch.testing.assert_close(train_p["C"], check["C"])
    torch.testing.assert_close(train_p["W1"], check["W1"])
    torch.testing.assert_close(train_p["W2"], check["W2"] * 0.1)
    assert torch.equal(train_p["bngain"], torch.ones(1, 200)) and not train_p["bnbias"].any()
    assert not train_p["b1"].any() and not train_p["b2"].any()
    assert all(t.requires_grad and t.is_leaf for t in train_p.values())
    g = torch.Generator().manual_seed(8)
    X = torch.randint(0, cfg.vocab_size, (512, cfg.block_size), generator=g)
    Y = torch.randint(0, cfg.vocab_size, (512,), generator=g)
    uniform = torch.log(torch.tensor(float(cfg.vocab_size))).item()
    start = ninja.forward(train_p, X, Y, cfg)[0].item()
    assert abs(start - uniform) < 0.05 < ninja.forward(check, X, Y, cfg)[0].item() - uniform
