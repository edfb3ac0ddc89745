"""Lecture 1: micrograd, a scalar autograd engine and a tiny neural-net library.

``Value`` is the lecture's engine (``zth.micrograd.engine``); ``zth.micrograd.fast`` is the
same engine built for speed. ``MLP(..., engine="fast")`` runs the networks on the fast one.
"""

from zth.micrograd import fast
from zth.micrograd.engine import Value
from zth.micrograd.moons import make_moons, svm_loss, train_moons
from zth.micrograd.nn import MLP, Layer, Module, Neuron
from zth.micrograd.viz import draw_dot

__all__ = ["MLP", "Layer", "Module", "Neuron", "Value", "draw_dot", "fast", "make_moons", "svm_loss",
           "train_moons"]
