"""zth.micrograd's two engines against PyTorch autograd (the oracle), each other, and micrograd 0.1.0."""

import math
import random
import sys
import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from zth.micrograd import MLP, Neuron, Value, draw_dot, fast, make_moons, svm_loss, train_moons
from zth.micrograd import engine as lecture
from zth.micrograd.race import Race, max_loss_difference

ENGINES = {"lecture": lecture.Value, "fast": fast.Value}
both_engines = pytest.mark.parametrize("V", [lecture.Value, fast.Value], ids=["lecture", "fast"])

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
    "exp": (1, lambda a: (a.tanh() * 2.0).exp()),
    "log": (1, lambda a: (a * a + 0.1).log()),
}
FAST_ONLY = {  # operations the lecture engine does not have
    "sum": (2, lambda a, b: type(a).sum([a, b, a, 0.5])),
    "sigmoid": (1, lambda a: a.sigmoid()),
    "sin": (1, lambda a: a.sin()),
    "cos": (1, lambda a: a.cos()),
    "neuron": (2, lambda a, b: fast.Value.neuron([a, b, 0.5], b, [b, 2.0, a], "relu")
               if isinstance(a, fast.Value) else (b + a * b + 2.0 * b + 0.5 * a).relu()),
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

    @staticmethod
    def sum(ts):
        out = ts[0]
        for t in ts[1:]:
            out = out + t
        return out

    def __getattr__(self, name):
        return lambda: T(TORCH_UNARY[name](self.t))


def program(ops):
    return st.lists(st.tuples(st.sampled_from(sorted(ops)), st.integers(0, 10**6), st.integers(0, 10**6)),
                    min_size=1, max_size=25)


leaves = st.lists(st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 1e-3), min_size=1, max_size=4)


def run(program, pool, ops):
    pool = list(pool)
    for op, i, j in program:
        arity, f = ops[op]
        args = [pool[i % len(pool)], pool[j % len(pool)]][:arity]
        pool.append(f(*args))
    return pool[-1]


def check_against_torch(V, prog, xs, ops):
    vs = [V(x) for x in xs]
    out = run(prog, vs, ops)
    out.backward()
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    tout = run(prog, [T(t) for t in ts], ops).t
    tout.backward()
    assert out.data == pytest.approx(tout.item(), rel=1e-9, abs=1e-12)
    for v, t in zip(vs, ts):
        expected = 0.0 if t.grad is None else t.grad.item()
        assert v.grad == pytest.approx(expected, rel=1e-7, abs=1e-9)
    return vs, out


@settings(max_examples=150, deadline=None)
@given(program(OPS), leaves)
def test_lecture_engine_matches_torch_on_random_expressions(prog, xs):
    check_against_torch(lecture.Value, prog, xs, OPS)


@settings(max_examples=150, deadline=None)
@given(program({**OPS, **FAST_ONLY}), leaves)
def test_fast_engine_matches_torch_on_random_expressions(prog, xs):
    check_against_torch(fast.Value, prog, xs, {**OPS, **FAST_ONLY})


@settings(max_examples=100, deadline=None)
@given(program(OPS), leaves)
def test_the_two_engines_agree_to_the_last_bit_on_random_expressions(prog, xs):
    outs = []
    for V in (lecture.Value, fast.Value):
        vs = [V(x) for x in xs]
        out = run(prog, vs, OPS)
        out.backward()
        outs.append((out.data, [v.grad for v in vs]))
    assert outs[0] == outs[1]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.sampled_from(["relu", "tanh", "linear"]), st.randoms(use_true_random=False),
       st.floats(-3, 3))
def test_a_fused_neuron_equals_the_lectures_neuron_bit_for_bit(n, activation, rng, upstream):
    w, x = [rng.uniform(-1, 1) for _ in range(n)], [rng.uniform(-2, 2) for _ in range(n)]
    b = rng.uniform(-1, 1)
    results = []
    for V in (lecture.Value, fast.Value):
        ws, xs, bv = [V(v) for v in w], [V(v) for v in x], V(b)
        if V is fast.Value:
            out = V.neuron(ws, bv, xs, activation)
        else:
            act = sum((wi * xi for wi, xi in zip(ws, xs)), bv)
            out = act if activation == "linear" else getattr(act, activation)()
        (out * upstream).backward()
        results.append((out.data, [v.grad for v in ws + xs + [bv]]))
    assert results[0] == results[1]


def test_value_sum_equals_the_chain_of_additions_bit_for_bit():
    rng = random.Random(0)
    for _ in range(50):
        xs = [rng.uniform(-1e6, 1e6) for _ in range(rng.randint(1, 30))]
        terms = [fast.Value(x) for x in xs]
        fused = fast.Value.sum(terms)
        chain = terms[0]
        for t in terms[1:]:
            chain = chain + t
        assert fused.data == chain.data
        (fused * 3.0).backward()
        assert all(t.grad == 3.0 for t in terms)
    with pytest.raises(ValueError):
        fast.Value.sum([])


@both_engines
def test_reused_node_accumulates(V):
    a = V(3.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0
    a = V(3.0)
    (a * a).backward()
    assert a.grad == 6.0
    # the lecture's example: a used in two branches
    a, b = V(-2.0), V(3.0)
    d, e = a * b, a + b
    (d * e).backward()
    assert (a.grad, b.grad) == (-3.0, -8.0)


@both_engines
def test_a_100000_node_chain_backpropagates_without_recursion_error(V):
    x = V(0.5)
    y = x
    for _ in range(100_000):
        y = y + 0.0
    y = y * 2.0
    y.backward()
    assert x.grad == 2.0


@both_engines
def test_arithmetic_with_plain_numbers_on_either_side(V):
    a = V(4.0)
    assert (2 + a).data == 6.0 and (a + 2).data == 6.0
    assert (2 - a).data == -2.0 and (a - 1).data == 3.0
    assert (2 * a).data == 8.0 and (a * 2).data == 8.0
    assert (2 / a).data == 0.5 and (a / 2).data == 2.0
    assert (-a).data == -4.0 and (a**2).data == 16.0
    for expr, grad in [(lambda v: 2 / v, -2 / 16), (lambda v: 3 - v, -1.0), (lambda v: 5 * v + 1, 5.0),
                       (lambda v: v / 4 - 2, 0.25), (lambda v: 1 + v**3, 48.0)]:
        v = V(4.0)
        expr(v).backward()
        assert v.grad == grad
    with pytest.raises(TypeError):
        V(2.0) ** V(2.0)


def test_the_fast_engine_rejects_what_is_not_a_number():
    with pytest.raises(TypeError):
        fast.Value("three")
    with pytest.raises(TypeError):
        fast.Value(fast.Value(1.0))
    with pytest.raises(ValueError, match="2 weights got 3 inputs"):
        fast.Value.neuron([1.0, 2.0], fast.Value(0.0), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="activation"):
        fast.Value.neuron([1.0], fast.Value(0.0), [1.0], "gelu")


# ---- the rule for numbers outside an operation's domain: what a torch.float64 tensor gives ----
DOMAIN_CASES = {  # name: (input, function)
    "sqrt of a negative": (-4.0, lambda v: v**0.5),
    "sqrt at 0 (infinite slope)": (0.0, lambda v: v**0.5),
    "0 to a negative power": (0.0, lambda v: v**-1),
    "-0 to a negative odd power": (-0.0, lambda v: v**-1),
    "1 / 0": (0.0, lambda v: 1.0 / v),
    "0 / 0": (0.0, lambda v: v / v),
    "exp past the float range": (1000.0, lambda v: v.exp()),
    "power past the float range": (10.0, lambda v: v**400),
    "log of 0": (0.0, lambda v: v.log()),
    "log of a negative": (-1.0, lambda v: v.log()),
    "tanh of inf": (math.inf, lambda v: v.tanh()),
    "exp of -inf": (-math.inf, lambda v: v.exp()),
}


def same_float(a: float, b: float) -> bool:
    """Equal, or both nan."""
    return (a == b) or (math.isnan(a) and math.isnan(b))


@both_engines
@pytest.mark.parametrize("case", sorted(DOMAIN_CASES))
def test_domain_errors_give_what_torch_gives_in_forward_and_backward(V, case):
    x, f = DOMAIN_CASES[case]
    v = V(x)
    out = f(v)
    assert isinstance(out.data, float), f"{case}: {out.data!r} is not a float"
    out.backward()
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tout = f(T(t)).t
    tout.backward()
    assert same_float(out.data, tout.item()), (case, out.data, tout.item())
    assert same_float(v.grad, t.grad.item()), (case, v.grad, t.grad.item())


@pytest.mark.parametrize("case", [("sin", math.inf), ("cos", -math.inf)])
def test_fast_engine_sin_and_cos_of_inf_are_nan_as_in_torch(case):
    name, x = case
    v = fast.Value(x)
    out = getattr(v, name)()
    out.backward()
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    getattr(torch, name)(t).backward()
    assert math.isnan(out.data) and math.isnan(v.grad) and math.isnan(t.grad.item())


@pytest.mark.parametrize("upstream", [math.inf, math.nan, -2.0])
def test_a_dead_relu_neuron_passes_back_what_the_lecture_engine_does(upstream):
    """The fast engine skips a dead ReLU's zeros; with a non-finite gradient it must not."""
    grads = []
    for V in (lecture.Value, fast.Value):
        ws, xs, b = [V(0.5), V(-1.0)], [V(-2.0), V(3.0)], V(0.1)
        if V is fast.Value:
            out = V.neuron(ws, b, xs, "relu")
        else:
            out = sum((wi * xi for wi, xi in zip(ws, xs)), b).relu()
        assert out.data == 0.0
        (out * upstream).backward()
        grads.append([v.grad for v in ws + xs + [b]])
    assert all(same_float(a, b) for a, b in zip(*grads)), grads


@both_engines
def test_activations_at_extremes(V):
    r = V(-1.0)
    r.relu().backward()
    assert r.grad == 0.0
    assert V(30.0).tanh().data == pytest.approx(1.0)
    if V is fast.Value:
        assert V(1000.0).sigmoid().data == 1.0 and V(-1000.0).sigmoid().data == 0.0
        x = V(-1000.0)
        x.sigmoid().backward()
        assert x.grad == 0.0


# ---- the network library, on both engines ----
@pytest.mark.parametrize("engine", ["lecture", "fast"])
def test_mlp_parameter_count_and_order(engine):
    random.seed(1337)
    model = MLP(2, [16, 16, 1], engine=engine)
    params = model.parameters()
    assert len(params) == 337 and all(type(p) is ENGINES[engine] for p in params)
    first = model.layers[0].neurons[0]
    assert params[:3] == first.w + [first.b]
    assert params[-1] is model.layers[-1].neurons[0].b
    for p in params:
        p.grad = 1.0
    model.zero_grad()
    assert all(p.grad == 0.0 for p in params)
    with pytest.raises(ValueError):
        MLP(2, [1], engine="slow")


@pytest.mark.parametrize("engine", ["lecture", "fast"])
def test_mlp_matches_torch_forward_and_backward(engine):
    random.seed(7)
    model = MLP(3, [4, 4, 1], activation="tanh", engine=engine)
    x = [0.5, -1.0, 2.0]
    out = model(x)  # plain floats in
    out.backward()
    layers = model.layers
    xt = torch.tensor(x, dtype=torch.float64)
    Ws = [torch.tensor([[w.data for w in n.w] for n in L.neurons], dtype=torch.float64, requires_grad=True)
          for L in layers]
    bs = [torch.tensor([n.b.data for n in L.neurons], dtype=torch.float64, requires_grad=True)
          for L in layers]
    h = xt
    for k, (W, b) in enumerate(zip(Ws, bs)):
        h = W @ h + b
        if k < len(layers) - 1:
            h = torch.tanh(h)
    h.sum().backward()
    assert out.data == pytest.approx(h.item(), rel=1e-12)
    for L, W, b in zip(layers, Ws, bs):
        for n, row, bg in zip(L.neurons, W.grad, b.grad):
            assert [w.grad for w in n.w] == pytest.approx(row.tolist(), rel=1e-10)
            assert n.b.grad == pytest.approx(bg.item(), rel=1e-10)


def test_make_moons_equals_sklearn():
    sk = pytest.importorskip("sklearn.datasets")
    np.random.seed(1337)
    X, y = make_moons(100, noise=0.1)
    np.random.seed(1337)
    X2, y2 = sk.make_moons(n_samples=100, noise=0.1)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def moons_data(n):
    np.random.seed(1337)
    X, y = make_moons(n, noise=0.1)
    return X.tolist(), (y * 2 - 1).tolist()


def test_the_two_engines_agree_step_for_step_on_the_moons_demo():
    X, y = moons_data(100)
    histories, params = [], []
    for engine in ("lecture", "fast"):
        random.seed(1337)
        model = MLP(2, [16, 16, 1], engine=engine)
        histories.append(train_moons(model, X, y, steps=4))
        params.append([p.data for p in model.parameters()])
    assert histories[0] == histories[1]  # every loss and accuracy, to the last bit
    assert params[0] == params[1]


def test_same_numbers_as_the_micrograd_package():
    """Bit for bit once micrograd's children are kept in order; as published, to within rounding."""
    pytest.importorskip("micrograd.engine")
    runs = Race(["fast", "micrograd", "micrograd-ordered"], steps=3, parallel=True).results()
    assert runs["fast"]["history"] == runs["micrograd-ordered"]["history"]
    assert max_loss_difference(runs["fast"], runs["micrograd"]) < 1e-12
    assert [a for _, a in runs["fast"]["history"]] == [a for _, a in runs["micrograd"]["history"]]


@pytest.mark.slow
def test_moons_demo_reaches_the_packages_result():
    X, y = moons_data(100)
    random.seed(1337)
    model = MLP(2, [16, 16, 1], engine="fast")
    loss, acc = train_moons(model, X, y)[-1]
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


@both_engines
def test_draw_dot_shows_every_value_and_op(V):
    a, b = V(2.0, label="a"), V(-3.0, label="b")
    c = a * b
    c.label = "c"
    d = (c + a).tanh() ** 2
    d.backward()
    dot = draw_dot(d)
    src = dot.source
    t = math.tanh(-4.0)
    for text in ("a | data 2.0000", "b | data -3.0000", "c | data -6.0000", 'label="*"', 'label="+"',
                 "label=tanh", 'label="**2"', f"grad {2 * t * (1 - t**2):.4f}"):
        assert text in src, text
    assert src.count("shape=record") == 6
    with pytest.raises(ValueError):
        draw_dot(d, rankdir="XY")
    svg = dot.pipe(format="svg")
    assert svg.startswith(b"<?xml") or b"<svg" in svg[:500]


def test_draw_dot_shows_a_fused_neuron_with_all_its_operands():
    out = fast.Value.neuron([fast.Value(1.0), fast.Value(2.0)], fast.Value(0.5), [fast.Value(3.0), 4.0])
    src = draw_dot(out).source
    assert src.count("shape=record") == 6 and "neuron·ReLU" in src


# ---- micrograd's public API, as the lecture uses it, runs unchanged on zth ----
README = """
from micrograd.engine import Value

a = Value(-4.0)
b = Value(2.0)
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + (b + a).relu()
d += 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
g.backward()
"""

DEMO = """
from micrograd.engine import Value
from micrograd.nn import Neuron, Layer, MLP

model = MLP(2, [16, 16, 1])

def loss(batch_size=None):
    Xb, yb = X, y
    inputs = [list(map(Value, xrow)) for xrow in Xb]
    scores = list(map(model, inputs))
    losses = [(1 + -yi*scorei).relu() for yi, scorei in zip(yb, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    alpha = 1e-4
    reg_loss = alpha * sum((p*p for p in model.parameters()))
    total_loss = data_loss + reg_loss
    accuracy = [(yi > 0) == (scorei.data > 0) for yi, scorei in zip(yb, scores)]
    return total_loss, sum(accuracy) / len(accuracy)

history = []
for k in range(3):
    total_loss, acc = loss()
    model.zero_grad()
    total_loss.backward()
    learning_rate = 1.0 - 0.9*k/100
    for p in model.parameters():
        p.data -= learning_rate * p.grad
    history.append((total_loss.data, acc))
"""


def as_micrograd(monkeypatch, value_module, nn_module):
    """Make ``import micrograd.engine`` / ``micrograd.nn`` find the given modules."""
    package = types.ModuleType("micrograd")
    package.engine, package.nn = value_module, nn_module
    for name, module in (("micrograd", package), ("micrograd.engine", value_module),
                         ("micrograd.nn", nn_module)):
        monkeypatch.setitem(sys.modules, name, module)


@both_engines
def test_micrograds_readme_example_runs_unchanged(V, monkeypatch):
    engine = types.ModuleType("micrograd.engine")
    engine.Value = V
    as_micrograd(monkeypatch, engine, sys.modules["zth.micrograd.nn"])
    scope = {}
    exec(README, scope)
    # the numbers micrograd's README prints
    assert f"{scope['g'].data:.4f}" == "24.7041"
    assert f"{scope['a'].grad:.4f}" == "138.8338" and f"{scope['b'].grad:.4f}" == "645.5773"


def test_micrograds_demo_training_step_runs_unchanged_and_agrees_with_micrograd(monkeypatch):
    mg_engine = pytest.importorskip("micrograd.engine")
    mg_nn = pytest.importorskip("micrograd.nn")
    X, y = moons_data(20)
    runs = {}
    for name, modules in (("micrograd", (mg_engine, mg_nn)),
                          ("zth", (sys.modules["zth.micrograd.engine"], sys.modules["zth.micrograd.nn"]))):
        with monkeypatch.context() as m:
            as_micrograd(m, *modules)
            random.seed(1337)
            scope = {"X": X, "y": y}
            exec(DEMO, scope)
            runs[name] = scope
    model = runs["zth"]["model"]
    assert isinstance(model, MLP) and isinstance(model.layers[0].neurons[0], Neuron)
    for (l1, a1), (l2, a2) in zip(runs["zth"]["history"], runs["micrograd"]["history"], strict=True):
        assert l1 == pytest.approx(l2, rel=1e-12) and a1 == a2
    assert isinstance(model([2.0, -1.0]), Value)  # model(x) on a list of floats
