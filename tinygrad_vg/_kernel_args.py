"""Argument checks of the kernels, shared by both implementations.

The compiled kernels (csrc/_kernels.pyx) test the common case themselves, with a few
C-level flag tests: plain float32/float64 ndarrays, contiguous, aligned, of matching
shapes. Anything else goes through these functions, as does every call of the numpy
twins (tinygrad_vg/kernels.py), so the two raise the same errors with the same
messages from one place. Each function returns its arguments as ndarrays (numpy
scalars become 0-d arrays) or raises TypeError/ValueError naming the kernel and the
argument. Nothing here copies or changes memory order: that is the caller's business.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

ACCEPTED = "float32 or float64 numpy arrays"
LINEAR_ACTIVATIONS = (None, "identity", "tanh", "sigmoid", "relu")
_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


def as_float_array(x: Any, kernel: str, arg: str) -> np.ndarray:
    """x as an ndarray of float32/float64, or TypeError naming what was given."""
    if type(x) is not np.ndarray:
        if isinstance(x, np.generic):  # a numpy scalar such as np.float64(1.0)
            x = np.asarray(x)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{kernel}: {arg} must be a numpy array ({ACCEPTED}); got {type(x).__name__}")
    dtype = x.dtype
    # identity first: the builtin dtypes are singletons, and the numpy twins call this a lot
    if dtype is not _FLOAT32 and dtype is not _FLOAT64 and dtype != _FLOAT32 and dtype != _FLOAT64:
        raise TypeError(f"{kernel}: {arg} has dtype {x.dtype}; accepted: {ACCEPTED}")
    return x


def pair(a: Any, b: Any, kernel: str, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Two float arrays of one dtype and one shape (no broadcasting)."""
    a = as_float_array(a, kernel, name_a)
    b = as_float_array(b, kernel, name_b)
    if a.dtype != b.dtype:
        raise TypeError(f"{kernel}: {name_a} is {a.dtype} but {name_b} is {b.dtype}; "
                        f"both must have the same dtype (float32 or float64)")
    if a.shape != b.shape:
        raise ValueError(f"{kernel}: {name_a} has shape {a.shape} but {name_b} has shape "
                         f"{b.shape}; both must have the same shape (no broadcasting)")
    return a, b


# ---------------------------------------------------------------- matmul

def matmul_args(a: Any, b: Any, trans_a: Any, trans_b: Any, out: Any) -> tuple:
    """(a, b, out, m, k, n) for out (m x n) = op(a) (m x k) @ op(b) (k x n); out may be None."""
    a = as_float_array(a, "matmul", "a")
    b = as_float_array(b, "matmul", "b")
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: a is {a.dtype} but b is {b.dtype}; "
                        f"both must have the same dtype (float32 or float64)")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul: a and b must be 2-D; got shapes {a.shape} and {b.shape}")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    k_b, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != k_b:
        raise ValueError(f"matmul: op(a) is {m}x{k} but op(b) is {k_b}x{n} "
                         f"(a {a.shape}, trans_a={bool(trans_a)}; b {b.shape}, "
                         f"trans_b={bool(trans_b)}); inner dimensions must agree")
    if out is not None:
        if not isinstance(out, np.ndarray) or out.dtype != a.dtype:
            raise TypeError(f"matmul: out must be a {a.dtype} numpy array; "
                            f"got {getattr(out, 'dtype', type(out).__name__)}")
        if out.shape != (m, n):
            raise ValueError(f"matmul: out has shape {out.shape}; expected {(m, n)}")
        if not (out.flags.c_contiguous or out.flags.f_contiguous) or not out.flags.writeable:
            raise ValueError("matmul: out must be a writeable C- or F-contiguous array")
    return a, b, out, m, k, n


# ---------------------------------------------------------------- fused linear layer

def activation_code(activation: Any) -> int:
    """0 identity (None or "identity"), 1 tanh, 2 sigmoid, 3 relu; ValueError otherwise."""
    if activation is None or activation == "identity":
        return 0
    if activation == "tanh":
        return 1
    if activation == "sigmoid":
        return 2
    if activation == "relu":
        return 3
    raise ValueError(f"linear_act: unknown activation {activation!r}; accepted: None, 'identity', "
                     "'tanh', 'sigmoid', 'relu'")


def linear_args(x: Any, weight: Any, bias: Any, activation: Any) -> tuple:
    """(x, weight, bias) for y = f(x @ weight^T + bias): x (N, D_in), weight (D_out, D_in),
    bias (D_out,) or None, one dtype."""
    activation_code(activation)
    x = as_float_array(x, "linear_act", "x")
    if x.ndim != 2:
        raise ValueError(f"linear_act: x must be 2-D (N, D_in); got shape {x.shape}")
    weight = as_float_array(weight, "linear_act", "weight")
    if weight.ndim != 2:
        raise ValueError(f"linear_act: weight must be 2-D; got shape {weight.shape}")
    if weight.dtype != x.dtype:
        raise TypeError(f"linear_act: weight is {weight.dtype} but x is {x.dtype}; all must have one dtype")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"linear_act: x has shape {x.shape} but weight has shape {weight.shape}; "
                         f"need weight (D_out, {x.shape[1]})")
    if bias is not None:
        bias = as_float_array(bias, "linear_act", "bias")
        if bias.dtype != x.dtype:
            raise TypeError(f"linear_act: bias is {bias.dtype} but x is {x.dtype}; all must have one dtype")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear_act: bias has shape {bias.shape}; expected ({weight.shape[0]},)")
    return x, weight, bias


def check_residual(weight: np.ndarray, residual: Any) -> None:
    """residual=True adds x to the output (forward) and grad_out to grad_x (backward): the
    weight must be square."""
    if not isinstance(residual, (bool, np.bool_)):
        raise TypeError(f"linear_act: residual must be True or False, got {residual!r}")
    if residual and weight.shape[0] != weight.shape[1]:
        raise ValueError(f"linear_act: residual=True adds x to the output, so the weight must be square "
                         f"(D_out == D_in); got weight of shape {weight.shape}")


def linear_backward_args(grad_out: Any, x: Any, weight: Any, y: Any, activation: Any) -> tuple:
    """(grad_out, x, weight, y): linear_args' checks, and grad_out and y (N, D_out) of x's dtype."""
    x, weight, _ = linear_args(x, weight, None, activation)
    shape = (x.shape[0], weight.shape[0])
    checked = []
    for name, m in (("grad_out", grad_out), ("y", y)):
        m = as_float_array(m, "linear_act", name)
        if m.dtype != x.dtype:
            raise TypeError(f"linear_act: {name} is {m.dtype} but x is {x.dtype}; all must have one dtype")
        checked.append(m)
    if checked[0].shape != shape or checked[1].shape != shape:
        raise ValueError(f"linear_act_backward: grad_out {checked[0].shape} and y {checked[1].shape} "
                         f"must have shape {shape}")
    return checked[0], x, weight, checked[1]


# ---------------------------------------------------------------- optimizer steps

def _as_list(values: Any, kernel: str, name: str) -> list:
    if isinstance(values, list):
        return values
    if isinstance(values, tuple):
        return list(values)
    raise TypeError(f"{kernel}: {name} must be a list (one entry per parameter); "
                    f"got {type(values).__name__}")


def _in_place(value: Any, kernel: str, name: str, i: int) -> np.ndarray:
    """Entry i of list `name`, which the step updates in place: a writeable float ndarray
    (not a numpy scalar). The common case is tested first, without formatting any name."""
    if (type(value) is np.ndarray and (value.dtype is _FLOAT32 or value.dtype is _FLOAT64)
            and value.flags.writeable):
        return value
    if isinstance(value, np.generic):
        raise TypeError(f"{kernel}: {name}[{i}] must be a numpy array ({ACCEPTED}) to be updated in "
                        f"place; got {type(value).__name__}")
    value = as_float_array(value, kernel, f"{name}[{i}]")
    if not value.flags.writeable:
        raise ValueError(f"{kernel}: {name}[{i}] is read-only; the step updates it in place")
    return value


def _state_array(value: Any, param: np.ndarray, kernel: str, name: str, i: int,
                 in_place: bool = False) -> np.ndarray:
    """Entry i of list `name`: an array of params[i]'s dtype and shape."""
    if (type(value) is np.ndarray and value.dtype is param.dtype and value.shape == param.shape
            and (not in_place or value.flags.writeable)):
        return value
    value = _in_place(value, kernel, name, i) if in_place else as_float_array(value, kernel, f"{name}[{i}]")
    if value.dtype != param.dtype:
        raise TypeError(f"{kernel}: {name}[{i}] is {value.dtype} but params[{i}] is {param.dtype}; "
                        "all must have one dtype")
    if value.shape != param.shape:
        raise ValueError(f"{kernel}: {name}[{i}] has shape {value.shape} but params[{i}] has shape "
                         f"{param.shape}; they must match (no broadcasting)")
    return value


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides)


def _own_memory(kernel: str, arrays: list, names: list, i: int) -> None:
    """The arrays of one parameter's step must not overlap: the result would depend on the order
    of the writes (compiled and numpy differ). The gradient may be the parameter itself."""
    for a in range(len(arrays)):
        for b in range(a + 1, len(arrays)):
            if not np.shares_memory(arrays[a], arrays[b]):
                continue
            if b == 1:   # the gradient and the parameter
                if _same_memory(arrays[0], arrays[1]):
                    continue
                raise ValueError(f"{kernel}: grads[{i}] overlaps params[{i}] in part; a gradient must "
                                 "be the parameter array itself or apart from it")
            raise ValueError(f"{kernel}: {names[b]}[{i}] shares memory with {names[a]}[{i}]; each "
                             "optimizer state array must be an array of its own (e.g. np.zeros_like(param))")


def sgd_args(params: Any, grads: Any, momentum_buffers: Optional[list], momentum: float) -> tuple:
    """(params, grads, momentum_buffers) as lists of checked arrays (buffers may hold None:
    a parameter's first step). momentum_buffers must be a list when momentum != 0."""
    params = _as_list(params, "sgd_step", "params")
    grads = _as_list(grads, "sgd_step", "grads")
    if len(grads) != len(params):
        raise ValueError(f"sgd_step: {len(params)} params but {len(grads)} grads; one gradient per parameter")
    if momentum != 0:
        if not isinstance(momentum_buffers, list):
            raise TypeError(f"sgd_step: momentum={momentum} needs momentum_buffers, a list with one "
                            "array per parameter (None where it has none yet: the step stores a new "
                            f"one there); got {type(momentum_buffers).__name__}")
        if len(momentum_buffers) != len(params):
            raise ValueError(f"sgd_step: {len(params)} params but {len(momentum_buffers)} momentum_buffers")
    checked_params, checked_grads = [], []
    for i, (p, g) in enumerate(zip(params, grads)):
        p = _in_place(p, "sgd_step", "params", i)
        checked_params.append(p)
        checked_grads.append(_state_array(g, p, "sgd_step", "grads", i))
        arrays = [p, checked_grads[i]]
        if momentum != 0 and momentum_buffers[i] is not None:
            arrays.append(_state_array(momentum_buffers[i], p, "sgd_step", "momentum_buffers", i, in_place=True))
        _own_memory("sgd_step", arrays, ["params", "grads", "momentum_buffers"], i)
    return checked_params, checked_grads, momentum_buffers if momentum != 0 else None


MAX_STEP = 2 ** 63 - 1   # a step count is a C long in the compiled kernel


def adam_args(params: Any, grads: Any, exp_avgs: Any, exp_avg_sqs: Any, steps: Any) -> tuple:
    """(params, grads, exp_avgs, exp_avg_sqs, steps) as lists; steps are ints >= 1."""
    lists = [_as_list(v, "adam_step", name) for v, name in
             ((params, "params"), (grads, "grads"), (exp_avgs, "exp_avgs"), (exp_avg_sqs, "exp_avg_sqs"),
              (steps, "steps"))]
    params, grads, exp_avgs, exp_avg_sqs, steps = lists
    for name, values in zip(("grads", "exp_avgs", "exp_avg_sqs", "steps"), lists[1:]):
        if len(values) != len(params):
            raise ValueError(f"adam_step: {len(params)} params but {len(values)} {name}; one per parameter")
    checked = [[], [], [], []]
    for i, p in enumerate(params):
        p = _in_place(p, "adam_step", "params", i)
        checked[0].append(p)
        checked[1].append(_state_array(grads[i], p, "adam_step", "grads", i))
        checked[2].append(_state_array(exp_avgs[i], p, "adam_step", "exp_avgs", i, in_place=True))
        checked[3].append(_state_array(exp_avg_sqs[i], p, "adam_step", "exp_avg_sqs", i, in_place=True))
        _own_memory("adam_step", [c[i] for c in checked], ["params", "grads", "exp_avgs", "exp_avg_sqs"], i)
        t = steps[i]
        is_int = type(t) is int or (isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)))
        if not is_int or not 1 <= t <= MAX_STEP:
            raise ValueError(f"adam_step: steps[{i}] must be an int from 1 to 2**63 - 1 (the step count "
                             f"after this step); got {t!r}")
    return (*checked, [int(t) for t in steps])
