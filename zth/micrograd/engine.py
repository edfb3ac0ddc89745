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

import math
from numbers import Number


class Value:
    """A scalar that remembers how it was computed, so that it can backpropagate."""

    __slots__ = ("data", "grad", "_a", "_b", "_op", "_label")

    def __init__(self, data: float, _a: Value | None = None, _b=None, _op: str = "", label: str = ""):
        self.data = data if type(data) is float else _as_float(data)
        self.grad = 0.0
        self._a = _a  # first operand (None for a leaf)
        self._b = _b  # second operand; for "**" the exponent; None for one-operand ops
        self._op = _op
        if label:
            self._label = label

    # ---- operations: each computes its output and records how ----
    def __add__(self, other) -> Value:
        if not isinstance(other, Value):
            other = Value(other)
        return _result(self.data + other.data, self, other, "+")

    def __mul__(self, other) -> Value:
        if not isinstance(other, Value):
            other = Value(other)
        return _result(self.data * other.data, self, other, "*")

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

    The lecture's recursive ``build_topo``, with the call stack made an explicit list so that
    graphs of any depth work: a node is placed once both of its operands are.
    """
    topo: list[Value] = []
    seen = {root}
    stack = [root]  # the path being explored, as in a recursive depth-first search
    while stack:
        node = stack[-1]
        a, b = node._a, node._b
        if a is not None and a not in seen:  # descend into the first operand
            seen.add(a)
            stack.append(a)
        elif isinstance(b, Value) and b not in seen:  # then into the second
            seen.add(b)
            stack.append(b)
        else:  # both operands are placed: place the node
            topo.append(stack.pop())
    return topo


# ---- local derivatives: out = f(a, b); a.grad += d(out)/d(a) * out.grad, same for b ----
def _add_backward(out: Value) -> None:
    out._a.grad += out.grad
    out._b.grad += out.grad


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
    "+": _add_backward, "*": _mul_backward, "**": _pow_backward, "exp": _exp_backward,
    "log": _log_backward, "sin": _sin_backward, "cos": _cos_backward, "tanh": _tanh_backward,
    "ReLU": _relu_backward, "sigmoid": _sigmoid_backward,
}
