"""The kernels of the engine's hot loops, one entry per kernel.

Each kernel has two implementations with the same name and signature:
`compiled` (the Cython extension tinygrad_vg._kernels, built by `pip install -e .`
or `make venv`) and `reference` (numpy, in the `numpy_kernels` class below). The
module-level functions are those of the active backend, chosen once at import by
the environment variable TINYGRAD_VG_BACKEND:

    compiled (default)  the extension; ImportError saying how to build it if missing
    numpy               the numpy twins

`BACKEND` names the active one (report() says why). There is no silent fallback.

Elementwise kernels take float32/float64 arrays of any shape and memory order and
return a new array of the same shape and dtype; two-input kernels need equal shapes
and dtypes (no broadcasting). The optimizer steps (sgd_step, adam_step) update lists
of parameters and their state in place. Anything else raises TypeError or ValueError,
with the same message on both sides: the checks are in one place, _kernel_args.
"""
from __future__ import annotations

import importlib.util
import math
import os
import threading
from types import SimpleNamespace
from typing import Any, Optional

import numpy as np

from . import _kernel_args as _args

__all__ = [
    "BACKEND", "BACKENDS", "KERNELS", "compiled", "reference", "numpy_kernels", "report",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "relu_forward", "relu_backward", "matmul", "linear_act_forward", "linear_act_backward",
    "sgd_step", "adam_step", "lock_arrays", "release_arrays",
]

BACKENDS = ("compiled", "numpy")
KERNELS = (
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "relu_forward", "relu_backward", "matmul", "linear_act_forward", "linear_act_backward",
    "sgd_step", "adam_step", "lock_arrays", "release_arrays",
)


# The argument checks live in _kernel_args, shared with the compiled kernels' slow path.
_as_float_array = _args.as_float_array
_pair = _args.pair


# ---------------------------------------------------------------- numpy twins

_LOCKING_MUTEX = threading.RLock()   # lock_arrays/release_arrays: backward may run in threads


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
        a, b, out, m, _, n = _args.matmul_args(a, b, trans_a, trans_b, out)
        if out is None:
            out = np.empty((m, n), dtype=a.dtype)
        op_a = a.T if trans_a else a
        op_b = b.T if trans_b else b
        return np.matmul(op_a, op_b, out=out)

    @staticmethod
    def linear_act_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                           activation: Optional[str] = None, residual: bool = False) -> Any:
        """y = f(x @ weight^T + bias); x (N, D_in), weight (D_out, D_in), bias (D_out,) or None;
        f: None/"identity", "tanh", "sigmoid", "relu". A new C-ordered (N, D_out) array.
        residual=True (square weight): the pair (y, x + y), a residual block's f output and sum."""
        x, weight, bias = _args.linear_args(x, weight, bias, activation)
        _args.check_residual(weight, residual)
        y = numpy_kernels._linear_act(x, weight, bias, activation)
        return (y, np.add(x, y, out=np.empty_like(y))) if residual else y

    @staticmethod
    def _linear_act(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                    activation: Optional[str]) -> np.ndarray:
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
                            need_b: bool = True, residual: bool = False) -> tuple:
        """grad_z = grad_out * f'(z), f' from the output y; grad_x = grad_z @ weight,
        grad_w = grad_z^T @ x, grad_b = grad_z summed over rows; None where not needed.
        residual=True (square weight): grad_x = grad_z @ weight + grad_out (the skip path)."""
        grad_out, x, weight, y = _args.linear_backward_args(grad_out, x, weight, y, activation)
        _args.check_residual(weight, residual)
        if activation == "tanh":
            grad_z = numpy_kernels.tanh_backward(grad_out, y)
        elif activation == "sigmoid":
            grad_z = numpy_kernels.sigmoid_backward(grad_out, y)
        elif activation == "relu":
            grad_z = numpy_kernels.relu_backward(grad_out, y)   # y > 0 exactly where z > 0
        else:
            grad_z = grad_out
        grad_x = (grad_z @ weight) if need_x else None
        if residual and need_x:
            grad_x += grad_out
        grad_w = (grad_z.T @ x) if need_w else None
        grad_b = grad_z.sum(axis=0) if need_b else None
        return grad_x, grad_w, grad_b

    @staticmethod
    def sgd_step(params: list, grads: list, momentum_buffers: Optional[list], lr: float,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        """SGD (torch.optim.SGD) in place over lists of parameters and their gradients:
        d = grad + weight_decay * p; buf = d (first step) or momentum * buf + (1 - dampening) * d;
        d = d + momentum * buf (nesterov) or buf; p -= lr * d. A None momentum buffer is a
        parameter's first step: the new buffer is stored in the list."""
        params, grads, momentum_buffers = _args.sgd_args(params, grads, momentum_buffers, momentum)
        # Python floats: numpy rounds them to the arrays' dtype, as the compiled loop does
        lr, momentum, dampening, weight_decay = float(lr), float(momentum), float(dampening), float(weight_decay)
        for i, (p, g) in enumerate(zip(params, grads)):
            if weight_decay != 0:
                g = g + weight_decay * p
            if momentum != 0:
                buf = momentum_buffers[i]
                if buf is None:
                    buf = momentum_buffers[i] = np.array(g, dtype=p.dtype, copy=True)
                else:
                    buf *= momentum
                    buf += (1 - dampening) * g
                g = g + momentum * buf if nesterov else buf
            p -= lr * g

    @staticmethod
    def adam_step(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, steps: list, lr: float,
                  beta1: float, beta2: float, eps: float, weight_decay: float = 0.0) -> None:
        """Adam (torch.optim.Adam, L2 weight decay) in place over lists of parameters, gradients
        and moments; steps[i] is parameter i's step count t including this step:
        d = grad + weight_decay * p; m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
        params, grads, exp_avgs, exp_avg_sqs, steps = _args.adam_args(params, grads, exp_avgs,
                                                                      exp_avg_sqs, steps)
        lr, beta1, beta2, eps, weight_decay = float(lr), float(beta1), float(beta2), float(eps), float(weight_decay)
        for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
            if weight_decay != 0:
                g = g + weight_decay * p
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * (g * g)
            step_size = lr / (1 - beta1 ** t)
            denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
            p -= step_size * (m / denom)

    @staticmethod
    def lock_arrays(arrays: Any, who: tuple, held: dict) -> list:
        """Memory locking (locking.py), in one call per recorded node: lock each array and
        each array it is a view of, counting the locks in `held` (id -> entry [array,
        count, who, views waiting for it]); arrays read-only already and not in `held` are
        left alone. Returns the entries it counted, bases before their views (numpy makes a
        view writeable only after its base). The compiled kernel is atomic under the GIL;
        this twin takes a re-entrant lock (a node dropped by the garbage collector during a
        call releases its arrays from within it)."""
        with _LOCKING_MUTEX:
            chain = []
            for a in arrays:
                while isinstance(a, np.ndarray):   # the array, then what it is a view of
                    chain.append(a)
                    a = a.base
            locked = []
            for a in reversed(chain):
                entry = held.get(id(a))
                if entry is not None:
                    entry[1] += 1
                elif a.flags.writeable:
                    a.flags.writeable = False
                    entry = held[id(a)] = [a, 1, who, None]
                else:
                    continue
                locked.append(entry)
            return locked

    @staticmethod
    def release_arrays(entries: list, held: dict) -> None:
        """Undo lock_arrays (given what it returned): count each lock down; at zero the array
        is writeable again, or, if an array it is a view of is still locked, once that one is
        released."""
        with _LOCKING_MUTEX:
            for entry in entries:
                entry[1] -= 1
                if not entry[1]:
                    del held[id(entry[0])]
                    _reopen(entry[0], entry[3], held)


def _reopen(a: np.ndarray, waiting: list | None, held: dict) -> None:
    """a writeable again, then the views that waited for it; or a waits for a locked base."""
    base = a.base
    while isinstance(base, np.ndarray):
        entry = held.get(id(base))
        if entry is not None:
            entry[3] = (entry[3] or []) + [a]
            return
        if not base.flags.writeable:
            return   # read-only, and not by us: a stays read-only too
        base = base.base
    a.flags.writeable = True
    for view in waiting or ():
        _reopen(view, None, held)


reference = SimpleNamespace(**{name: getattr(numpy_kernels, name) for name in KERNELS})


# ---------------------------------------------------------------- backend selection

def _load_compiled():
    """(the compiled kernels, None) or (None, why the extension did not import)."""
    try:
        from . import _kernels
    except ImportError as error:
        return None, error
    return SimpleNamespace(**{name: getattr(_kernels, name) for name in KERNELS}), None


# The default is numpy only in a package installed without a compiler: with
# TINYGRAD_VG_NO_EXTENSIONS=1, setup.py writes _build_config.py (EXTENSIONS = False).
# That is a choice made at install time, not a failed build.
try:
    from ._build_config import EXTENSIONS
except ImportError:
    EXTENSIONS = True
NO_EXTENSIONS_SWITCH = "TINYGRAD_VG_NO_EXTENSIONS"
DEFAULT_BACKEND = "compiled" if EXTENSIONS else "numpy"

BACKEND = os.environ.get("TINYGRAD_VG_BACKEND", DEFAULT_BACKEND).strip().lower() or DEFAULT_BACKEND

if BACKEND not in BACKENDS:
    raise ValueError(f"TINYGRAD_VG_BACKEND={os.environ['TINYGRAD_VG_BACKEND']!r} is not a "
                     f"kernel backend; accepted: {', '.join(BACKENDS)}")


def not_built(what: str, module: str, error: Exception) -> ImportError:
    """The error for a missing extension under the compiled backend: never a silent fallback."""
    why = (f" This package was installed with {NO_EXTENSIONS_SWITCH}=1; reinstall it without "
           "that switch to compile them." if not EXTENSIONS else "")
    return ImportError(
        f"tinygrad_vg: the compiled {what} ({module}) are not built.{why} Build them with "
        "`make venv` or `pip install -e .` (needs a C compiler), or set TINYGRAD_VG_BACKEND=numpy "
        f"to use the numpy kernels. ({error})")


# The extension is imported on first use, not here: importing it imports scipy.linalg (its
# BLAS), about 0.3 s that `import tinygrad_vg` need not pay. Whether it exists is checked
# now, so a missing build is still an error at import, never a silent fallback.
if BACKEND == "compiled" and importlib.util.find_spec(f"{__package__}._kernels") is None:
    raise not_built("kernels", "tinygrad_vg._kernels", ImportError("no module named tinygrad_vg._kernels"))


def _bind() -> None:
    """Import the compiled kernels and bind the active backend's kernels as this module's."""
    global compiled, _compiled_error
    compiled, _compiled_error = _load_compiled()
    if BACKEND == "compiled" and compiled is None:
        raise not_built("kernels", "tinygrad_vg._kernels", _compiled_error)
    globals().update({name: getattr(compiled if BACKEND == "compiled" else reference, name)
                      for name in KERNELS})


def __getattr__(name: str) -> Any:
    """kernels.X for a kernel, or `compiled`, before the first use: bind them, then answer."""
    if name in KERNELS or name in ("compiled", "_compiled_error"):
        _bind()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if BACKEND == "numpy":   # the numpy twins are bound now; the extension only if asked for
    globals().update({name: getattr(reference, name) for name in KERNELS})


def report() -> str:
    """One line saying which kernels run: the backend (for the numpy one, why), and for the compiled one whether
    its tanh loops are vectorized through glibc's libmvec (csrc/_simd_math.h) and which
    instruction set its loops were dispatched to on this CPU (csrc/_kernel_loops.h)."""
    if BACKEND == "numpy":
        if not EXTENSIONS:
            why = f"the compiled kernels were not built ({NO_EXTENSIONS_SWITCH}=1 at install time)"
        else:
            built = importlib.util.find_spec(f"{__package__}._kernels") is not None
            why = ("chosen by TINYGRAD_VG_BACKEND=numpy (the compiled kernels are "
                   + ("built)" if built else "not built)"))
        return f"numpy backend: every kernel is its numpy twin; {why}"
    from . import _kernels
    isa = getattr(_kernels, "VECTOR_ISA", "?")
    vector = (f"vector math: tanh through libmvec, {isa} loops" if getattr(_kernels, "VECTOR_MATH", False)
              else f"vector math: none (scalar libm tanh), {isa} loops")
    return f"compiled backend: {', '.join(KERNELS)} compiled; {vector}"
