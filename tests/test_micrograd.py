"""zth.micrograd against PyTorch autograd (the oracle) and the micrograd 0.1.0 package."""

import math
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zth.micrograd import MLP, Value, draw_dot, make_moons, svm_loss, train_moons

# ---- random expressions: the same program run on Value and on torch float64 tensors ----
# Each op maps a pool of values to a new value; inputs are kept inside every op's domain.
OPS = {
    "add": (2, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (b * b + 1.0)),
    "rsub": (1, lambda a: 2.5 - a),
    "rdiv": (1, lambda a: 3.0 / (a * a + 0.5)),
    "radd": (1, lambda a: 1.5 + a),
    "rmul": (1, lambda a: -0.7 * a),
    "neg": (1, lambda a: -a),
    "pow2": (1, lambda a: a**2),
    "pow3": (1, lambda a: a**3),
    "powf": (1, lambda a: (a * a + 1.0) ** 1.5),
    "powneg": (1, lambda a: (a * a + 1.0) ** -0.5),
    "tanh": (1, lambda a: a.tanh()),
    "relu": (1, lambda a: a.relu()),
    "sigmoid": (1, lambda a: a.sigmoid()),
    "exp": (1, lambda a: (a.tanh() * 2.0).exp()),
    "log": (1, lambda a: (a * a + 0.1).log()),
    "sin": (1, lambda a: a.sin()),
    "cos": (1, lambda a: a.cos()),
}
TORCH_UNARY = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "exp": torch.exp,
               "log": torch.log, "sin": torch.sin, "cos": torch.cos}


class T:
    """A torch scalar with Value's method names, so one program drives both."""

    def __init__(self, t):
        self.t = t

    def _w(self, o):
        return o.t if isinstance(o, T) else o

    def __add__(self, o): return T(self.t + self._w(o))
    def __radd__(self, o): return T(o + self.t)
    def __sub__(self, o): return T(self.t - self._w(o))
    def __rsub__(self, o): return T(o - self.t)
    def __mul__(self, o): return T(self.t * self._w(o))
    def __rmul__(self, o): return T(o * self.t)
    def __truediv__(self, o): return T(self.t / self._w(o))
    def __rtruediv__(self, o): return T(o / self.t)
    def __neg__(self): return T(-self.t)
    def __pow__(self, n): return T(self.t**n)

    def __getattr__(self, name):
        return lambda: T(TORCH_UNARY[name](self.t))


program = st.lists(
    st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, 10**6), st.integers(0, 10**6)),
    min_size=1, max_size=25)
leaves = st.lists(st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 1e-3), min_size=1, max_size=4)


def run(program, pool):
    pool = list(pool)
    for op, i, j in program:
        arity, f = OPS[op]
        args = [pool[i % len(pool)], pool[j % len(pool)]][:arity]
        pool.append(f(*args))
    return pool[-1]


@settings(max_examples=200, deadline=None)
@given(program, leaves)
def test_random_expressions_match_torch(prog, xs):
    vs = [Value(x) for x in xs]
    out = run(prog, vs)
    out.backward()
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    tout = run(prog, [T(t) for t in ts]).t
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-9, abs=1e-12)
    for v, t in zip(vs, ts):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert v.grad == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_reused_node_accumulates():
    a = Value(3.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0
    # the lecture's example: a used in two branches
    a, b = Value(-2.0), Value(3.0)
    d, e = a * b, a + b
    (d * e).backward()
    assert (a.grad, b.grad) == (-3.0, -8.0)


def test_deep_graph_has_no_recursion_limit():
    x = Value(0.5)
    y = x
    for _ in range(100_000):
        y = y + 0.0
    y = y * 2.0
    y.backward()
    assert x.grad == 2.0


@pytest.mark.parametrize("op, err", [
    (lambda: Value(1.0) / Value(0.0), ZeroDivisionError),
    (lambda: Value(1.0) / 0, ZeroDivisionError),
    (lambda: 1.0 / Value(0.0), ZeroDivisionError),
    (lambda: Value(0.0) ** -1, ZeroDivisionError),
    (lambda: Value(0.0).log(), ValueError),
    (lambda: Value(-1.0).log(), ValueError),
    (lambda: Value(2.0) ** Value(2.0), TypeError),
    (lambda: Value("three"), TypeError),
    (lambda: Value(Value(1.0)), TypeError),
])
def test_edge_cases_raise_clear_errors(op, err):
    with pytest.raises(err):
        op()


def test_reflected_operators_and_values():
    a = Value(4.0)
    assert (2 + a).data == 6.0 and (2 - a).data == -2.0 and (2 * a).data == 8.0
    assert (2 / a).data == 0.5 and (-a).data == -4.0 and (a - 1).data == 3.0
    s = (2 / a)
    s.backward()
    assert a.grad == pytest.approx(-2 / 16)


def test_activations_at_extremes():
    assert Value(1000.0).sigmoid().data == 1.0 and Value(-1000.0).sigmoid().data == 0.0
    x = Value(-1000.0)
    x.sigmoid().backward()
    assert x.grad == 0.0
    r = Value(-1.0)
    r.relu().backward()
    assert r.grad == 0.0
    assert Value(30.0).tanh().data == pytest.approx(1.0)


def test_mlp_parameter_count_and_order():
    random.seed(1337)
    model = MLP(2, [16, 16, 1])
    params = model.parameters()
    assert len(params) == 337
    # order: layer by layer, neuron by neuron, weights then bias
    first = model.layers[0].neurons[0]
    assert params[:3] == first.w + [first.b]
    assert params[-1] is model.layers[-1].neurons[0].b
    model.zero_grad()
    assert all(p.grad == 0.0 for p in params)


def test_mlp_matches_torch_forward_and_backward():
    random.seed(7)
    model = MLP(3, [4, 4, 1], activation="tanh")
    x = [0.5, -1.0, 2.0]
    out = model(x)
    out.backward()
    layers = model.layers
    xt = torch.tensor(x, dtype=torch.float64)
    Ws = [torch.tensor([n.w and [w.data for w in n.w] for n in L.neurons], dtype=torch.float64,
                       requires_grad=True) for L in layers]
    bs = [torch.tensor([n.b.data for n in L.neurons], dtype=torch.float64, requires_grad=True)
          for L in layers]
    h = xt
    for k, (W, b) in enumerate(zip(Ws, bs)):
        h = W @ h + b
        if k < len(layers) - 1:
            h = torch.tanh(h)
    h.sum().backward()
    assert out.data == pytest.approx(h.item(), rel=1e-12)
    for L, W in zip(layers, Ws):
        for n, row in zip(L.neurons, W.grad):
            assert [w.grad for w in n.w] == pytest.approx(row.tolist(), rel=1e-10)


def test_make_moons_equals_sklearn():
    sk = pytest.importorskip("sklearn.datasets")
    np.random.seed(1337)
    X, y = make_moons(100, noise=0.1)
    np.random.seed(1337)
    X2, y2 = sk.make_moons(n_samples=100, noise=0.1)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_same_numbers_as_micrograd_package():
    mg_engine = pytest.importorskip("micrograd.engine")
    mg_nn = pytest.importorskip("micrograd.nn")
    np.random.seed(1337)
    X, y = make_moons(20, noise=0.1)
    y = y * 2 - 1
    random.seed(1337)
    ours = MLP(2, [16, 16, 1])
    random.seed(1337)
    theirs = mg_nn.MLP(2, [16, 16, 1])
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    h1 = train_moons(ours, X, y, steps=3)
    h2 = train_moons(theirs, X, y, steps=3, value=mg_engine.Value)
    for (l1, a1), (l2, a2) in zip(h1, h2):
        assert abs(l1 - l2) < 1e-12 and a1 == a2
    for p, q in zip(ours.parameters(), theirs.parameters()):
        assert p.data == pytest.approx(q.data, abs=1e-12)


@pytest.mark.slow
def test_moons_demo_reaches_the_packages_result():
    np.random.seed(1337)
    random.seed(1337)
    X, y = make_moons(100, noise=0.1)
    model = MLP(2, [16, 16, 1])
    history = train_moons(model, X, y * 2 - 1)
    loss, acc = history[-1]
    assert loss == pytest.approx(0.010978, abs=5e-7) and acc == 1.0


def test_svm_loss_value():
    random.seed(0)
    model = MLP(2, [3, 1])
    X, y = [[1.0, 2.0], [-1.0, 0.5]], [1, -1]
    loss, acc = svm_loss(model, X, y, alpha=0.0)
    scores = [model(x).data for x in X]
    expected = sum(max(0.0, 1 - yi * s) for yi, s in zip(y, scores)) / 2
    assert loss.data == pytest.approx(expected)
    assert acc == sum((yi > 0) == (s > 0) for yi, s in zip(y, scores)) / 2


def test_draw_dot_shows_every_value_and_op():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    d = (c + a).tanh()
    d.backward()
    dot = draw_dot(d)
    src = dot.source
    for text in ("a | data 2.0000", "b | data -3.0000", "c | data -6.0000", 'label="*"',
                 'label="+"', 'label=tanh', f"grad {1 - math.tanh(-4.0) ** 2:.4f}"):
        assert text in src, text
    assert src.count("shape=record") == 5
    with pytest.raises(ValueError):
        draw_dot(d, rankdir="XY")
    svg = dot.pipe(format="svg")
    assert svg.startswith(b"<?xml") or b"<svg" in svg[:500]
