"""The elementwise kernels in numpy: activations forward and backward.

The twin of csrc/elementwise.pyx: same names, signatures, results and errors (the checks
are kernels/_checks.py's). Each works in its output buffer (out=) to keep temporaries
down, and does the arithmetic in the same order as the compiled loop, so the backward
kernels and relu are bit for bit equal to it; tanh and sigmoid differ where libm's tanh
and exp differ from numpy's. Arrays are float32/float64 of any shape and memory order;
the result is a new array of the same shape and dtype; two-input kernels need equal
shapes and dtypes (no broadcasting).
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float_array, pair


def tanh_forward(x: np.ndarray) -> np.ndarray:
    """y = tanh(x)"""
    x = as_float_array(x, "tanh_forward", "x")
    return np.tanh(x, out=np.empty_like(x))


def tanh_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x = grad_out * (1 - y^2)"""
    grad_out, y = pair(grad_out, y, "tanh_backward", "grad_out", "y")
    out = np.multiply(y, y, out=np.empty_like(y))
    np.subtract(1, out, out=out)
    return np.multiply(grad_out, out, out=out)


def sigmoid_forward(x: np.ndarray) -> np.ndarray:
    """y = 1 / (1 + exp(-x)), computed without overflow for large |x|"""
    x = as_float_array(x, "sigmoid_forward", "x")
    z = np.abs(x, out=np.empty_like(x))
    np.negative(z, out=z)
    np.exp(z, out=z)  # z = exp(-|x|) in (0, 1]
    denom = np.add(1, z)
    np.divide(z, denom, out=z)  # for x < 0 (and NaN)
    return np.divide(1, denom, out=z, where=x >= 0)


def sigmoid_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
    """grad_x = grad_out * y * (1 - y)"""
    grad_out, y = pair(grad_out, y, "sigmoid_backward", "grad_out", "y")
    out = np.subtract(1, y, out=np.empty_like(y))
    np.multiply(y, out, out=out)
    return np.multiply(grad_out, out, out=out)


def relu_forward(x: np.ndarray) -> np.ndarray:
    """y = max(x, 0)"""
    x = as_float_array(x, "relu_forward", "x")
    return np.maximum(x, 0, out=np.empty_like(x))


def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
    """grad_x = grad_out * (x > 0)"""
    grad_out, x = pair(grad_out, x, "relu_backward", "grad_out", "x")
    return np.multiply(grad_out, x > 0, out=np.empty_like(x))
