"""The kernels of the engine's hot loops, one entry per kernel.

Each kernel has two implementations with the same name and signature:
`compiled` (the Cython extension tinygrad_vg._kernels, built by `pip install -e .`
or `make venv`) and `reference` (numpy, in the `numpy_kernels` class below). The
module-level functions are those of the active backend, chosen once at import by
the environment variable TINYGRAD_VG_BACKEND:

    compiled (default)  the extension; ImportError saying how to build it if missing
    numpy               the numpy twins

`BACKEND` names the active one. There is no silent fallback from one to the other.

Elementwise kernels take float32/float64 arrays of any shape and memory order and
return a new array of the same shape and dtype; two-input kernels need equal shapes
and dtypes (no broadcasting). Anything else raises TypeError or ValueError.
"""
from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Optional

import numpy as np

__all__ = [
    "BACKEND", "BACKENDS", "KERNELS", "compiled", "reference", "numpy_kernels", "report",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "relu_forward", "relu_backward", "matmul", "linear_act_forward", "linear_act_backward",
]

BACKENDS = ("compiled", "numpy")
KERNELS = (
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "relu_forward", "relu_backward", "matmul", "linear_act_forward", "linear_act_backward",
)
_ACCEPTED = "float32 or float64 numpy arrays"


# ---------------------------------------------------------------- checks shared by the twins

def _as_float_array(x, kernel: str, arg: str) -> np.ndarray:
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{kernel}: {arg} must be a numpy array ({_ACCEPTED}); got {type(x).__name__}")
    if x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"{kernel}: {arg} has dtype {x.dtype}; accepted: {_ACCEPTED}")
    return x


def _pair(a, b, kernel: str, name_a: str, name_b: str):
    a = _as_float_array(a, kernel, name_a)
    b = _as_float_array(b, kernel, name_b)
    if a.dtype != b.dtype:
        raise TypeError(f"{kernel}: {name_a} is {a.dtype} but {name_b} is {b.dtype}; "
                        f"both must have the same dtype (float32 or float64)")
    if a.shape != b.shape:
        raise ValueError(f"{kernel}: {name_a} has shape {a.shape} but {name_b} has shape "
                         f"{b.shape}; both must have the same shape (no broadcasting)")
    return a, b


# ---------------------------------------------------------------- numpy twins

class numpy_kernels:
    """The numpy references: same names, signatures, results and errors as the
    compiled kernels. Each works in its output buffer (out=) to keep temporaries
    down, and does the arithmetic in the same order as the compiled loop."""

    @staticmethod
    def tanh_forward(x: np.ndarray) -> np.ndarray:
        """y = tanh(x)"""
        x = _as_float_array(x, "tanh_forward", "x")
        return np.tanh(x, out=np.empty_like(x))

    @staticmethod
    def tanh_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """grad_x = grad_out * (1 - y^2)"""
        grad_out, y = _pair(grad_out, y, "tanh_backward", "grad_out", "y")
        out = np.multiply(y, y, out=np.empty_like(y))
        np.subtract(1, out, out=out)
        return np.multiply(grad_out, out, out=out)

    @staticmethod
    def sigmoid_forward(x: np.ndarray) -> np.ndarray:
        """y = 1 / (1 + exp(-x)), computed without overflow for large |x|"""
        x = _as_float_array(x, "sigmoid_forward", "x")
        z = np.abs(x, out=np.empty_like(x))
        np.negative(z, out=z)
        np.exp(z, out=z)  # z = exp(-|x|) in (0, 1]
        denom = np.add(1, z)
        np.divide(z, denom, out=z)  # for x < 0 (and NaN)
        return np.divide(1, denom, out=z, where=x >= 0)

    @staticmethod
    def sigmoid_backward(grad_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """grad_x = grad_out * y * (1 - y)"""
        grad_out, y = _pair(grad_out, y, "sigmoid_backward", "grad_out", "y")
        out = np.subtract(1, y, out=np.empty_like(y))
        np.multiply(y, out, out=out)
        return np.multiply(grad_out, out, out=out)

    @staticmethod
    def relu_forward(x: np.ndarray) -> np.ndarray:
        """y = max(x, 0)"""
        x = _as_float_array(x, "relu_forward", "x")
        return np.maximum(x, 0, out=np.empty_like(x))

    @staticmethod
    def relu_backward(grad_out: np.ndarray, x: np.ndarray) -> np.ndarray:
        """grad_x = grad_out * (x > 0)"""
        grad_out, x = _pair(grad_out, x, "relu_backward", "grad_out", "x")
        return np.multiply(grad_out, x > 0, out=np.empty_like(x))

    @staticmethod
    def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False,
               out: Optional[np.ndarray] = None) -> np.ndarray:
        """out = op(a) @ op(b), op(m) = m.T if trans_m else m; 2-D float32/float64"""
        a = _as_float_array(a, "matmul", "a")
        b = _as_float_array(b, "matmul", "b")
        if a.dtype != b.dtype:
            raise TypeError(f"matmul: a is {a.dtype} but b is {b.dtype}; "
                            f"both must have the same dtype (float32 or float64)")
        if a.ndim != 2 or b.ndim != 2:
            raise ValueError(f"matmul: a and b must be 2-D; got shapes {a.shape} and {b.shape}")
        op_a = a.T if trans_a else a
        op_b = b.T if trans_b else b
        (m, k), (k_b, n) = op_a.shape, op_b.shape
        if k != k_b:
            raise ValueError(f"matmul: op(a) is {m}x{k} but op(b) is {k_b}x{n} "
                             f"(a {a.shape}, trans_a={bool(trans_a)}; b {b.shape}, "
                             f"trans_b={bool(trans_b)}); inner dimensions must agree")
        if out is None:
            out = np.empty((m, n), dtype=a.dtype)
        else:
            if not isinstance(out, np.ndarray) or out.dtype != a.dtype:
                raise TypeError(f"matmul: out must be a {a.dtype} numpy array; "
                                f"got {getattr(out, 'dtype', type(out).__name__)}")
            if out.shape != (m, n):
                raise ValueError(f"matmul: out has shape {out.shape}; expected {(m, n)}")
            if not (out.flags.c_contiguous or out.flags.f_contiguous) or not out.flags.writeable:
                raise ValueError("matmul: out must be a writeable C- or F-contiguous array")
        return np.matmul(op_a, op_b, out=out)

    @staticmethod
    def linear_act_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                           activation: Optional[str] = None) -> np.ndarray:
        """y = f(x @ weight^T + bias); x (N, D_in), weight (D_out, D_in), bias (D_out,) or None;
        f: None/"identity", "tanh", "sigmoid", "relu". A new C-ordered (N, D_out) array."""
        x, weight, bias = _linear_checks(x, weight, bias, activation)
        y = np.matmul(x, weight.T, out=np.empty((x.shape[0], weight.shape[0]), dtype=x.dtype))
        if bias is not None:
            y += bias
        if activation == "tanh":
            np.tanh(y, out=y)
        elif activation == "sigmoid":
            y = numpy_kernels.sigmoid_forward(y)
        elif activation == "relu":
            np.maximum(y, 0, out=y)
        return y

    @staticmethod
    def linear_act_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, y: np.ndarray,
                            activation: Optional[str] = None, need_x: bool = True, need_w: bool = True,
                            need_b: bool = True) -> tuple:
        """grad_z = grad_out * f'(z), f' from the output y; grad_x = grad_z @ weight,
        grad_w = grad_z^T @ x, grad_b = grad_z summed over rows; None where not needed."""
        x, weight, _ = _linear_checks(x, weight, None, activation)
        shape = (x.shape[0], weight.shape[0])
        for name, m in (("grad_out", grad_out), ("y", y)):
            m = _as_float_array(m, "linear_act", name)
            if m.dtype != x.dtype:
                raise TypeError(f"linear_act: {name} is {m.dtype} but x is {x.dtype}; all must have one dtype")
            if m.shape != shape:
                raise ValueError(f"linear_act_backward: grad_out {np.shape(grad_out)} and y "
                                 f"{np.shape(y)} must have shape {shape}")
        if activation == "tanh":
            grad_z = numpy_kernels.tanh_backward(grad_out, y)
        elif activation == "sigmoid":
            grad_z = numpy_kernels.sigmoid_backward(grad_out, y)
        elif activation == "relu":
            grad_z = numpy_kernels.relu_backward(grad_out, y)   # y > 0 exactly where z > 0
        else:
            grad_z = grad_out
        grad_x = (grad_z @ weight) if need_x else None
        grad_w = (grad_z.T @ x) if need_w else None
        grad_b = grad_z.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b


reference = SimpleNamespace(**{name: getattr(numpy_kernels, name) for name in KERNELS})


# ---------------------------------------------------------------- backend selection

def _load_compiled():
    """(the compiled kernels, None) or (None, why the extension did not import)."""
    try:
        from . import _kernels
    except ImportError as error:
        return None, error
    return SimpleNamespace(**{name: getattr(_kernels, name) for name in KERNELS}), None


compiled, _compiled_error = _load_compiled()
BACKEND = os.environ.get("TINYGRAD_VG_BACKEND", "compiled").strip().lower() or "compiled"

if BACKEND not in BACKENDS:
    raise ValueError(f"TINYGRAD_VG_BACKEND={os.environ['TINYGRAD_VG_BACKEND']!r} is not a "
                     f"kernel backend; accepted: {', '.join(BACKENDS)}")
if BACKEND == "compiled" and compiled is None:
    raise ImportError(
        "tinygrad_vg: the compiled kernels (tinygrad_vg._kernels) are not built. Build them "
        "with `make venv` or `pip install -e .` (needs a C compiler), or set "
        f"TINYGRAD_VG_BACKEND=numpy to use the numpy kernels. ({_compiled_error})"
    )

_active = compiled if BACKEND == "compiled" else reference
tanh_forward = _active.tanh_forward
tanh_backward = _active.tanh_backward
sigmoid_forward = _active.sigmoid_forward
sigmoid_backward = _active.sigmoid_backward
relu_forward = _active.relu_forward
relu_backward = _active.relu_backward
matmul = _active.matmul
linear_act_forward = _active.linear_act_forward
linear_act_backward = _active.linear_act_backward


def report() -> str:
    """One line saying which kernels run: the backend, and for the compiled one whether
    its tanh loops are vectorized through glibc's libmvec (csrc/_simd_math.h)."""
    if BACKEND == "numpy":
        return "numpy backend: every kernel is its numpy twin"
    from . import _kernels
    vector = ("vector math: tanh through libmvec" if getattr(_kernels, "VECTOR_MATH", False)
              else "vector math: none (scalar libm tanh)")
    return f"compiled backend: {', '.join(KERNELS)} compiled; {vector}"


# ---------------------------------------------------------------- checks of the fused linear kernels

LINEAR_ACTIVATIONS = (None, "identity", "tanh", "sigmoid", "relu")

def _linear_checks(x, weight, bias, activation):
    if activation not in LINEAR_ACTIVATIONS:
        raise ValueError(f"linear_act: unknown activation {activation!r}; accepted: None, 'identity', "
                         "'tanh', 'sigmoid', 'relu'")
    x = _as_float_array(x, "linear_act", "x")
    if x.ndim != 2:
        raise ValueError(f"linear_act: x must be 2-D (N, D_in); got shape {x.shape}")
    weight = _as_float_array(weight, "linear_act", "weight")
    if weight.ndim != 2:
        raise ValueError(f"linear_act: weight must be 2-D; got shape {weight.shape}")
    if weight.dtype != x.dtype:
        raise TypeError(f"linear_act: weight is {weight.dtype} but x is {x.dtype}; all must have one dtype")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"linear_act: x has shape {x.shape} but weight has shape {weight.shape}; "
                         f"need weight (D_out, {x.shape[1]})")
    if bias is not None:
        bias = _as_float_array(bias, "linear_act", "bias")
        if bias.dtype != x.dtype:
            raise TypeError(f"linear_act: bias is {bias.dtype} but x is {x.dtype}; all must have one dtype")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear_act: bias has shape {bias.shape}; expected ({weight.shape[0]},)")
    return x, weight, bias

