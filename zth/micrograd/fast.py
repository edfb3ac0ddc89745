"""The lecture's engine (``zth.micrograd.engine``) rebuilt for speed, with the same public API.

Same numbers, bit for bit: every operation does the lecture's float arithmetic in the lecture's
order, and gradients are added up in the same order. What changes is the bookkeeping, where
the closure version spends most of its time:

* No closures. Each node's local derivative is a plain function in ``_BACKWARD``, looked up by
  ``_op``; the closure engine allocates a function per node, and each closure refers back to its
  node, so every step leaves the whole graph behind as a reference cycle that only Python's
  cyclic garbage collector can free (after walking it, again and again). Here the graph is a
  DAG: reference counting frees it the moment the loss goes out of scope.
* Small nodes. ``__slots__`` instead of a ``__dict__``; operands in two slots (``_a``, ``_b``)
  rather than a tuple; ``_result`` builds a node without going through ``__init__``.
* Fewer nodes. ``Value.neuron`` computes ``act(b + Σ wᵢxᵢ)`` as one node where the lecture's
  ``Neuron`` makes 2n + 1 (a product and a sum per input, then the activation); ``Value.sum``
  adds n terms as one node. The arithmetic inside stays the lecture's, product by product and
  left to right, so the results do not change by a bit.
* The same order. ``backward`` sorts the graph with the lecture's depth-first search (an
  explicit stack, so no recursion limit), so every node's gradient is added up in the lecture
  engine's order; with a tenth of the nodes to visit, the sort is cheap too.

Numbers outside an operation's domain follow the lecture engine's rule (``zth.micrograd.ieee``).
"""

from __future__ import annotations

import math
from functools import reduce
from numbers import Number
from operator import add, attrgetter, mul

from zth.micrograd import ieee

_data = attrgetter("data")
ACTIVATIONS = ("relu", "tanh", "linear")


class Value:
    """A scalar that remembers how it was computed, so that it can backpropagate."""

    __slots__ = ("data", "grad", "_a", "_b", "_op", "_label")

    def __init__(self, data: float, _a: Value | None = None, _b=None, _op: str = "", label: str = ""):
        self.data = data if type(data) is float else _as_float(data)
        self.grad = 0.0
        self._a = _a  # first operand (None for a leaf); for "sum" the tuple of all terms
        self._b = _b  # second operand; for "**" the exponent; None for one-operand ops
        self._op = _op
        if label:
            self._label = label

    # ---- operations: each computes its output and records how ----
    def __add__(self, other) -> Value:
        if other.__class__ is not Value:
            other = other if isinstance(other, Value) else Value(other)
        out = _new(Value)  # _result(self.data + other.data, self, other, "+"), inlined: a hot path
        out.data = self.data + other.data
        out.grad = 0.0
        out._a = self
        out._b = other
        out._op = "+"
        return out

    def __mul__(self, other) -> Value:
        if other.__class__ is not Value:
            other = other if isinstance(other, Value) else Value(other)
        out = _new(Value)  # inlined, as in __add__
        out.data = self.data * other.data
        out.grad = 0.0
        out._a = self
        out._b = other
        out._op = "*"
        return out

    @staticmethod
    def sum(terms) -> Value:
        """``terms[0] + terms[1] + ...`` as one node of n operands instead of n - 1 nodes of two.

        The arithmetic is the same, left to right, so the result equals the chain of ``+``
        bit for bit, and so do the gradients: an addition passes ``out.grad`` to every term.
        """
        terms = _values(terms)
        if not terms:
            raise ValueError("Value.sum needs at least one term")
        return _result(reduce(add, map(_data, terms)), terms, None, "sum")

    @staticmethod
    def neuron(w, b: Value, x, activation: str = "relu") -> Value:
        """``act(b + w[0]*x[0] + w[1]*x[1] + ...)`` as one node: the lecture's ``Neuron``, fused.

        The products and the left-to-right sum are the lecture's float operations, so the
        output and every gradient equal those of the 2n + 1 nodes the lecture builds, bit for bit.
        """
        w, x = tuple(w), tuple(x)
        if len(w) != len(x):
            raise ValueError(f"a neuron with {len(w)} weights got {len(x)} inputs")
        try:  # b + w0*x0 + w1*x1 + ..., every product and sum in C, none of them a node
            act = reduce(add, map(mul, map(_data, w), map(_data, x)), b.data)
        except AttributeError:  # plain numbers among them: wrap them, as ``*`` and ``+`` would
            w, x, (b,) = _values(w), _values(x), _values((b,))
            act = reduce(add, map(mul, map(_data, w), map(_data, x)), b.data)
        if activation == "relu":
            if act > 0 or act != act:  # alive (or nan): the gradient flows back
                return _result(act, (b, *w), x, "neuron·ReLU")
            if act == -math.inf:  # the gradient will be 0 times inf, which is nan: keep it
                return _result(0.0, (b, *w), x, "neuron·ReLU")
            return _result(0.0, (b, *w), x, "neuron·ReLU(dead)")  # it passes back zeros
        if activation == "tanh":
            return _result(math.tanh(act), (b, *w), x, "neuron·tanh")
        if activation == "linear":
            return _result(act, (b, *w), x, "neuron")
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")

    def __pow__(self, n: float) -> Value:
        if not isinstance(n, (int, float)):
            raise TypeError(f"Value ** only supports int/float exponents, got {type(n).__name__}")
        return _result(ieee.power(self.data, n), self, n, "**")

    def exp(self) -> Value:
        return _result(ieee.exp(self.data), self, None, "exp")

    def log(self) -> Value:
        return _result(ieee.log(self.data), self, None, "log")

    def sin(self) -> Value:
        return _result(ieee.sin(self.data), self, None, "sin")

    def cos(self) -> Value:
        return _result(ieee.cos(self.data), self, None, "cos")

    def tanh(self) -> Value:
        return _result(math.tanh(self.data), self, None, "tanh")

    def relu(self) -> Value:
        return _result(0.0 if self.data < 0 else self.data, self, None, "ReLU")

    def sigmoid(self) -> Value:
        x = self.data  # written so that neither branch can overflow
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return _result(s, self, None, "sigmoid")

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The operands, in order (the same node twice for ``x * x``)."""
        return _operands(self)

    @property
    def label(self) -> str:
        return getattr(self, "_label", "")

    @label.setter
    def label(self, text: str) -> None:
        self._label = text

    # ---- everything else is built from the operations above, as in the lecture ----
    def __neg__(self) -> Value:  # -self
        return self * -1

    def __sub__(self, other) -> Value:  # self - other
        return self + (-other)

    def __truediv__(self, other) -> Value:  # self / other
        other = other if isinstance(other, Value) else Value(other)
        return self * other**-1

    def __radd__(self, other) -> Value:  # other + self
        return self + other

    def __rsub__(self, other) -> Value:  # other - self
        return other + (-self)

    def __rmul__(self, other) -> Value:  # other * self
        return self * other

    def __rtruediv__(self, other) -> Value:  # other / self
        return Value(other) * self**-1

    # ---- the chain rule over the whole graph ----
    def backward(self) -> None:
        """Add d(self)/d(node) to ``grad`` of every node reachable from ``self``.

        Like PyTorch and micrograd, leaves accumulate: call ``zero_grad()`` between steps.
        """
        topo = topological_order(self)
        self.grad = 1.0
        backward = _BACKWARD
        for v in reversed(topo):
            op = v._op
            if op:
                backward[op](v)

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"


def _result(data: float, a, b, op: str) -> Value:
    """A new node ``op(a, b) = data`` (the fast path of ``Value(data, a, b, op)``)."""
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out._a = a
    out._b = b
    out._op = op
    return out


_new = object.__new__


def _as_float(x) -> float:
    if isinstance(x, Value):
        raise TypeError("Value(Value(...)): pass the number, not another Value")
    if not isinstance(x, Number) and not hasattr(x, "__float__"):
        raise TypeError(f"Value needs a number, got {type(x).__name__}")
    return float(x)


def _values(xs) -> tuple[Value, ...]:
    """``xs`` as a tuple of Values, numbers wrapped (as the lecture's operators wrap them)."""
    xs = tuple(xs)
    for x in xs:
        if x.__class__ is not Value:
            return tuple(x if isinstance(x, Value) else Value(x) for x in xs)
    return xs


def _operands(node: Value) -> tuple[Value, ...]:
    a, b = node._a, node._b
    if a is None:  # a leaf
        return ()
    if a.__class__ is tuple:  # "sum": the terms; "neuron": (b, w0, w1, ...) and (x0, x1, ...)
        return a if b is None else a + b
    return (a, b) if b.__class__ is Value or isinstance(b, Value) else (a,)  # b may be an exponent


def topological_order(root: Value) -> list[Value]:
    """Nodes reachable from ``root``, each after all of its operands.

    The lecture's depth-first search on an explicit stack (no recursion limit), so the order,
    and with it the order in which ``backward`` adds up each node's gradient, is the lecture
    engine's for the same graph.
    """
    topo, visited = [], {root}
    stack = [(root, iter(_operands(root)))]
    push, pop, mark, place = stack.append, stack.pop, visited.add, topo.append
    while stack:
        node, operands = stack[-1]
        for child in operands:
            if child not in visited:
                mark(child)
                push((child, iter(_operands(child))))
                break
        else:  # every operand of node is placed: place node
            pop()
            place(node)
    return topo


# ---- local derivatives: out = f(a, b); a.grad += d(out)/d(a) * out.grad, same for b ----
def _add_backward(out: Value) -> None:
    out._a.grad += out.grad
    out._b.grad += out.grad


def _sum_backward(out: Value) -> None:
    g = out.grad
    for t in out._a:
        t.grad += g


def _mul_backward(out: Value) -> None:
    a, b = out._a, out._b
    a.grad += b.data * out.grad
    b.grad += a.data * out.grad


def _neuron_backward(out: Value, g: float) -> None:
    """The lecture's sum-of-products backward: each product in turn, from the last to the first."""
    bw, x = out._a, out._b  # (b, w0, w1, ...), (x0, x1, ...)
    for wi, xi in zip(reversed(bw), reversed(x)):  # w[n-1] and x[n-1] first; zip stops before b
        wi.grad += xi.data * g
        xi.grad += wi.data * g
    bw[0].grad += g


def _neuron_linear_backward(out: Value) -> None:
    _neuron_backward(out, out.grad)


def _neuron_relu_backward(out: Value) -> None:
    _neuron_backward(out, (out.data > 0) * out.grad)


def _neuron_tanh_backward(out: Value) -> None:
    _neuron_backward(out, (1 - out.data**2) * out.grad)


def _pow_backward(out: Value) -> None:
    a, n = out._a, out._b
    a.grad += (n * ieee.power(a.data, n - 1)) * out.grad


def _exp_backward(out: Value) -> None:
    out._a.grad += out.data * out.grad


def _log_backward(out: Value) -> None:
    out._a.grad += ieee.divide(out.grad, out._a.data)


def _sin_backward(out: Value) -> None:
    out._a.grad += ieee.cos(out._a.data) * out.grad


def _cos_backward(out: Value) -> None:
    out._a.grad += -ieee.sin(out._a.data) * out.grad


def _tanh_backward(out: Value) -> None:
    out._a.grad += (1 - out.data**2) * out.grad


def _relu_backward(out: Value) -> None:
    out._a.grad += (out.data > 0) * out.grad


def _sigmoid_backward(out: Value) -> None:
    out._a.grad += out.data * (1 - out.data) * out.grad


def _dead_relu_backward(out: Value) -> None:
    """A dead ReLU on finite inputs passes back zeros, which change no sum: skip them.

    Only a non-finite ``out.grad`` makes a difference (0 * inf is nan), as in the lecture's engine.
    """
    g = out.grad
    if g - g != 0.0:  # inf or nan
        _neuron_backward(out, (out.data > 0) * g)


_BACKWARD = {
    "+": _add_backward, "sum": _sum_backward, "*": _mul_backward, "**": _pow_backward, "exp": _exp_backward,
    "log": _log_backward, "sin": _sin_backward, "cos": _cos_backward, "tanh": _tanh_backward,
    "ReLU": _relu_backward, "sigmoid": _sigmoid_backward, "neuron": _neuron_linear_backward,
    "neuron·ReLU": _neuron_relu_backward, "neuron·tanh": _neuron_tanh_backward,
    "neuron·ReLU(dead)": _dead_relu_backward,
}
