"""The lecture's autograd engine: a scalar ``Value`` whose operations leave ``_backward`` closures.

This is micrograd's ``engine.py`` as the lecture builds it, with three changes: the operands
are kept in a tuple (a set's order follows memory addresses, so gradient sums would add up in
an order that depends on where objects sit in memory), the topological sort is an explicit-stack DFS (no
recursion limit), and numbers outside an operation's domain give ``nan``/``inf`` as PyTorch
does (see ``zth.micrograd.ieee``). ``zth.micrograd.fast`` is the same engine built for speed.
"""

from __future__ import annotations

import math

from zth.micrograd import ieee


class Value:
    """Stores a single scalar value and its gradient."""

    def __init__(self, data: float, _children: tuple = (), _op: str = "", label: str = ""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None  # how to pass out.grad on to the operands
        self._prev = _children  # the operands, in order
        self._op = _op  # the operation that produced this value (for draw_dot)
        self.label = label

    def __add__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other: float) -> Value:
        if not isinstance(other, (int, float)):
            raise TypeError(f"Value ** only supports int/float exponents, got {type(other).__name__}")
        out = Value(ieee.power(self.data, other), (self,), f"**{other}")

        def _backward():
            self.grad += (other * ieee.power(self.data, other - 1)) * out.grad
        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(ieee.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def log(self) -> Value:
        out = Value(ieee.log(self.data), (self,), "log")

        def _backward():
            self.grad += ieee.divide(out.grad, self.data)
        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data**2) * out.grad
        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(0.0 if self.data < 0 else self.data, (self,), "ReLU")

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def backward(self) -> None:
        """Apply the chain rule from ``self`` back to every value it was computed from."""
        # topological order: every value after all of its operands, by depth-first search
        topo, visited = [], {self}
        stack = [(self, iter(self._prev))]  # the recursion of the lecture's build_topo, on a list
        while stack:
            v, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._prev)))
                    break
            else:  # all operands of v are placed: place v
                stack.pop()
                topo.append(v)
        # go one value at a time, from the output back, and apply the chain rule
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()

    def __neg__(self) -> Value:  # -self
        return self * -1

    def __radd__(self, other) -> Value:  # other + self
        return self + other

    def __sub__(self, other) -> Value:  # self - other
        return self + (-other)

    def __rsub__(self, other) -> Value:  # other - self
        return other + (-self)

    def __rmul__(self, other) -> Value:  # other * self
        return self * other

    def __truediv__(self, other) -> Value:  # self / other
        other = other if isinstance(other, Value) else Value(other)
        return self * other**-1

    def __rtruediv__(self, other) -> Value:  # other / self
        return other * self**-1

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"
