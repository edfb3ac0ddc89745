"""Float arithmetic that answers as IEEE 754 (and PyTorch) do, where Python would raise instead.

micrograd's rule for numbers outside an operation's domain, in forward and backward alike:
nothing raises and nothing turns complex; the result is ``nan`` outside the domain
(``log(-1)``, ``(-4) ** 0.5``) and ``±inf`` at a pole or past the float range (``log(0)``,
``0 ** -1``, ``exp(1000)``), exactly as a ``torch.float64`` tensor gives. Within the domain
these are Python's own ``**``, ``/`` and ``math`` functions, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np


def power(x: float, n: float) -> float:
    """``x ** n``; ``nan`` where the real result does not exist, ``±inf`` at a pole or on overflow."""
    try:
        y = x**n
    except (ZeroDivisionError, OverflowError):  # 0.0 ** -1, 10.0 ** 400
        y = None
    if y is None or type(y) is complex:  # Python raised, or went complex: (-4.0) ** 0.5
        with np.errstate(all="ignore"):
            return float(np.power(np.float64(x), np.float64(n)))
    return y


def divide(a: float, b: float) -> float:
    """``a / b``; ``±inf`` or ``nan`` for a zero divisor."""
    try:
        return a / b
    except ZeroDivisionError:
        with np.errstate(all="ignore"):
            return float(np.float64(a) / np.float64(b))


def exp(x: float) -> float:
    """``e ** x``; ``inf`` past the float range."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def log(x: float) -> float:
    """Natural logarithm; ``-inf`` at 0, ``nan`` below."""
    try:
        return math.log(x)
    except ValueError:
        return -math.inf if x == 0 else math.nan


def sin(x: float) -> float:
    """``sin x``; ``nan`` at ±inf."""
    return math.sin(x) if math.isfinite(x) else math.nan


def cos(x: float) -> float:
    """``cos x``; ``nan`` at ±inf."""
    return math.cos(x) if math.isfinite(x) else math.nan
