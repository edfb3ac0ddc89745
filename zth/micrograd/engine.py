"""A scalar autograd engine: micrograd's ``Value``, rebuilt for speed without losing its shape.

Every ``Value`` holds a number (``data``), the derivative of the final output with respect to
it (``grad``), the ``Value`` objects it was computed from (``_prev``) and the operation that
did it (``_op``). ``backward()`` orders the graph topologically and applies the chain rule
from the output back to the leaves, one local derivative per operation.

Where the speed comes from, compared with micrograd:

* No closures. micrograd gives every node a ``_backward`` closure that refers back to the node,
  so each training step leaves the whole graph behind as one big reference cycle for Python's
  cyclic garbage collector. Here each operation's local derivative is a plain function in
  ``_BACKWARD``, looked up by ``_op``: the graph is a DAG that reference counting frees as soon
  as the loss goes out of scope.
* Small nodes. ``__slots__``, operands in two slots rather than a set or tuple, and a
  construction path (``_result``) that skips ``__init__``'s argument handling.
* A cheap topological order. Creation order already is one, so ``backward`` collects the
  reachable nodes iteratively (no recursion limit) and sorts them by creation number.
* ``Value.sum``: an addition of n terms as one node. ``Neuron`` uses it for ``b + Σ wᵢxᵢ``;
  every product is still its own node, and the arithmetic is the same, bit for bit.
"""

from __future__ import annotations

import itertools
import math
from numbers import Number
from operator import attrgetter

_counter = itertools.count()
_creation_number = attrgetter("_n")


class Value:
    """A scalar that remembers how it was computed, so that it can backpropagate."""

    __slots__ = ("data", "grad", "_a", "_b", "_op", "_n", "_label")

    def __init__(self, data: float, _a: Value | None = None, _b=None, _op: str = "", label: str = ""):
        self.data = data if type(data) is float else _as_float(data)
        self.grad = 0.0
        self._a = _a  # first operand (None for a leaf); for "sum" the tuple of all terms
        self._b = _b  # second operand; for "**" the exponent; None for one-operand ops
        self._op = _op
        self._n = next(_counter)  # creation number: operands are always older than results
        if label:
            self._label = label

    # ---- operations: each computes its output and records how ----
    def __add__(self, other) -> Value:
        if not isinstance(other, Value):
            other = Value(other)
        out = _new(Value)  # _result(self.data + other.data, self, other, "+"), inlined: a hot path
        out.data = self.data + other.data
        out.grad = 0.0
        out._a = self
        out._b = other
        out._op = "+"
        out._n = next(_counter)
        return out

    def __mul__(self, other) -> Value:
        if not isinstance(other, Value):
            other = Value(other)
        out = _new(Value)  # _result(self.data * other.data, self, other, "*"), inlined: a hot path
        out.data = self.data * other.data
        out.grad = 0.0
        out._a = self
        out._b = other
        out._op = "*"
        out._n = next(_counter)
        return out

    @staticmethod
    def sum(terms) -> Value:
        """``terms[0] + terms[1] + ...`` as one node of n operands instead of n - 1 nodes of two.

        The arithmetic is the same, left to right, so the result equals the chain of ``+``
        bit for bit, and so do the gradients: an addition passes ``out.grad`` to every term.
        """
        terms = tuple(terms)
        if set(map(type, terms)) != {Value}:  # numbers (or subclasses) among the terms
            terms = tuple(t if isinstance(t, Value) else Value(t) for t in terms)
        if not terms:
            raise ValueError("Value.sum needs at least one term")
        acc = terms[0].data
        for t in terms[1:]:
            acc += t.data
        return _result(acc, terms, None, "sum")

    def __pow__(self, n: float) -> Value:
        if not isinstance(n, (int, float)):
            raise TypeError(f"Value ** only supports int/float exponents, got {type(n).__name__}")
        if self.data == 0 and n < 0:
            raise ZeroDivisionError("division by zero: Value(0.0) ** negative exponent")
        return _result(self.data**n, self, n, "**")

    def exp(self) -> Value:
        return _result(math.exp(self.data), self, None, "exp")

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log of a non-positive Value ({self.data})")
        return _result(math.log(self.data), self, None, "log")

    def sin(self) -> Value:
        return _result(math.sin(self.data), self, None, "sin")

    def cos(self) -> Value:
        return _result(math.cos(self.data), self, None, "cos")

    def tanh(self) -> Value:
        return _result(math.tanh(self.data), self, None, "tanh")

    def relu(self) -> Value:
        return _result(self.data if self.data > 0 else 0.0, self, None, "ReLU")

    def sigmoid(self) -> Value:
        x = self.data  # written so that neither branch can overflow
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return _result(s, self, None, "sigmoid")

    @property
    def _prev(self) -> tuple[Value, ...]:
        """The operands, in order (the same node twice for ``x * x``)."""
        if self._a is None:
            return ()
        if self._op == "sum":
            return self._a
        return (self._a, self._b) if isinstance(self._b, Value) else (self._a,)

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
            if v._op:
                backward[v._op](v)

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"


def _result(data: float, a: Value, b, op: str) -> Value:
    """A new node ``op(a, b) = data`` (the fast path of ``Value(data, a, b, op)``)."""
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out._a = a
    out._b = b
    out._op = op
    out._n = next(_counter)
    return out


_new = object.__new__


def _as_float(x) -> float:
    if isinstance(x, Value):
        raise TypeError("Value(Value(...)): pass the number, not another Value")
    if not isinstance(x, Number) and not hasattr(x, "__float__"):
        raise TypeError(f"Value needs a number, got {type(x).__name__}")
    return float(x)


def topological_order(root: Value) -> list[Value]:
    """Nodes reachable from ``root``, each after all of its operands.

    A node can only be created from operands that already exist, so creation order is a
    topological order: collect what is reachable (iteratively, so graphs of any depth work),
    then sort it by creation number.
    """
    seen = {root}
    stack = [root]
    while stack:
        node = stack.pop()
        a = node._a
        if a is None:  # a leaf
            continue
        if a.__class__ is tuple:  # "sum": all of its terms
            for term in a:
                if term not in seen:
                    seen.add(term)
                    stack.append(term)
            continue
        if a not in seen:
            seen.add(a)
            stack.append(a)
        b = node._b  # a second operand, an exponent, or None
        if (b.__class__ is Value or isinstance(b, Value)) and b not in seen:
            seen.add(b)
            stack.append(b)
    return sorted(seen, key=_creation_number)


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


def _pow_backward(out: Value) -> None:
    a, n = out._a, out._b
    a.grad += (n * a.data ** (n - 1)) * out.grad


def _exp_backward(out: Value) -> None:
    out._a.grad += out.data * out.grad


def _log_backward(out: Value) -> None:
    out._a.grad += out.grad / out._a.data


def _sin_backward(out: Value) -> None:
    out._a.grad += math.cos(out._a.data) * out.grad


def _cos_backward(out: Value) -> None:
    out._a.grad += -math.sin(out._a.data) * out.grad


def _tanh_backward(out: Value) -> None:
    out._a.grad += (1 - out.data**2) * out.grad


def _relu_backward(out: Value) -> None:
    out._a.grad += (out.data > 0) * out.grad


def _sigmoid_backward(out: Value) -> None:
    out._a.grad += out.data * (1 - out.data) * out.grad


_BACKWARD = {
    "+": _add_backward, "sum": _sum_backward, "*": _mul_backward, "**": _pow_backward, "exp": _exp_backward,
    "log": _log_backward, "sin": _sin_backward, "cos": _cos_backward, "tanh": _tanh_backward,
    "ReLU": _relu_backward, "sigmoid": _sigmoid_backward,
}
