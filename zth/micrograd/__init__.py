"""Lecture 1: micrograd, a scalar autograd engine and a tiny neural-net library."""

from zth.micrograd.engine import Value, topological_order
from zth.micrograd.moons import make_moons, svm_loss, train_moons
from zth.micrograd.nn import MLP, Layer, Module, Neuron
from zth.micrograd.viz import draw_dot

__all__ = ["MLP", "Layer", "Module", "Neuron", "Value", "draw_dot", "make_moons", "svm_loss",
           "topological_order", "train_moons"]
