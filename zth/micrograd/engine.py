"""A scalar autograd engine: micrograd's ``Value``, rebuilt for speed without losing its shape.

Every ``Value`` holds a number (``data``), the derivative of the final output with respect to
it (``grad``), the ``Value`` objects it was computed from (``_prev``) and the operation that
did it (``_op``). ``backward()`` orders the graph topologically and applies the chain rule
from the output back to the leaves, one local derivative per operation.

Unlike micrograd, a node does not keep a closure for its backward step: each operation's
local derivative is a small function in ``_BACKWARD``, looked up by ``_op``. A closure refers
back to its own node, so every training step of micrograd leaves a reference cycle of the whole
graph for Python's cyclic garbage collector to find; here the graph is a plain DAG that
reference counting frees the moment the loss goes out of scope. That, ``__slots__`` and an
iterative topological sort are where the speed comes from.
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

    __slots__ = ("data", "grad", "_prev", "_op", "_arg", "label", "_n")

    def __init__(self, data: float, _children: tuple = (), _op: str = "", _arg=None, label: str = ""):
        self.data = data if type(data) is float else _as_float(data)
        self.grad = 0.0
        self._prev = _children  # the operands, in order (a node may appear twice: x * x)
        self._op = _op
        self._arg = _arg  # the exponent of "**"
        self.label = label
        self._n = next(_counter)  # creation number: operands are always older than results

    # ---- operations: each computes its output and records how ----
    def __add__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), "+")

    def __mul__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), "*")

    def __pow__(self, n: float) -> Value:
        if not isinstance(n, (int, float)):
            raise TypeError(f"Value ** only supports int/float exponents, got {type(n).__name__}")
        if self.data == 0 and n < 0:
            raise ZeroDivisionError("division by zero: Value(0.0) ** negative exponent")
        return Value(self.data**n, (self,), "**", n)

    def exp(self) -> Value:
        return Value(math.exp(self.data), (self,), "exp")

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"log of a non-positive Value ({self.data})")
        return Value(math.log(self.data), (self,), "log")

    def sin(self) -> Value:
        return Value(math.sin(self.data), (self,), "sin")

    def cos(self) -> Value:
        return Value(math.cos(self.data), (self,), "cos")

    def tanh(self) -> Value:
        return Value(math.tanh(self.data), (self,), "tanh")

    def relu(self) -> Value:
        return Value(self.data if self.data > 0 else 0.0, (self,), "ReLU")

    def sigmoid(self) -> Value:
        x = self.data  # written so that neither branch can overflow
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        return Value(s, (self,), "sigmoid")

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


def _as_float(x) -> float:
    if isinstance(x, Value):
        raise TypeError("Value(Value(...)): pass the number, not another Value")
    if not isinstance(x, Number) and not hasattr(x, "__float__"):
        raise TypeError(f"Value needs a number, got {type(x).__name__}")
    return float(x)


def topological_order(root: Value) -> list[Value]:
    """Nodes reachable from ``root``, each after all of its operands.

    A node can only be created from operands that already exist, so creation order is a
    topological order: collect what is reachable, then sort it by creation number. This gives
    the same guarantee as the lecture's recursive ``build_topo`` without its recursion limit.
    """
    seen = {root}
    stack = [root]
    while stack:
        for child in stack.pop()._prev:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return sorted(seen, key=_creation_number)


# ---- local derivatives: out = f(operands); operand.grad += d(out)/d(operand) * out.grad ----
def _add_backward(out: Value) -> None:
    a, b = out._prev
    a.grad += out.grad
    b.grad += out.grad


def _mul_backward(out: Value) -> None:
    a, b = out._prev
    a.grad += b.data * out.grad
    b.grad += a.data * out.grad


def _pow_backward(out: Value) -> None:
    (a,) = out._prev
    n = out._arg
    a.grad += (n * a.data ** (n - 1)) * out.grad


def _exp_backward(out: Value) -> None:
    out._prev[0].grad += out.data * out.grad


def _log_backward(out: Value) -> None:
    a = out._prev[0]
    a.grad += out.grad / a.data


def _sin_backward(out: Value) -> None:
    a = out._prev[0]
    a.grad += math.cos(a.data) * out.grad


def _cos_backward(out: Value) -> None:
    a = out._prev[0]
    a.grad += -math.sin(a.data) * out.grad


def _tanh_backward(out: Value) -> None:
    out._prev[0].grad += (1 - out.data**2) * out.grad


def _relu_backward(out: Value) -> None:
    out._prev[0].grad += (out.data > 0) * out.grad


def _sigmoid_backward(out: Value) -> None:
    out._prev[0].grad += out.data * (1 - out.data) * out.grad


_BACKWARD = {
    "+": _add_backward, "*": _mul_backward, "**": _pow_backward, "exp": _exp_backward,
    "log": _log_backward, "sin": _sin_backward, "cos": _cos_backward, "tanh": _tanh_backward, "ReLU": _relu_backward,
    "sigmoid": _sigmoid_backward,
}
