"""Reductions over axes (None = all), with numpy's `keepdims`. Backward puts the
reduced axes back (keepdims) and broadcasts grad_out over them."""
from __future__ import annotations

import numpy as np

from ..autograd import Function


def normalize_axis(op: str, axis, ndim: int) -> tuple:
    """axis (None, int or tuple, negatives allowed) -> sorted tuple of axes, validated."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for ax in axes:
        if isinstance(ax, bool) or not isinstance(ax, (int, np.integer)) or not -ndim <= ax < ndim:
            raise ValueError(f"{op}: axis {ax!r} is not valid for a tensor with {ndim} "
                             f"dimension(s); accepted: None, or ints in [{-ndim}, {ndim - 1}] (or a tuple of them)")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


class _Reduction(Function):
    def setup(self, x, axis, keepdims):
        self.axes = normalize_axis(type(self).__name__.lower(), axis, x.ndim)
        self.keepdims = keepdims
        self.shape = x.shape

    def restore_axes(self, g):
        """grad_out (or a reduced result) with the reduced axes restored as size 1."""
        return g if self.keepdims else np.expand_dims(g, self.axes)

    def count(self) -> int:
        n = 1
        for ax in self.axes:
            n *= self.shape[ax]
        return n


class Sum(_Reduction):
    """y = sum(x, axes);  grad_x = grad_out broadcast back over the axes"""
    saves = ()
    float_only = False

    def forward(self, x, axis=None, keepdims=False):
        self.setup(x, axis, keepdims)
        return np.asarray(x.sum(axis=self.axes, keepdims=keepdims))

    def backward(self, grad_out):
        return (np.broadcast_to(self.restore_axes(grad_out), self.shape),)


class Mean(_Reduction):
    """y = sum(x, axes) / n;  grad_x = grad_out / n broadcast back over the axes"""
    saves = ()

    def forward(self, x, axis=None, keepdims=False):
        self.setup(x, axis, keepdims)
        if self.count() == 0:
            raise ValueError(f"mean: reducing over an empty axis of shape {x.shape}")
        return np.asarray(x.mean(axis=self.axes, keepdims=keepdims))

    def backward(self, grad_out):
        return (np.broadcast_to(self.restore_axes(grad_out) / self.count(), self.shape),)


class Max(_Reduction):
    """y = max(x, axes);  grad_x = grad_out at the maxima, split evenly between ties"""
    saves = ("mask",)
    reducer = staticmethod(np.max)

    def forward(self, x, axis=None, keepdims=False):
        self.setup(x, axis, keepdims)
        if self.count() == 0:   # numpy and torch refuse too; over a non-empty axis an empty x is fine
            raise ValueError(f"{type(self).__name__.lower()}: reducing over an empty axis of shape "
                             f"{x.shape} (axes {self.axes}) has no extremum")
        y = np.asarray(self.reducer(x, axis=self.axes, keepdims=True))
        self.mask = x == y
        return y if keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, grad_out):
        ties = self.mask.sum(axis=self.axes, keepdims=True)
        return (self.mask * (self.restore_axes(grad_out) / ties),)


class Min(Max):
    """y = min(x, axes);  grad_x = grad_out at the minima, split evenly between ties"""
    reducer = staticmethod(np.min)


class LogSumExp(_Reduction):
    """y = log(sum(exp(x), axes)) (computed as m + log(sum(exp(x - m))));
    grad_x = grad_out * exp(x - y) = grad_out * softmax(x)"""
    saves = ("x", "y")

    def forward(self, x, axis=None, keepdims=False):
        self.setup(x, axis, keepdims)
        m = np.max(x, axis=self.axes, keepdims=True) if x.size else np.zeros((1,) * x.ndim, x.dtype)
        m = np.where(np.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):   # all -inf along an axis: log(0) = -inf, the right answer
            y = m + np.log(np.sum(np.exp(x - m), axis=self.axes, keepdims=True))
        self.x, self.y = x, y
        return y if keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, grad_out):
        # where every element was -inf, y is -inf too: no element moved it, gradient 0
        with np.errstate(invalid="ignore"):
            weights = np.where(np.isneginf(self.y), 0.0, np.exp(self.x - self.y))
        return (self.restore_axes(grad_out) * weights,)


class Var(_Reduction):
    """y = sum((x - mean)^2, axes) / (n - ddof);  grad_x = grad_out * 2 (x - mean) / (n - ddof)"""
    saves = ("centered",)

    def forward(self, x, axis=None, keepdims=False, ddof=0):
        self.setup(x, axis, keepdims)
        self.denominator = self.count() - ddof
        if self.denominator <= 0:
            raise ValueError(f"var: {self.count()} element(s) over the axes with ddof={ddof}; "
                             "need more elements than ddof")
        self.centered = x - x.mean(axis=self.axes, keepdims=True)
        y = np.sum(self.centered * self.centered, axis=self.axes, keepdims=keepdims) / self.denominator
        return np.asarray(y, dtype=x.dtype)

    def backward(self, grad_out):
        return (self.restore_axes(grad_out) * (2.0 / self.denominator) * self.centered,)
