"""Reductions over axes (None = all), with numpy's `keepdims` (torch's `dim`/`keepdim` are
accepted by the functions and methods through `axis_args`). Backward puts the reduced axes
back (keepdims) and broadcasts grad_out over them. Also cumsum, which keeps the shape."""
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


def axis_args(op: str, axis, keepdims, dim=None, keepdim=None) -> tuple:
    """numpy's axis=/keepdims= or torch's dim=/keepdim= -> (axis, keepdims): the one place the
    two spellings meet, used by every function and method that takes an axis."""
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: got axis={axis!r} and dim={dim!r}; pass one of them "
                            "(dim is torch's name for numpy's axis)")
        axis = dim
    if keepdim is not None:
        if keepdims and not keepdim:
            raise TypeError(f"{op}: got keepdims={keepdims!r} and keepdim={keepdim!r}; pass one of them "
                            "(keepdim is torch's name for numpy's keepdims)")
        keepdims = keepdim
    return axis, bool(keepdims)


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
    """y = max(x, axes);  grad_x = grad_out at the maxima, split evenly between ties
    (torch.amax's rule; torch.max(x, dim) gives it to one of them). A NaN is the maximum
    (as numpy and torch propagate it) and gets the gradient."""
    saves = ("mask",)
    reducer = staticmethod(np.max)

    def forward(self, x, axis=None, keepdims=False):
        self.setup(x, axis, keepdims)
        if self.count() == 0:   # numpy and torch refuse too; over a non-empty axis an empty x is fine
            raise ValueError(f"{type(self).__name__.lower()}: reducing over an empty axis of shape "
                             f"{x.shape} (axes {self.axes}) has no extremum")
        y = np.asarray(self.reducer(x, axis=self.axes, keepdims=True))
        self.mask = x == y
        if x.dtype.kind == "f" and np.isnan(y).any():   # NaN != NaN: the NaNs are the extremum
            self.mask |= np.isnan(x) & np.isnan(y)
        return y if keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, grad_out):
        ties = self.mask.sum(axis=self.axes, keepdims=True)
        return (self.mask * (self.restore_axes(grad_out) / ties),)


class Min(Max):
    """y = min(x, axes);  grad_x = grad_out at the minima, split evenly between ties
    (torch.amin's rule); a NaN is the minimum and gets the gradient"""
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


class Std(_Reduction):
    """y = sqrt(sum((x - mean)^2, axes) / (n - ddof));  grad_x = grad_out * (x - mean) / ((n - ddof) y)
    (0 where y = 0, as torch: a constant slice has no direction to move)"""
    saves = ("centered", "y")

    def forward(self, x, axis=None, keepdims=False, ddof=0):
        self.setup(x, axis, keepdims)
        self.denominator = self.count() - ddof
        if self.denominator <= 0:   # torch returns NaN with a warning; var raises, and so does std
            raise ValueError(f"std: {self.count()} element(s) over the axes with ddof={ddof}; "
                             "need more elements than ddof")
        self.centered = x - x.mean(axis=self.axes, keepdims=True)
        self.y = np.sqrt(np.sum(self.centered * self.centered, axis=self.axes, keepdims=True)
                         / self.denominator).astype(x.dtype, copy=False)
        return self.y if keepdims else np.squeeze(self.y, axis=self.axes)

    def backward(self, grad_out):
        y = self.y
        with np.errstate(divide="ignore", invalid="ignore"):   # the masked places divide by 0
            scale = np.where(y != 0, self.restore_axes(grad_out) / (y * self.denominator), 0.0)
        return (scale * self.centered,)


class Prod(_Reduction):
    """y = prod(x, axes) (1 over an empty axis, as numpy and torch);
    grad_x_i = grad_out * prod_{j != i} x_j (products of the others, so zeros in x are fine)"""
    saves = ("x",)
    float_only = False

    def forward(self, x, axis=None, keepdims=False):
        self.setup(x, axis, keepdims)
        self.x = x
        return np.asarray(np.prod(x, axis=self.axes, keepdims=keepdims))

    def backward(self, grad_out):
        x = self.x
        if x.size == 0:
            return (np.zeros_like(x),)
        kept = [i for i in range(x.ndim) if i not in self.axes]
        order = kept + list(self.axes)
        moved = np.transpose(x, order)
        flat = moved.reshape(moved.shape[:len(kept)] + (self.count(),))
        ones = np.ones(flat.shape[:-1] + (1,), x.dtype)
        before = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)   # x_0 ... x_{i-1}
        after = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]   # x_{i+1} ...
        others = np.transpose((before * after).reshape(moved.shape), np.argsort(order))
        return (self.restore_axes(grad_out) * others,)


class Cumsum(Function):
    """y_i = sum_{j <= i} x_j along axis (axis=None: over the flattened x, as numpy);
    grad_x_j = sum_{i >= j} grad_out_i (a cumsum of grad_out from the end)"""
    saves = ()
    float_only = False

    def forward(self, x, axis=None):
        self.shape = x.shape
        if axis is None:
            self.axis = 0
            return np.cumsum(x.reshape(-1))
        (self.axis,) = normalize_axis("cumsum", axis, x.ndim)
        return np.cumsum(x, axis=self.axis)

    def backward(self, grad_out):
        grad = np.flip(np.cumsum(np.flip(grad_out, self.axis), axis=self.axis), self.axis)
        return (grad.reshape(self.shape),)
