"""Every argument check of the kernels, and the one list of fused activations: shared by
both twins of every family, so that the two raise the same errors with the same messages.

The compiled per-layer kernels (csrc/elementwise.pyx, linear.pyx, optim.pyx) test the
common case themselves, with a few C-level flag tests (csrc/_arrays.pxd): plain
float32/float64 ndarrays, contiguous, aligned, of matching shapes. Anything else goes
through these functions, as does every call of their numpy twins (kernels/reference/).
The recurrent kernels' entry points (kernels/recurrent.py) call the checks at the end of
this file for both twins. Each function returns its arguments as ndarrays (numpy
scalars become 0-d arrays) or raises TypeError/ValueError naming the kernel and the
argument. Nothing here copies or changes memory order: that is the caller's business.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np

ACCEPTED = "float32 or float64 numpy arrays"
# The activations the fused kernels apply (linear_act_*, LinearActStack, deep_mlp's fused
# stack), with their codes in the C loops (csrc/linear_loops.h). The one list: everything
# else that asks "is this activation fused?" reads it.
FUSED_ACTIVATIONS = {"identity": 0, "tanh": 1, "sigmoid": 2, "relu": 3}
LINEAR_ACTIVATIONS = (None,) + tuple(FUSED_ACTIVATIONS)
NONLINEARITIES = ("tanh", "relu")   # of the Elman RNN's loops
_INT_MAX = 2**31 - 1   # BLAS takes 32-bit sizes
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
    """The activation's code in FUSED_ACTIVATIONS (None is the identity); ValueError otherwise."""
    if activation is None:
        return 0
    code = FUSED_ACTIVATIONS.get(activation) if isinstance(activation, str) else None
    if code is None:
        raise ValueError(f"linear_act: unknown activation {activation!r}; accepted: None, "
                         + ", ".join(repr(name) for name in FUSED_ACTIVATIONS))
    return code


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


# ---------------------------------------------------------------- recurrent layers (kernels/recurrent.py)

def _array(value: Any, kernel: str, name: str, dtype: np.dtype | None = None) -> np.ndarray:
    """value as an aligned C-contiguous float32/float64 array (of dtype, when given; copied
    when it is not: the C loops read it through typed pointers), or a TypeError."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{kernel}: {name} must be a numpy array (float32 or float64); "
                        f"got {type(value).__name__}")
    if value.dtype != np.float32 and value.dtype != np.float64:
        raise TypeError(f"{kernel}: {name} has dtype {value.dtype}; accepted: float32 or float64")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{kernel}: {name} is {value.dtype} but x is {dtype}; "
                        "all arrays must have one dtype (float32 or float64)")
    flags = value.flags
    return value if flags.c_contiguous and flags.aligned else np.array(value, order="C")


def _shaped(value: Any, kernel: str, name: str, dtype: np.dtype, shape: tuple, letters: str) -> np.ndarray:
    value = _array(value, kernel, name, dtype)
    if value.shape != shape:
        raise ValueError(f"{kernel}: {name} must have shape {letters} = {shape}; got {value.shape}")
    return value


def _layer(kernel: str, gates: int, x: Any, w_ih: Any, w_hh: Any) -> tuple:
    """x, w_ih, w_hh checked, and the sizes (T, N, D, H)."""
    x = _array(x, kernel, "x")
    if x.ndim != 3 or min(x.shape) < 1:
        raise ValueError(f"{kernel}: x must have shape (T, N, D) with T, N, D >= 1; got {x.shape}")
    w_hh = _array(w_hh, kernel, "w_hh", x.dtype)
    letters = f"({gates}H, H)" if gates > 1 else "(H, H)"
    if w_hh.ndim != 2 or w_hh.shape[1] < 1 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{kernel}: w_hh must have shape {letters} with H >= 1; got {w_hh.shape}")
    (steps, batch, features), hidden = x.shape, w_hh.shape[1]
    if max(batch, features, gates * hidden) > _INT_MAX:
        raise ValueError(f"{kernel}: sizes N={batch}, D={features}, G*H={gates * hidden} exceed "
                         "the 32-bit BLAS limit")
    w_ih = _shaped(w_ih, kernel, "w_ih", x.dtype, (gates * hidden, features),
                   f"({gates}H, D)" if gates > 1 else "(H, D)")
    return x, w_ih, w_hh, (steps, batch, features, hidden)


def _state(value: Any, kernel: str, name: str, dtype: np.dtype, sizes: tuple) -> np.ndarray:
    return _shaped(value, kernel, name, dtype, (sizes[1], sizes[3]), "(N, H)")


def _biases(kernel: str, b_ih: Any, b_hh: Any, dtype: np.dtype, rows: int) -> tuple:
    """(b_ih, b_hh) checked, both None or both arrays of shape (rows,)."""
    if (b_ih is None) != (b_hh is None):
        given = "b_ih" if b_hh is None else "b_hh"
        raise ValueError(f"{kernel}: give both biases (b_ih and b_hh) or neither; got only {given}")
    if b_ih is None:
        return None, None
    return tuple(_shaped(b, kernel, name, dtype, (rows,), "(G*H,)") for b, name in ((b_ih, "b_ih"), (b_hh, "b_hh")))


def _segments(kernel: str, segments: Any, steps: int) -> np.ndarray:
    """The first step of each checkpoint segment, as an intp array: 0, then increasing, < T."""
    if isinstance(segments, (str, bytes)) or not isinstance(segments, (Sequence, np.ndarray)):
        raise TypeError(f"{kernel}: segments must be a sequence of ints (the first step of each "
                        f"segment); got {type(segments).__name__}")
    starts = np.asarray(segments)
    if starts.ndim != 1 or starts.size == 0 or (starts.dtype.kind not in "iu"):
        raise TypeError(f"{kernel}: segments must be a non-empty 1-D sequence of ints; got {segments!r}")
    starts = starts.astype(np.intp)
    if starts[0] != 0 or np.any(np.diff(starts) <= 0) or starts[-1] >= steps:
        raise ValueError(f"{kernel}: segments must start at 0 and increase, each below T = {steps}; "
                         f"got {starts.tolist()}")
    return np.ascontiguousarray(starts)


def _segments_of(kernel: str, segments: Any, steps: int) -> tuple:
    starts = _segments(kernel, segments, steps)
    return starts, int(np.diff(np.append(starts, steps)).max())


def _out(kernel: str, name: str, value: Any, dtype: np.dtype, shape: tuple, inputs: tuple = (),
         letters: str = "(T, N, H)") -> np.ndarray:
    """An output array: a new one, or the caller's (C-contiguous, writeable, right dtype and
    shape, and sharing no memory with the inputs: the loops read those while writing it)."""
    if value is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(value, np.ndarray) or value.dtype != dtype:
        raise TypeError(f"{kernel}: {name} must be a {dtype} numpy array; "
                        f"got {getattr(value, 'dtype', type(value).__name__)}")
    if value.shape != shape:
        raise ValueError(f"{kernel}: {name} must have shape {shape} {letters}; got {value.shape}")
    if not value.flags.c_contiguous or not value.flags.writeable or not value.flags.aligned:
        raise ValueError(f"{kernel}: {name} must be a writeable, aligned C-contiguous array")
    if any(a is not None and np.may_share_memory(value, a) for a in inputs):
        raise ValueError(f"{kernel}: {name} shares memory with an input; give a separate array")
    return value


def check_return_sequence(owner: str, value: Any) -> bool:
    """The return_sequence option (of these kernels, the sequence ops and nn's sequence modules):
    True or False (numpy's bools too), nothing else."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: return_sequence must be True (every step's output) or False "
                        f"(the last step's only); got {value!r} of type {type(value).__name__}")
    return bool(value)


def _nonlinearity(kernel: str, nonlinearity: Any) -> bool:
    """True for relu."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{kernel}: unknown nonlinearity {nonlinearity!r}; accepted: tanh, relu")
    return nonlinearity == "relu"


# ---------------------------------------------------------------- convolution and pooling (kernels/reference/conv.py, csrc/conv.pyx)
# Shapes: x (N, C, H, W) (conv1d: (N, C, L)), weight (OC, C / groups, KH, KW) ((OC, C / groups, K)),
# y (N, OC, OH, OW) with OH = (H + 2 pad_h - dil_h (KH - 1) - 1) // stride_h + 1, as torch.

def _int_pair(kernel: str, name: str, value: Any, ndim: int, minimum: int) -> tuple:
    """An int or a sequence of `ndim` ints, each >= minimum, as a tuple of `ndim` ints."""
    values = (value,) * ndim if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) \
        else value
    if (isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or len(values) != ndim
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values)):
        raise TypeError(f"{kernel}: {name} must be an int or {ndim} ints; got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{kernel}: {name} must be >= {minimum}; got {value!r}")
    return tuple(int(v) for v in values)


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (may be < 1: no output)"""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_args(kernel: str, x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
              groups: Any, ndim: int = 2) -> tuple:
    """(x, weight, bias, (stride, padding, dilation, groups), output spatial shape) for a
    conv{ndim}d: x (N, C, *spatial), weight (OC, C / groups, *kernel), bias (OC,) or None,
    one dtype; stride, dilation >= 1 and padding >= 0 (ints or ndim ints each); groups
    dividing C and OC; an output of at least one element per spatial axis."""
    letters = "(N, C, H, W)" if ndim == 2 else "(N, C, L)"
    wletters = "(OC, C / groups, KH, KW)" if ndim == 2 else "(OC, C / groups, K)"
    x = as_float_array(x, kernel, "x")
    if x.ndim != ndim + 2:
        raise ValueError(f"{kernel}: x must be {ndim + 2}-D {letters}; got shape {x.shape}")
    weight = as_float_array(weight, kernel, "weight")
    if weight.dtype != x.dtype:
        raise TypeError(f"{kernel}: weight is {weight.dtype} but x is {x.dtype}; all must have one dtype")
    if weight.ndim != ndim + 2 or min(weight.shape) < 1:
        raise ValueError(f"{kernel}: weight must be {ndim + 2}-D {wletters} with sizes >= 1; got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, (bool, np.bool_)):
        raise TypeError(f"{kernel}: groups must be an int; got {groups!r}")
    if groups < 1 or x.shape[1] % groups or weight.shape[0] % groups:
        raise ValueError(f"{kernel}: groups={groups} must be >= 1 and divide both the input channels "
                         f"C={x.shape[1]} and the output channels OC={weight.shape[0]}")
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"{kernel}: x has C={x.shape[1]} channels, so weight of shape {weight.shape} needs "
                         f"C / groups = {x.shape[1] // groups} in its second axis (groups={groups})")
    stride = _int_pair(kernel, "stride", stride, ndim, 1)
    padding = _int_pair(kernel, "padding", padding, ndim, 0)
    dilation = _int_pair(kernel, "dilation", dilation, ndim, 1)
    if bias is not None:
        bias = as_float_array(bias, kernel, "bias")
        if bias.dtype != x.dtype:
            raise TypeError(f"{kernel}: bias is {bias.dtype} but x is {x.dtype}; all must have one dtype")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{kernel}: bias has shape {bias.shape}; expected ({weight.shape[0]},) (OC,)")
    out = tuple(conv_output_size(x.shape[2 + i], weight.shape[2 + i], stride[i], padding[i], dilation[i])
                for i in range(ndim))
    if min(out) < 1:
        raise ValueError(f"{kernel}: input of spatial size {x.shape[2:]} with padding {padding} is smaller than "
                         f"the dilated kernel (size {weight.shape[2:]}, dilation {dilation}); the output would "
                         f"have size {out}")
    if max(x.shape[0], x.shape[1], weight.shape[0], int(np.prod(weight.shape[1:])), int(np.prod(out))) > _INT_MAX:
        raise ValueError(f"{kernel}: sizes exceed the 32-bit BLAS limit")
    return x, weight, bias, (stride, padding, dilation, int(groups)), out


def conv_backward_args(kernel: str, grad_out: Any, x: Any, weight: Any, stride: Any, padding: Any, dilation: Any,
                       groups: Any, ndim: int = 2) -> tuple:
    """conv_args' checks, and grad_out (N, OC, *output) of x's dtype."""
    x, weight, _, params, out = conv_args(kernel, x, weight, None, stride, padding, dilation, groups, ndim)
    grad_out = as_float_array(grad_out, kernel, "grad_out")
    if grad_out.dtype != x.dtype:
        raise TypeError(f"{kernel}: grad_out is {grad_out.dtype} but x is {x.dtype}; all must have one dtype")
    shape = (x.shape[0], weight.shape[0], *out)
    if grad_out.shape != shape:
        raise ValueError(f"{kernel}: grad_out has shape {grad_out.shape}; expected {shape} (N, OC, *output)")
    return grad_out, x, weight, params, out


def pool_args(kernel: str, x: Any, kernel_size: Any, stride: Any, padding: Any) -> tuple:
    """(x, (kernel_size, stride, padding), (OH, OW)) for a 2-D pool over x (N, C, H, W):
    kernel_size, stride >= 1, 0 <= padding <= kernel_size // 2 (torch's rule: every window
    holds at least one input element), at least one output row and column."""
    x = as_float_array(x, kernel, "x")
    if x.ndim != 4:
        raise ValueError(f"{kernel}: x must be 4-D (N, C, H, W); got shape {x.shape}")
    kernel_size = _int_pair(kernel, "kernel_size", kernel_size, 2, 1)
    stride = _int_pair(kernel, "stride", stride, 2, 1)
    padding = _int_pair(kernel, "padding", padding, 2, 0)
    if any(p > k // 2 for p, k in zip(padding, kernel_size)):
        raise ValueError(f"{kernel}: padding {padding} must be at most half the kernel size {kernel_size}")
    out = tuple(conv_output_size(x.shape[2 + i], kernel_size[i], stride[i], padding[i], 1) for i in range(2))
    if min(out) < 1:
        raise ValueError(f"{kernel}: input of spatial size {x.shape[2:]} with padding {padding} is smaller than "
                         f"the window {kernel_size}; the output would have size {out}")
    return x, (kernel_size, stride, padding), out


def pool_backward_args(kernel: str, grad_out: Any, input_shape: Any, kernel_size: Any, stride: Any,
                       padding: Any, indices: Any = None) -> tuple:
    """(grad_out, input_shape, (kernel_size, stride, padding)): grad_out (N, C, OH, OW) for an
    input of input_shape (N, C, H, W); for max pooling also indices, int64 of grad_out's
    shape, each a flat position h * W + w in 0 .. H W - 1."""
    if (isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, (Sequence, np.ndarray))
            or len(input_shape) != 4 or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in input_shape)):
        raise TypeError(f"{kernel}: input_shape must be 4 ints >= 0 (N, C, H, W); got {input_shape!r}")
    input_shape = tuple(int(v) for v in input_shape)
    grad_out = as_float_array(grad_out, kernel, "grad_out")
    _, params, out = pool_args(kernel, np.broadcast_to(np.zeros((), grad_out.dtype), input_shape), kernel_size, stride, padding)
    shape = (*input_shape[:2], *out)
    if grad_out.shape != shape:
        raise ValueError(f"{kernel}: grad_out has shape {grad_out.shape}; expected {shape} (N, C, OH, OW)")
    if indices is not None:
        if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
            raise TypeError(f"{kernel}: indices must be an int64 numpy array (from max_pool2d_forward); "
                            f"got {getattr(indices, 'dtype', type(indices).__name__)}")
        if indices.shape != shape:
            raise ValueError(f"{kernel}: indices has shape {indices.shape}; expected {shape} (grad_out's)")
        if indices.size and (indices.min() < 0 or indices.max() >= input_shape[2] * input_shape[3]):
            raise ValueError(f"{kernel}: indices must lie in 0 .. H W - 1 = {input_shape[2] * input_shape[3] - 1}")
    return grad_out, input_shape, params
