"""Arithmetic and elementwise math. Inputs broadcast as in numpy; the engine sums
the gradient back over broadcast axes, so backward here returns full-shape arrays."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .shape import Where


def _check_broadcast(op: str, a: np.ndarray, b: np.ndarray) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together "
                         "(numpy rules: trailing dimensions must be equal or 1)") from None


class Add(Function):
    """y = a + b;  grad_a = grad_out, grad_b = grad_out"""
    saves = ()
    float_only = False

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("add", a, b)
        return a + b

    def backward(self, grad_out):
        return grad_out, grad_out


class Sub(Function):
    """y = a - b;  grad_a = grad_out, grad_b = -grad_out"""
    saves = ()
    float_only = False

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("sub", a, b)
        return a - b

    def backward(self, grad_out):
        return grad_out, (-grad_out if self.needs_grad[1] else None)


class Mul(Function):
    """y = a * b;  grad_a = grad_out * b, grad_b = grad_out * a"""
    saves = ("a", "b")
    float_only = False

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("mul", a, b)
        self.a, self.b = a, b
        return a * b

    def backward(self, grad_out):
        return (grad_out * self.b if self.needs_grad[0] else None,
                grad_out * self.a if self.needs_grad[1] else None)


class Div(Function):
    """y = a / b;  grad_a = grad_out / b, grad_b = -grad_out * a / b^2 = -grad_out * y / b"""
    saves = ("b", "y")

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("div", a, b)
        self.b = b
        self.y = a / b
        return self.y

    def backward(self, grad_out):
        grad_a = grad_out / self.b
        return grad_a, (-grad_a * self.y if self.needs_grad[1] else None)


class Pow(Function):
    """y = a ** b;  grad_a = grad_out * b * a^(b-1) (0 where b = 0), grad_b = grad_out * y * log(a)
    (0 where a = 0 and b >= 0): a^0 = 1 is constant in a, and 0^b is 0 or 1 for b >= 0 (torch's limits)"""
    saves = ("a", "b", "y")

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("pow", a, b)
        self.a, self.b = a, b
        self.y = a ** b
        return self.y

    def backward(self, grad_out):
        a, b = self.a, self.b
        grad_a = grad_b = None
        with np.errstate(divide="ignore", invalid="ignore"):   # the masked places are inf/nan
            if self.needs_grad[0]:
                grad_a = grad_out * b * a ** (b - 1)
                if (b == 0).any():
                    grad_a = np.where(b == 0, 0.0, grad_a)
            if self.needs_grad[1]:
                grad_b = np.where((a == 0) & (b >= 0), 0.0, grad_out * self.y * np.log(a))
        return grad_a, grad_b


class Neg(Function):
    """y = -x;  grad_x = -grad_out"""
    saves = ()
    float_only = False

    def forward(self, x):
        return -x

    def backward(self, grad_out):
        return (-grad_out,)


class Exp(Function):
    """y = exp(x);  grad_x = grad_out * y"""
    saves = ("y",)

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, grad_out):
        return (grad_out * self.y,)


class Log(Function):
    """y = log(x);  grad_x = grad_out / x   (x > 0)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, grad_out):
        return (grad_out / self.x,)


class Sqrt(Function):
    """y = sqrt(x);  grad_x = grad_out / (2 y)   (x > 0)"""
    saves = ("y",)

    def forward(self, x):
        self.y = np.sqrt(x)
        return self.y

    def backward(self, grad_out):
        return (grad_out / (2 * self.y),)


class Abs(Function):
    """y = |x|;  grad_x = grad_out * sign(x)   (0 at x = 0, as in PyTorch)"""
    saves = ("x",)

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, grad_out):
        return (grad_out * np.sign(self.x),)


def _check_bound(name: str, bound, x: np.ndarray) -> None:
    """A clip bound that is not a Tensor: None, a real number, or an int/float array that
    broadcasts to x's shape; anything else raises, naming what is accepted."""
    if bound is None:
        return
    if isinstance(bound, (bool, np.bool_)) or not isinstance(bound, (int, float, np.number, np.ndarray)):
        raise TypeError(f"clip: {name} must be a number, a numpy array, a Tensor or None; "
                        f"got {type(bound).__name__}")
    if isinstance(bound, np.ndarray):
        if bound.dtype.kind not in "iuf":
            raise TypeError(f"clip: {name} has dtype {bound.dtype}; accepted: int or float arrays")
        _check_broadcast("clip", x, bound)
        if np.broadcast_shapes(x.shape, bound.shape) != x.shape:
            raise ValueError(f"clip: {name} has shape {bound.shape}, which does not broadcast "
                             f"to x's shape {x.shape}")


class Clip(Function):
    """y = min(max(x, lo), hi);  grad_x = grad_out where lo <= x <= hi, else 0"""

    def forward(self, x, lo=None, hi=None):
        if lo is None and hi is None:
            raise ValueError("clip: give at least one of min and max")
        for name, bound in (("min", lo), ("max", hi)):
            _check_bound(name, bound, x)
        self.x, self.lo, self.hi = x, lo, hi
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        inside = np.ones(self.x.shape, dtype=bool)
        if self.lo is not None:
            inside &= self.x >= self.lo
        if self.hi is not None:
            inside &= self.x <= self.hi
        return (grad_out * inside,)


def clip(x, lo=None, hi=None):
    """clip(x, min, max) as torch.clamp: min/max may be numbers, numpy arrays (constants) or
    Tensors. Tensor bounds are composed of two where's, so they get the gradient where they
    are the result (x < min, resp. > max), as in torch; with min > max the result is max."""
    Tensor = Function.tensor_type
    if not (isinstance(lo, Tensor) or isinstance(hi, Tensor)):
        return Clip.apply(x, lo=lo, hi=hi)
    x = x if isinstance(x, Tensor) else Tensor(x)
    bounds = []
    for name, b in (("min", lo), ("max", hi)):   # bounds in x's dtype, as torch.clamp keeps it
        if isinstance(b, Tensor):
            bounds.append(b if b.dtype == x.dtype else b.astype(x.dtype))
        else:
            _check_bound(name, b, x.data)
            bounds.append(None if b is None else Tensor(np.asarray(b, dtype=x.dtype)))
    lo, hi = bounds
    y, nan = x, np.isnan(x.data)
    if lo is not None:
        y = Where.apply(lo, y, cond=(y.data < lo.data))
        nan = nan | np.isnan(lo.data)
    if hi is not None:
        y = Where.apply(hi, y, cond=(y.data > hi.data))
        nan = nan | np.isnan(hi.data)
    if nan.any():   # NaN in x or a bound: NaN out, and no gradient to anyone there (torch)
        y = Where.apply(np.full((), np.nan, dtype=x.dtype), y, cond=nan)
    return y


class Cast(Function):
    """y = x as dtype;  grad_x = grad_out (the engine casts it back to x's dtype).
    A cast to an integer dtype is allowed but is not differentiable (the result needs no grad)."""
    saves = ()
    float_only = False

    def forward(self, x, dtype):
        return x.astype(dtype)

    def backward(self, grad_out):
        return (grad_out,)
