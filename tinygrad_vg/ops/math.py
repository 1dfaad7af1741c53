"""Elementwise math beyond the basics: trigonometry, erf, log1p/expm1/log2/log10, sign,
and the binary maximum/minimum. Inputs broadcast as in numpy; the engine sums the
gradient back over broadcast axes.

Design: `Constant` ops (sign here; argmax, one_hot in ops/index.py) have a result that
carries no gradient (its derivative is 0 or undefined everywhere), so they are never
put on the tape: `apply` runs forward on the arrays and returns a Tensor that does not
require grad, as torch's argmax and one_hot do.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..convert import as_tensors
from ..grad_mode import state

__all__ = ["Constant", "Sin", "Cos", "Tan", "Erf", "Log1p", "Expm1", "Log2", "Log10", "Sign",
           "Maximum", "Minimum"]


class Constant:
    """An op whose result does not depend differentiably on its inputs: forward only, never
    recorded, the result does not require grad."""
    float_only = False

    def forward(self, *arrays: np.ndarray, **params) -> np.ndarray: raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        tensors = as_tensors(inputs, cls.__name__)
        arrays = [t._data for t in tensors]
        out = cls().forward(*arrays, **params)
        if state.reads is not None:   # inside a checkpoint's function: its rerun must read the same arrays
            state.reads.seen(arrays, out)
        return Function.tensor_type(out)


class Sin(Function):
    """y = sin(x);  grad_x = grad_out * cos(x)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, grad_out):
        return (grad_out * np.cos(self.x),)


class Cos(Function):
    """y = cos(x);  grad_x = -grad_out * sin(x)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, grad_out):
        return (-grad_out * np.sin(self.x),)


class Tan(Function):
    """y = tan(x);  grad_x = grad_out * (1 + y^2)   (poles at x = pi/2 + k pi)"""
    saves = ("y",)

    def forward(self, x):
        self.y = np.tan(x)
        return self.y

    def backward(self, grad_out):
        return (grad_out * (1 + self.y * self.y),)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt;  grad_x = grad_out * 2/sqrt(pi) exp(-x^2)"""
    saves = ("x",)

    def forward(self, x):
        from scipy.special import erf   # imported on first use: scipy.special costs ~0.3 s of import
        self.x = x
        return erf(x).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        return (grad_out * (2 / math.sqrt(math.pi)) * np.exp(-self.x * self.x),)


class Log1p(Function):
    """y = log(1 + x) (accurate for small x);  grad_x = grad_out / (1 + x)   (x > -1)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.log1p(x)

    def backward(self, grad_out):
        return (grad_out / (1 + self.x),)


class Expm1(Function):
    """y = exp(x) - 1 (accurate for small x);  grad_x = grad_out * (y + 1)"""
    saves = ("y",)

    def forward(self, x):
        self.y = np.expm1(x)
        return self.y

    def backward(self, grad_out):
        return (grad_out * (self.y + 1),)


class Log2(Function):
    """y = log2(x);  grad_x = grad_out / (x ln 2)   (x > 0)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.log2(x)

    def backward(self, grad_out):
        return (grad_out / (self.x * math.log(2.0)),)


class Log10(Function):
    """y = log10(x);  grad_x = grad_out / (x ln 10)   (x > 0)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.log10(x)

    def backward(self, grad_out):
        return (grad_out / (self.x * math.log(10.0)),)


class Sign(Constant):
    """y = sign(x) in {-1, 0, 1} (0 at x = 0, NaN at NaN, as torch);  grad_x = 0 everywhere, so the
    result does not require grad"""

    def forward(self, x):
        return np.sign(x)


def _binary_broadcast(op: str, a: np.ndarray, b: np.ndarray) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                         "(numpy rules: trailing dimensions must be equal or 1)") from None


class Maximum(Function):
    """y = maximum(a, b) elementwise (NaN if either is NaN);
    grad_a = grad_out where a > b, grad_out / 2 where a = b, 0 where a < b (grad_b likewise).
    Ties split the gradient evenly and a NaN sends the whole gradient to both inputs: torch's rule."""
    saves = ("a", "b")
    pick = staticmethod(np.maximum)
    sign = 1

    def forward(self, a, b):
        if a.shape != b.shape:
            _binary_broadcast(type(self).__name__.lower(), a, b)
        self.a, self.b = a, b
        return self.pick(a, b)

    def backward(self, grad_out):
        a, b = self.a, self.b
        half = np.where(a == b, grad_out / 2, grad_out)
        lose_a = a < b if self.sign > 0 else a > b   # where a is not the result
        return (np.where(lose_a, 0.0, half) if self.needs_grad[0] else None,
                np.where(b < a if self.sign > 0 else b > a, 0.0, half) if self.needs_grad[1] else None)


class Minimum(Maximum):
    """y = minimum(a, b) elementwise (NaN if either is NaN);
    grad_a = grad_out where a < b, grad_out / 2 where a = b, 0 where a > b (grad_b likewise).
    Ties split the gradient evenly and a NaN sends the whole gradient to both inputs: torch's rule."""
    pick = staticmethod(np.minimum)
    sign = -1
