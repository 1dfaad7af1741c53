"""Whole-sequence kernels of the recurrent layers: one layer of an Elman RNN (tanh or
relu), a GRU or an LSTM over all T steps per call, forward and backward.

Shapes: T steps, N batch, D input features, H hidden units, G gates stacked in the
weights (RNN 1, GRU 3 in order r, z, n; LSTM 4 in order i, f, g, o): x (T, N, D),
h0 and c0 (N, H), w_ih (G*H, D), w_hh (G*H, H), b_ih and b_hh (G*H,) or both None.

For each cell there are four kernels. The plain pair keeps every step's activations:

    h, gates, c, tanh_c = lstm_sequence_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = \\
        lstm_sequence_backward(grad_out, grad_hT, grad_cT, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh)

(the LSTM keeps 7 H floats per sample and step, h included: the least backpropagation
through time can do with; the GRU keeps h, r, z, n and W_hn h + b_hn; the RNN only h).
The checkpointed pair keeps only the state entering each segment of steps (`segments`:
the first step of each, 0 first) and recomputes a segment's activations in backward:

    h, c_T, h_in, c_in = lstm_sequence_forward_checkpointed(x, h0, c0, w_ih, w_hh, b_ih, b_hh, segments)
    grads = lstm_sequence_backward_checkpointed(grad_out, grad_hT, grad_cT, h_in, c_in, segments,
                                                x, w_ih, w_hh, b_ih, b_hh)

with the same gradients as the plain pair, bit for bit, whatever the segments (both
make the same BLAS calls on the same operands; see csrc/_recurrent.pyx). The backward
kernels take need_* flags (an output not needed is None and not computed) and
`step_grads`, an optional (T, N, H) array that receives dL/dh_t for every t: the
total gradient reaching h_t (from the output at t and from step t+1).

When only the last step's output is used (nn.LSTM(..., return_sequence=False)), nothing
of size T N H needs to exist but the input: the checkpointed forward with
return_sequence=False returns h as the last step only, (1, N, H), its steps passing
through two rows of scratch; and every backward takes grad_out=None, the gradient then
entering through grad_hT (and grad_cT) alone. The bits are those of the full-length run
with grad_out zero but at the last step.

Two implementations with the same names, signatures, results and errors, chosen like
tinygrad_vg.kernels by TINYGRAD_VG_BACKEND (kernels.BACKEND): `compiled` (the Cython
extension tinygrad_vg._recurrent) and `reference` (the numpy loops below, which
mirror the compiled ones step for step). The module-level functions are the active
backend's. They share the checks and allocation here; only the loops differ. They
accept float32 or float64 arrays in any memory order (copied to C order when needed);
anything else raises a TypeError or ValueError naming the argument.
"""
from __future__ import annotations

import importlib.util

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import kernels

KERNELS = (
    "rnn_sequence_forward", "rnn_sequence_backward",
    "rnn_sequence_forward_checkpointed", "rnn_sequence_backward_checkpointed",
    "gru_sequence_forward", "gru_sequence_backward",
    "gru_sequence_forward_checkpointed", "gru_sequence_backward_checkpointed",
    "lstm_sequence_forward", "lstm_sequence_backward",
    "lstm_sequence_forward_checkpointed", "lstm_sequence_backward_checkpointed",
)
__all__ = ["BACKEND", "BLOCK_ROWS", "KERNELS", "NumpyLoops", "SequenceKernels", "block_steps",
           "check_return_sequence", "compiled", "reference"] + list(KERNELS)
NONLINEARITIES = ("tanh", "relu")

# Time is cut into blocks of about BLOCK_ROWS // N steps: one GEMM projects a block's
# inputs, and its parameter gradients are three GEMMs over its rows (see _recurrent.pyx).
BLOCK_ROWS = 512
_INT_MAX = 2**31 - 1   # BLAS takes 32-bit sizes


def block_steps(batch: int, steps: int) -> int:
    """Steps per block: a function of N and T only, so plain and checkpointed runs agree."""
    return max(1, min(steps, BLOCK_ROWS // batch))


# ---------------------------------------------------------------- checks and allocation

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


def _output_rows(kernel: str, out: Any, dtype: np.dtype, sizes: tuple, return_sequence: bool,
                 inputs: tuple) -> tuple:
    """(h, rows) for a checkpointed forward: h the output, (T, N, H) or with return_sequence=False
    only the last step (1, N, H) (`out` if given); rows what the loops write the steps into: h
    itself, or two rows of scratch used in turn (step t in row t % 2)."""
    steps, batch, _, hidden = sizes
    if return_sequence:
        h = _out(kernel, "out", out, dtype, (steps, batch, hidden), inputs)
        return h, h
    h = _out(kernel, "out", out, dtype, (1, batch, hidden), inputs, "(1, N, H): the last step")
    return h, np.empty((2, batch, hidden), dtype)


def _last_row(h: np.ndarray, rows: np.ndarray, steps: int) -> np.ndarray:
    """h, with return_sequence=False the last step (1, N, H) from the two rows the loops
    wrote in turn (step T-1 in row (T-1) % 2)."""
    if rows is not h:
        h[0] = rows[(steps - 1) % 2]
    return h


def _nonlinearity(kernel: str, nonlinearity: Any) -> bool:
    """True for relu."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{kernel}: unknown nonlinearity {nonlinearity!r}; accepted: tanh, relu")
    return nonlinearity == "relu"


_DUMMIES: dict = {}


def _dummy(dtype: np.dtype, ndim: int) -> np.ndarray:
    """A 1-element stand-in for an output or bias that is not used (the loops take arrays)."""
    key = (np.dtype(dtype).char, ndim)
    if key not in _DUMMIES:
        _DUMMIES[key] = np.zeros((1,) * ndim, dtype=dtype)
    return _DUMMIES[key]


def _first_grad(kernel: str, grad_out: Any, grad_last: Any, name: str, dtype: np.dtype, sizes: tuple) -> tuple:
    """grad_out checked, and dL/dh_{T-1} = grad_out[T-1] + grad_hT as a new (N, H) array.
    grad_out=None (only the last step was used: the gradient enters through grad_hT) becomes
    one zero row (1, N, H), which the loops read at every step: the arithmetic of a grad_out
    that is zero but at T-1, without a (T, N, H) array of zeros."""
    steps, batch, _, hidden = sizes
    if grad_out is None:
        grad_out = np.zeros((1, batch, hidden), dtype)
        grad_h = np.zeros((batch, hidden), dtype)
        if grad_last is not None:
            grad_h[...] = _state(grad_last, kernel, name, dtype, sizes)
        return grad_out, grad_h
    grad_out = _shaped(grad_out, kernel, "grad_out", dtype, (steps, batch, hidden), "(T, N, H)")
    grad_h = grad_out[steps - 1].copy()
    if grad_last is not None:
        grad_h += _state(grad_last, kernel, name, dtype, sizes)
    return grad_out, grad_h


class _Grads:
    """The gradient outputs of a backward kernel: zeroed accumulators for the parameters,
    dummies for what is not needed."""

    def __init__(self, kernel: str, dtype: np.dtype, sizes: tuple, gates: int, need_x: Any, need_w_ih: Any,
                 need_w_hh: Any, need_b: Any, step_grads: Any, inputs: tuple) -> None:
        steps, batch, features, hidden = sizes
        rows = gates * hidden
        self.need = tuple(bool(n) for n in (need_x, need_w_ih, need_w_hh, need_b))
        self.need_steps = step_grads is not None
        self.x = np.empty((steps, batch, features), dtype) if self.need[0] else None
        self.w_ih = np.zeros((rows, features), dtype) if self.need[1] else None
        self.w_hh = np.zeros((rows, hidden), dtype) if self.need[2] else None
        self.b_ih = np.zeros(rows, dtype) if self.need[3] else None
        self.b_hh = np.zeros(rows, dtype) if self.need[3] else None
        self.steps = (_out(kernel, "step_grads", step_grads, dtype, (steps, batch, hidden), inputs)
                      if self.need_steps else None)
        self.dtype = dtype

    def arrays(self, both_biases: bool) -> list:
        """grad_x, grad_w_ih, grad_w_hh, grad_b_ih[, grad_b_hh], step_grads for the loops."""
        d3, d2, d1 = (_dummy(self.dtype, n) for n in (3, 2, 1))
        out = [d3 if self.x is None else self.x, d2 if self.w_ih is None else self.w_ih,
               d2 if self.w_hh is None else self.w_hh, d1 if self.b_ih is None else self.b_ih]
        if both_biases:
            out.append(d1 if self.b_hh is None else self.b_hh)
        return out + [d3 if self.steps is None else self.steps]

    def flags(self) -> list:
        return [*self.need, self.need_steps]

    def result(self, grad_h0: np.ndarray | None, *more: np.ndarray | None, same_bias: bool = True) -> tuple:
        """(grad_x, grad_h0, *more, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh); in an RNN and an
        LSTM both biases get the same gradient (a copy: gradients never alias)."""
        b_hh = (self.b_ih.copy() if same_bias else self.b_hh) if self.b_ih is not None else None
        return (self.x, grad_h0, *more, self.w_ih, self.w_hh, self.b_ih, b_hh)


# ---------------------------------------------------------------- the public kernels

class SequenceKernels:
    """The public kernels over one set of loops: the compiled ones (tinygrad_vg._recurrent)
    or their numpy twins (NumpyLoops). Checks, allocation and results are shared here."""

    def __init__(self, loops: Any, name: str) -> None:
        self.loops, self.name = loops, name

    def __repr__(self) -> str:
        return f"<{self.name} sequence kernels>"

    # ----- LSTM
    def lstm_sequence_forward(self, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, *, out=None) -> tuple:
        """LSTM layer (gates i, f, g, o), all steps kept: (h, gates, c, tanh_c), h (T, N, H) the
        outputs (into `out` if given), gates (T, N, 4H) the activated gates, c and tanh_c (T, N, H).
            a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;  i, f, o = sigmoid, g = tanh of a_t's slices
            c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)"""
        k = "lstm_sequence_forward"
        x, w_ih, w_hh, sizes = _layer(k, 4, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0, c0 = (_state(s, k, name, dt, sizes) for s, name in ((h0, "h0"), (c0, "c0")))
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, 4 * hidden)
        h = _out(k, "out", out, dt, (steps, batch, hidden), (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
        gates = np.empty((steps, batch, 4 * hidden), dt)
        c, tanh_c = np.empty_like(h), np.empty_like(h)
        self.loops._lstm_forward(x, h0, c0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), block_steps(batch, steps),
                                 h, gates, c, tanh_c)
        return h, gates, c, tanh_c

    def lstm_sequence_forward_checkpointed(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, segments, *, out=None,
                                           return_sequence=True) -> tuple:
        """As lstm_sequence_forward, keeping only the state entering each segment:
        (h, c_T, h_in, c_in), h_in and c_in (k, N, H) for the k segments. return_sequence=False:
        h is the last step only, (1, N, H), and the steps' outputs pass through two rows of
        scratch, so that the layer holds O(k N H) whatever T."""
        k = "lstm_sequence_forward_checkpointed"
        return_sequence = check_return_sequence(k, return_sequence)
        x, w_ih, w_hh, sizes = _layer(k, 4, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0, c0 = (_state(s, k, name, dt, sizes) for s, name in ((h0, "h0"), (c0, "c0")))
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, 4 * hidden)
        starts, _ = _segments_of(k, segments, steps)
        p = block_steps(batch, steps)
        h, rows = _output_rows(k, out, dt, sizes, return_sequence, (x, h0, c0, w_ih, w_hh, b_ih, b_hh))
        c_last = np.empty((batch, hidden), dt)
        h_in = np.empty((len(starts), batch, hidden), dt)
        c_in = np.empty_like(h_in)
        work = np.empty(p * batch * 4 * hidden + 3 * batch * hidden, dt)
        self.loops._lstm_forward_checkpointed(x, h0, c0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), p, starts,
                                              rows, c_last, h_in, c_in, work)
        return _last_row(h, rows, steps), c_last, h_in, c_in

    def lstm_sequence_backward(self, grad_out, grad_hT, grad_cT, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh, *,
                               need_x=True, need_h0=True, need_c0=True, need_w_ih=True, need_w_hh=True,
                               need_b=True, step_grads=None) -> tuple:
        """Backpropagation through time of lstm_sequence_forward. grad_out (T, N, H) = dL/dh_t from
        the outputs, or None for zero (only the last step was used: its gradient comes in grad_hT);
        grad_hT, grad_cT (N, H) or None: more gradient for h_{T-1}, c_{T-1}. Returns
        (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh), None where not needed.
            gc_t = grad_c_t + grad_h_t o (1 - tanh(c_t)^2);  grad_c_{t-1} = gc_t f
            d_t = [gc g i(1-i), gc c_{t-1} f(1-f), gc i (1-g^2), grad_h_t tanh(c_t) o(1-o)]
            grad_h_{t-1} = grad_out_{t-1} + d_t W_hh;  grad_x_t = d_t W_ih
            grad_W_ih = sum_t d_t^T x_t;  grad_W_hh = sum_t d_t^T h_{t-1};  grad_b = sum_t,n d_t"""
        k = "lstm_sequence_backward"
        x, w_ih, w_hh, sizes = _layer(k, 4, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0, c0 = (_state(s, k, name, dt, sizes) for s, name in ((h0, "h0"), (c0, "c0")))
        grad_out, grad_h = _first_grad(k, grad_out, grad_hT, "grad_hT", dt, sizes)
        grad_c = np.zeros_like(grad_h) if grad_cT is None else _state(grad_cT, k, "grad_cT", dt, sizes).copy()
        seq = (steps, batch, hidden)
        h, c, tanh_c = (_shaped(a, k, name, dt, seq, "(T, N, H)")
                        for a, name in ((h, "h"), (c, "c"), (tanh_c, "tanh_c")))
        gates = _shaped(gates, k, "gates", dt, (steps, batch, 4 * hidden), "(T, N, 4H)")
        grads = _Grads(k, dt, sizes, 4, need_x, need_w_ih, need_w_hh, need_b, step_grads,
                       (grad_out, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh))
        p = block_steps(batch, steps)
        work = np.empty(p * batch * 5 * hidden, dt)
        self.loops._lstm_backward(grad_out, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh, p, grad_h, grad_c,
                                  work, *grads.arrays(False), *grads.flags())
        return grads.result(grad_h if need_h0 else None, grad_c if need_c0 else None)

    def lstm_sequence_backward_checkpointed(self, grad_out, grad_hT, grad_cT, h_in, c_in, segments, x, w_ih,
                                            w_hh, b_ih=None, b_hh=None, *, need_x=True, need_h0=True,
                                            need_c0=True, need_w_ih=True, need_w_hh=True, need_b=True,
                                            step_grads=None) -> tuple:
        """lstm_sequence_backward from what lstm_sequence_forward_checkpointed kept: each segment,
        last first, is recomputed from (h_in, c_in), then backpropagated. Same results, bit for bit."""
        k = "lstm_sequence_backward_checkpointed"
        x, w_ih, w_hh, sizes = _layer(k, 4, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, 4 * hidden)
        starts, longest = _segments_of(k, segments, steps)
        h_in, c_in = (_shaped(a, k, name, dt, (len(starts), batch, hidden), "(segments, N, H)")
                      for a, name in ((h_in, "h_in"), (c_in, "c_in")))
        grad_out, grad_h = _first_grad(k, grad_out, grad_hT, "grad_hT", dt, sizes)
        grad_c = np.zeros_like(grad_h) if grad_cT is None else _state(grad_cT, k, "grad_cT", dt, sizes).copy()
        grads = _Grads(k, dt, sizes, 4, need_x, need_w_ih, need_w_hh, need_b, step_grads,
                       (grad_out, h_in, c_in, x, w_ih, w_hh, b_ih, b_hh))
        p = block_steps(batch, steps)
        png, nh = p * batch * 4 * hidden, batch * hidden
        work = np.empty(png + p * nh + 2 * png + longest * 7 * nh, dt)
        self.loops._lstm_backward_checkpointed(grad_out, h_in, c_in, starts, x, w_ih, w_hh, *_summed(b_ih, b_hh, dt),
                                               p, grad_h, grad_c, work, *grads.arrays(False), *grads.flags())
        return grads.result(grad_h if need_h0 else None, grad_c if need_c0 else None)

    # ----- GRU
    def gru_sequence_forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, *, out=None) -> tuple:
        """GRU layer (gates r, z, n), all steps kept: (h, gates, hn), h (T, N, H) the outputs (into
        `out` if given), gates (T, N, 3H) = r, z, n, hn (T, N, H) = h_{t-1} W_hn^T + b_hn.
            r, z = sigmoid(x W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z})
            n = tanh(x W_in^T + b_in + r hn);  h_t = n + z (h_{t-1} - n)"""
        k = "gru_sequence_forward"
        x, w_ih, w_hh, sizes = _layer(k, 3, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0 = _state(h0, k, "h0", dt, sizes)
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, 3 * hidden)
        h = _out(k, "out", out, dt, (steps, batch, hidden), (x, h0, w_ih, w_hh, b_ih, b_hh))
        gates = np.empty((steps, batch, 3 * hidden), dt)
        hn = np.empty_like(h)
        self.loops._gru_forward(x, h0, w_ih, w_hh, *_gru_biases(b_ih, b_hh, hidden, dt), block_steps(batch, steps),
                                h, gates, hn, np.empty(batch * 3 * hidden, dt))
        return h, gates, hn

    def gru_sequence_forward_checkpointed(self, x, h0, w_ih, w_hh, b_ih, b_hh, segments, *, out=None,
                                          return_sequence=True) -> tuple:
        """As gru_sequence_forward, keeping only the state entering each segment: (h, h_in).
        return_sequence=False: h is the last step only, (1, N, H) (see the LSTM's)."""
        k = "gru_sequence_forward_checkpointed"
        return_sequence = check_return_sequence(k, return_sequence)
        x, w_ih, w_hh, sizes = _layer(k, 3, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0 = _state(h0, k, "h0", dt, sizes)
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, 3 * hidden)
        starts, _ = _segments_of(k, segments, steps)
        p = block_steps(batch, steps)
        h, rows = _output_rows(k, out, dt, sizes, return_sequence, (x, h0, w_ih, w_hh, b_ih, b_hh))
        h_in = np.empty((len(starts), batch, hidden), dt)
        work = np.empty((p + 1) * batch * 3 * hidden + batch * hidden, dt)
        self.loops._gru_forward_checkpointed(x, h0, w_ih, w_hh, *_gru_biases(b_ih, b_hh, hidden, dt), p, starts,
                                             rows, h_in, work)
        return _last_row(h, rows, steps), h_in

    def gru_sequence_backward(self, grad_out, grad_hT, h, gates, hn, x, h0, w_ih, w_hh, *, need_x=True,
                              need_h0=True, need_w_ih=True, need_w_hh=True, need_b=True, step_grads=None) -> tuple:
        """Backpropagation through time of gru_sequence_forward; grad_out (T, N, H) or None and
        grad_hT as in lstm_sequence_backward. Returns (grad_x, grad_h0, grad_w_ih, grad_w_hh,
        grad_b_ih, grad_b_hh), None where not needed. With g = dL/dh_t:
            a_n = g (1 - z)(1 - n^2);  a_z = g (h_{t-1} - n) z(1-z);  a_r = a_n hn r(1-r)
            d_x = [a_r, a_z, a_n] (input side);  d_h = [a_r, a_z, a_n r] (recurrent side)
            grad_h_{t-1} = grad_out_{t-1} + g z + d_h W_hh;  grad_x_t = d_x W_ih
            grad_W_ih = sum d_x^T x;  grad_W_hh = sum d_h^T h_{t-1};  grad_b_ih = sum d_x;  grad_b_hh = sum d_h"""
        k = "gru_sequence_backward"
        x, w_ih, w_hh, sizes = _layer(k, 3, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0 = _state(h0, k, "h0", dt, sizes)
        grad_out, grad_h = _first_grad(k, grad_out, grad_hT, "grad_hT", dt, sizes)
        h, hn = (_shaped(a, k, name, dt, (steps, batch, hidden), "(T, N, H)") for a, name in ((h, "h"), (hn, "hn")))
        gates = _shaped(gates, k, "gates", dt, (steps, batch, 3 * hidden), "(T, N, 3H)")
        grads = _Grads(k, dt, sizes, 3, need_x, need_w_ih, need_w_hh, need_b, step_grads,
                       (grad_out, h, gates, hn, x, h0, w_ih, w_hh))
        p = block_steps(batch, steps)
        work = np.empty(p * batch * 7 * hidden + batch * hidden, dt)
        self.loops._gru_backward(grad_out, h, gates, hn, x, h0, w_ih, w_hh, p, grad_h, work,
                                 *grads.arrays(True), *grads.flags())
        return grads.result(grad_h if need_h0 else None, same_bias=False)

    def gru_sequence_backward_checkpointed(self, grad_out, grad_hT, h_in, segments, x, w_ih, w_hh, b_ih=None,
                                           b_hh=None, *, need_x=True, need_h0=True, need_w_ih=True,
                                           need_w_hh=True, need_b=True, step_grads=None) -> tuple:
        """gru_sequence_backward from what gru_sequence_forward_checkpointed kept. Same results."""
        k = "gru_sequence_backward_checkpointed"
        x, w_ih, w_hh, sizes = _layer(k, 3, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, 3 * hidden)
        starts, longest = _segments_of(k, segments, steps)
        h_in = _shaped(h_in, k, "h_in", dt, (len(starts), batch, hidden), "(segments, N, H)")
        grad_out, grad_h = _first_grad(k, grad_out, grad_hT, "grad_hT", dt, sizes)
        grads = _Grads(k, dt, sizes, 3, need_x, need_w_ih, need_w_hh, need_b, step_grads,
                       (grad_out, h_in, x, w_ih, w_hh, b_ih, b_hh))
        p = block_steps(batch, steps)
        png, nh = p * batch * 3 * hidden, batch * hidden
        work = np.empty(2 * png + p * nh + nh + 2 * png + 3 * nh + longest * 5 * nh, dt)
        self.loops._gru_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh,
                                              *_gru_biases(b_ih, b_hh, hidden, dt), p, grad_h, work,
                                              *grads.arrays(True), *grads.flags())
        return grads.result(grad_h if need_h0 else None, same_bias=False)

    # ----- Elman RNN
    def rnn_sequence_forward(self, x, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity="tanh", *,
                             out=None) -> np.ndarray:
        """Elman RNN layer: h (T, N, H), h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), f tanh
        or relu (into `out` if given). h is all its backward needs."""
        k = "rnn_sequence_forward"
        relu = _nonlinearity(k, nonlinearity)
        x, w_ih, w_hh, sizes = _layer(k, 1, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0 = _state(h0, k, "h0", dt, sizes)
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, hidden)
        h = _out(k, "out", out, dt, (steps, batch, hidden), (x, h0, w_ih, w_hh, b_ih, b_hh))
        self.loops._rnn_forward(x, h0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), relu, block_steps(batch, steps), h,
                                np.empty(0, np.intp), np.empty((0, batch, hidden), dt), np.empty(0, dt))
        return h

    def rnn_sequence_forward_checkpointed(self, x, h0, w_ih, w_hh, b_ih, b_hh, segments, nonlinearity="tanh", *,
                                          out=None, return_sequence=True) -> tuple:
        """As rnn_sequence_forward, also returning the state entering each segment: (h, h_in).
        return_sequence=False: h is the last step only, (1, N, H) (see the LSTM's)."""
        k = "rnn_sequence_forward_checkpointed"
        return_sequence = check_return_sequence(k, return_sequence)
        relu = _nonlinearity(k, nonlinearity)
        x, w_ih, w_hh, sizes = _layer(k, 1, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0 = _state(h0, k, "h0", dt, sizes)
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, hidden)
        starts, _ = _segments_of(k, segments, steps)
        p = block_steps(batch, steps)
        h, rows = _output_rows(k, out, dt, sizes, return_sequence, (x, h0, w_ih, w_hh, b_ih, b_hh))
        h_in = np.empty((len(starts), batch, hidden), dt)
        work = np.empty(0 if rows.shape[0] == steps else p * batch * hidden, dt)   # see _recurrent._rnn_forward
        self.loops._rnn_forward(x, h0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), relu, p, rows, starts, h_in, work)
        return _last_row(h, rows, steps), h_in

    def rnn_sequence_backward(self, grad_out, grad_hT, h, x, h0, w_ih, w_hh, nonlinearity="tanh", *, need_x=True,
                              need_h0=True, need_w_ih=True, need_w_hh=True, need_b=True, step_grads=None) -> tuple:
        """Backpropagation through time of rnn_sequence_forward; grad_out (T, N, H) or None and
        grad_hT as in lstm_sequence_backward. Returns (grad_x, grad_h0, grad_w_ih, grad_w_hh,
        grad_b_ih, grad_b_hh), None where not needed.
            d_t = grad_h_t f'(pre_t) (tanh: 1 - h_t^2; relu: h_t > 0);  grad_h_{t-1} = grad_out_{t-1} + d_t W_hh
            grad_x_t = d_t W_ih;  grad_W_ih = sum d^T x;  grad_W_hh = sum d_t^T h_{t-1};  grad_b = sum d"""
        k = "rnn_sequence_backward"
        relu = _nonlinearity(k, nonlinearity)
        x, w_ih, w_hh, sizes = _layer(k, 1, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        h0 = _state(h0, k, "h0", dt, sizes)
        grad_out, grad_h = _first_grad(k, grad_out, grad_hT, "grad_hT", dt, sizes)
        h = _shaped(h, k, "h", dt, (steps, batch, hidden), "(T, N, H)")
        grads = _Grads(k, dt, sizes, 1, need_x, need_w_ih, need_w_hh, need_b, step_grads,
                       (grad_out, h, x, h0, w_ih, w_hh))
        p = block_steps(batch, steps)
        self.loops._rnn_backward(grad_out, h, x, h0, w_ih, w_hh, relu, p, grad_h,
                                 np.empty(2 * p * batch * hidden, dt), *grads.arrays(False), *grads.flags())
        return grads.result(grad_h if need_h0 else None)

    def rnn_sequence_backward_checkpointed(self, grad_out, grad_hT, h_in, segments, x, w_ih, w_hh, b_ih=None,
                                           b_hh=None, nonlinearity="tanh", *, need_x=True, need_h0=True,
                                           need_w_ih=True, need_w_hh=True, need_b=True, step_grads=None) -> tuple:
        """rnn_sequence_backward from what rnn_sequence_forward_checkpointed kept. Same results."""
        k = "rnn_sequence_backward_checkpointed"
        relu = _nonlinearity(k, nonlinearity)
        x, w_ih, w_hh, sizes = _layer(k, 1, x, w_ih, w_hh)
        (steps, batch, _, hidden), dt = sizes, x.dtype
        b_ih, b_hh = _biases(k, b_ih, b_hh, dt, hidden)
        starts, longest = _segments_of(k, segments, steps)
        h_in = _shaped(h_in, k, "h_in", dt, (len(starts), batch, hidden), "(segments, N, H)")
        grad_out, grad_h = _first_grad(k, grad_out, grad_hT, "grad_hT", dt, sizes)
        grads = _Grads(k, dt, sizes, 1, need_x, need_w_ih, need_w_hh, need_b, step_grads,
                       (grad_out, h_in, x, w_ih, w_hh, b_ih, b_hh))
        p = block_steps(batch, steps)
        work = np.empty((4 * p + longest) * batch * hidden, dt)
        self.loops._rnn_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh, *_summed(b_ih, b_hh, dt),
                                              relu, p, grad_h, work, *grads.arrays(False), *grads.flags())
        return grads.result(grad_h if need_h0 else None)


def _summed(b_ih: np.ndarray | None, b_hh: np.ndarray | None, dtype: np.dtype) -> tuple:
    """(b_ih + b_hh, True), or (a dummy, False) without biases: RNN and LSTM add them once."""
    if b_ih is None:
        return _dummy(dtype, 1), False
    return b_ih + b_hh, True


def _gru_biases(b_ih: np.ndarray | None, b_hh: np.ndarray | None, hidden: int, dtype: np.dtype) -> tuple:
    """(projection bias b_ih + [b_hr, b_hz, 0], has_bias, b_hn): b_hn stays apart, inside r * (.)."""
    if b_ih is None:
        return _dummy(dtype, 1), False, np.zeros(hidden, dtype)
    bias = b_ih.copy()
    bias[:2 * hidden] += b_hh[:2 * hidden]
    return bias, True, np.ascontiguousarray(b_hh[2 * hidden:])


# ---------------------------------------------------------------- the numpy twins of the loops

def _mm(a: np.ndarray, b: np.ndarray, c: np.ndarray, beta: int) -> None:
    """c = beta c + a @ b (beta 0 or 1), as the compiled loops' BLAS calls"""
    if beta:
        c += a @ b
    else:
        np.matmul(a, b, out=c)


def _sigmoid(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """0.5 tanh(a / 2) + 0.5"""
    np.multiply(a, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def _blocks(steps: int, p: int) -> range:
    return range(0, steps, p)


def _row(grad_out: np.ndarray, t: int) -> np.ndarray:
    """grad_out's row t: grad_out (T, N, H), or (1, N, H) for the same row at every step"""
    return grad_out[t if grad_out.shape[0] > 1 else 0]


class NumpyLoops:
    """The numpy twins of the loops of tinygrad_vg._recurrent: same names, arguments and
    block structure (so their checkpointed runs are bit for bit their plain runs too).
    Arrays are C-contiguous and checked by SequenceKernels; outputs are filled in place."""

    # ----- shared pieces
    @staticmethod
    def _project(x, w_ih, bias, has_bias, b0, p, out):
        """out (rows, GH) = x[b0:b1] W_ih^T + bias"""
        steps, features = x.shape[0], x.shape[2]
        np.matmul(x[b0:min(b0 + p, steps)].reshape(-1, features), w_ih.T, out=out)
        if has_bias:
            out += bias

    @staticmethod
    def _block_grads(b0, p, d_x, d_h, h_prev, x, w_ih, grads, need):
        """the block starting at b0 is done: grad_x = d_x W_ih; grad_W_ih += d_x^T x;
        grad_W_hh += d_h^T h_prev; grad_b_ih += sum d_x; grad_b_hh += sum d_h"""
        steps, batch, features = x.shape
        b1 = min(b0 + p, steps)
        rows = (b1 - b0) * batch
        grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = grads
        need_x, need_w_ih, need_w_hh, need_b, need_b_hh = need
        d_x, d_h, h_prev = d_x[:rows], d_h[:rows], h_prev[:rows]
        if need_x:
            _mm(d_x, w_ih, grad_x[b0:b1].reshape(rows, features), 0)
        if need_w_ih:
            _mm(d_x.T, x[b0:b1].reshape(rows, features), grad_w_ih, 1)
        if need_w_hh:
            _mm(d_h.T, h_prev, grad_w_hh, 1)
        if need_b:
            grad_b_ih += d_x.sum(axis=0)
        if need_b_hh:
            grad_b_hh += d_h.sum(axis=0)

    class _Slots:
        """The two projection block slots of a checkpointed backward (see _recurrent._projection)."""

        def __init__(self, x, w_ih, bias, has_bias, p):
            batch = x.shape[1]
            self.args, self.p = (x, w_ih, bias, has_bias), p
            self.buf = np.empty((2, p * batch, w_ih.shape[0]), x.dtype)
            self.block, self.pinned, self.batch = [-1, -1], -1, batch

        def row(self, t, pin):
            b, p = t // self.p, self.p
            if self.block[0] == b:
                slot = 0
            elif self.block[1] == b:
                slot = 1
            else:
                slot = 1 - self.pinned if self.pinned >= 0 else 0
                rows = (min(b * p + p, self.args[0].shape[0]) - b * p) * self.batch
                NumpyLoops._project(*self.args, b * p, p, self.buf[slot, :rows])
                self.block[slot] = b
            if pin:
                self.pinned = slot
            start = (t - b * p) * self.batch
            return self.buf[slot, start:start + self.batch]

    # ----- LSTM
    @staticmethod
    def _lstm_cell(a, c_prev, c, tanh_c, h):
        """a (N, 4H) pre-activations in, gates out; c = f c_prev + i g; tanh_c = tanh(c); h = o tanh_c"""
        hid = c.shape[-1]
        _sigmoid(a[:, :2 * hid], a[:, :2 * hid])
        np.tanh(a[:, 2 * hid:3 * hid], out=a[:, 2 * hid:3 * hid])
        _sigmoid(a[:, 3 * hid:], a[:, 3 * hid:])
        i, f, g, o = (a[:, j * hid:(j + 1) * hid] for j in range(4))
        np.multiply(f, c_prev, out=c)
        c += i * g
        np.tanh(c, out=tanh_c)
        np.multiply(o, tanh_c, out=h)

    @staticmethod
    def _lstm_cell_backward(gates, c_prev, tanh_c, grad_h, grad_c, d):
        hid = tanh_c.shape[-1]
        i, f, g, o = (gates[:, j * hid:(j + 1) * hid] for j in range(4))
        gc = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
        d[:, :hid] = gc * g * (i * (1 - i))
        d[:, hid:2 * hid] = gc * c_prev * (f * (1 - f))
        d[:, 2 * hid:3 * hid] = gc * i * (1 - g * g)
        d[:, 3 * hid:] = grad_h * tanh_c * (o * (1 - o))
        np.multiply(gc, f, out=grad_c)

    @staticmethod
    def _lstm_backward_steps(s, e, p, gates, c, tanh_c, h, h_before, c_before, grad_out, x, w_ih, w_hh,
                             grad_h, grad_c, d_blk, h_blk, grads, need, step_grads):
        """steps e-1 down to s; gates, c, tanh_c, h: rows of steps s..e-1"""
        batch = grad_h.shape[0]
        for t in range(e - 1, s - 1, -1):
            if step_grads is not None:
                step_grads[t] = grad_h
            k, b0 = t - s, (t // p) * p
            h_prev = h_before if t == s else h[k - 1]
            c_prev = c_before if t == s else c[k - 1]
            rows = slice((t - b0) * batch, (t - b0 + 1) * batch)
            d = d_blk[rows]
            h_blk[rows] = h_prev
            NumpyLoops._lstm_cell_backward(gates[k], c_prev, tanh_c[k], grad_h, grad_c, d)
            if t > 0:
                grad_h[...] = _row(grad_out, t - 1)
                _mm(d, w_hh, grad_h, 1)
            else:
                _mm(d, w_hh, grad_h, 0)
            if t == b0:
                NumpyLoops._block_grads(b0, p, d_blk, d_blk, h_blk, x, w_ih, grads, need)

    @staticmethod
    def _lstm_forward(x, h0, c0, w_ih, w_hh, bias, has_bias, p, h, gates, c, tanh_c):
        steps, batch, _ = x.shape
        for b0 in _blocks(steps, p):
            b1 = min(b0 + p, steps)
            NumpyLoops._project(x, w_ih, bias, has_bias, b0, p, gates[b0:b1].reshape((b1 - b0) * batch, -1))
            for t in range(b0, b1):
                h_prev, c_prev = (h0, c0) if t == 0 else (h[t - 1], c[t - 1])
                _mm(h_prev, w_hh.T, gates[t], 1)
                NumpyLoops._lstm_cell(gates[t], c_prev, c[t], tanh_c[t], h[t])

    @staticmethod
    def _lstm_forward_checkpointed(x, h0, c0, w_ih, w_hh, bias, has_bias, p, starts, h, c_last, h_in, c_in, work):
        steps, batch, _ = x.shape
        rows, hidden = h.shape[0], h.shape[-1]   # rows T, or 2 used in turn
        proj = work[:p * batch * 4 * hidden].reshape(p * batch, 4 * hidden)
        c_buf = work[p * batch * 4 * hidden:].reshape(3, batch, hidden)   # two c rows in turn, tanh(c)
        h_prev, c_prev, j = h0, c0, 0
        for b0 in _blocks(steps, p):
            b1 = min(b0 + p, steps)
            NumpyLoops._project(x, w_ih, bias, has_bias, b0, p, proj[:(b1 - b0) * batch])
            for t in range(b0, b1):
                if j < len(starts) and t == starts[j]:
                    h_in[j], c_in[j] = h_prev, c_prev
                    j += 1
                a = proj[(t - b0) * batch:(t - b0 + 1) * batch]
                _mm(h_prev, w_hh.T, a, 1)
                c_new = c_buf[t % 2]
                NumpyLoops._lstm_cell(a, c_prev, c_new, c_buf[2], h[t % rows])
                h_prev, c_prev = h[t % rows], c_new
        c_last[...] = c_prev

    @staticmethod
    def _lstm_backward(grad_out, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh, p, grad_h, grad_c, work,
                       grad_x, grad_w_ih, grad_w_hh, grad_b, step_grads, need_x, need_w_ih, need_w_hh,
                       need_b, need_steps):
        steps, batch, _ = x.shape
        hidden = h.shape[-1]
        d_blk = work[:p * batch * 4 * hidden].reshape(p * batch, 4 * hidden)
        h_blk = work[p * batch * 4 * hidden:].reshape(p * batch, hidden)
        grads = (grad_x, grad_w_ih, grad_w_hh, grad_b, None)
        need = (need_x, need_w_ih, need_w_hh, need_b, False)
        NumpyLoops._lstm_backward_steps(0, steps, p, gates, c, tanh_c, h, h0, c0, grad_out, x, w_ih, w_hh,
                                        grad_h, grad_c, d_blk, h_blk, grads, need,
                                        step_grads if need_steps else None)

    @staticmethod
    def _lstm_backward_checkpointed(grad_out, h_in, c_in, starts, x, w_ih, w_hh, bias, has_bias, p, grad_h,
                                    grad_c, work, grad_x, grad_w_ih, grad_w_hh, grad_b, step_grads, need_x,
                                    need_w_ih, need_w_hh, need_b, need_steps):
        steps, batch, _ = x.shape
        hidden = h_in.shape[-1]
        k = len(starts)
        png, nh = p * batch * 4 * hidden, batch * hidden
        longest = max((starts[j + 1] if j + 1 < k else steps) - starts[j] for j in range(k))
        d_blk = work[:png].reshape(p * batch, 4 * hidden)
        h_blk = work[png:png + p * nh].reshape(p * batch, hidden)
        rest = work[png + p * nh + 2 * png:]     # the compiled loops keep their slots before this
        gates = rest[:longest * 4 * nh].reshape(longest, batch, 4 * hidden)
        c, tanh_c, h = (rest[longest * (4 + m) * nh:longest * (5 + m) * nh].reshape(longest, batch, hidden)
                        for m in range(3))
        slots = NumpyLoops._Slots(x, w_ih, bias, has_bias, p)
        grads = (grad_x, grad_w_ih, grad_w_hh, grad_b, None)
        need = (need_x, need_w_ih, need_w_hh, need_b, False)
        for j in range(k - 1, -1, -1):
            s, e = starts[j], (starts[j + 1] if j + 1 < k else steps)
            h_prev, c_prev = h_in[j], c_in[j]
            for t in range(s, e):
                a = gates[t - s]
                a[...] = slots.row(t, t == s)
                _mm(h_prev, w_hh.T, a, 1)
                NumpyLoops._lstm_cell(a, c_prev, c[t - s], tanh_c[t - s], h[t - s])
                h_prev, c_prev = h[t - s], c[t - s]
            NumpyLoops._lstm_backward_steps(s, e, p, gates, c, tanh_c, h, h_in[j], c_in[j], grad_out, x, w_ih,
                                            w_hh, grad_h, grad_c, d_blk, h_blk, grads, need,
                                            step_grads if need_steps else None)

    # ----- GRU
    @staticmethod
    def _gru_step(a, h_prev, w_hh, b_hn, rec, hn, h):
        """a (N, 3H) projection in, r, z, n out; rec = h_prev W_hh^T; hn = rec_n + b_hn;
        n = tanh(a_n + r hn); h = n + z (h_prev - n)"""
        hid = h.shape[-1]
        np.matmul(h_prev, w_hh.T, out=rec)
        _sigmoid(a[:, :2 * hid] + rec[:, :2 * hid], a[:, :2 * hid])
        np.add(rec[:, 2 * hid:], b_hn, out=hn)
        r, z = a[:, :hid], a[:, hid:2 * hid]
        n = np.tanh(a[:, 2 * hid:] + r * hn, out=a[:, 2 * hid:])
        np.add(n, z * (h_prev - n), out=h)

    @staticmethod
    def _gru_cell_backward(gates, hn, h_prev, grad_h, d_x, d_h, grad_h_prev):
        hid = hn.shape[-1]
        r, z, n = (gates[:, j * hid:(j + 1) * hid] for j in range(3))
        a_n = grad_h * (1 - z) * (1 - n * n)
        a_z = grad_h * (h_prev - n) * (z * (1 - z))
        a_r = a_n * hn * (r * (1 - r))
        d_x[:, :hid] = a_r
        d_x[:, hid:2 * hid] = a_z
        d_x[:, 2 * hid:] = a_n
        d_h[:, :2 * hid] = d_x[:, :2 * hid]
        np.multiply(a_n, r, out=d_h[:, 2 * hid:])
        np.multiply(grad_h, z, out=grad_h_prev)

    @staticmethod
    def _gru_backward_steps(s, e, p, gates, hn, h, h_before, grad_out, x, w_ih, w_hh, grad_h, grad_h_next,
                            dx_blk, dh_blk, h_blk, grads, need, step_grads):
        batch = grad_h.shape[0]
        for t in range(e - 1, s - 1, -1):
            if step_grads is not None:
                step_grads[t] = grad_h
            k, b0 = t - s, (t // p) * p
            h_prev = h_before if t == s else h[k - 1]
            rows = slice((t - b0) * batch, (t - b0 + 1) * batch)
            h_blk[rows] = h_prev
            NumpyLoops._gru_cell_backward(gates[k], hn[k], h_prev, grad_h, dx_blk[rows], dh_blk[rows], grad_h_next)
            if t > 0:
                np.add(_row(grad_out, t - 1), grad_h_next, out=grad_h_next)
            _mm(dh_blk[rows], w_hh, grad_h_next, 1)
            grad_h[...] = grad_h_next
            if t == b0:
                NumpyLoops._block_grads(b0, p, dx_blk, dh_blk, h_blk, x, w_ih, grads, need)

    @staticmethod
    def _gru_forward(x, h0, w_ih, w_hh, bias, has_bias, b_hn, p, h, gates, hn, work):
        steps, batch, _ = x.shape
        rec = work.reshape(batch, -1)
        for b0 in _blocks(steps, p):
            b1 = min(b0 + p, steps)
            NumpyLoops._project(x, w_ih, bias, has_bias, b0, p, gates[b0:b1].reshape((b1 - b0) * batch, -1))
            for t in range(b0, b1):
                NumpyLoops._gru_step(gates[t], h0 if t == 0 else h[t - 1], w_hh, b_hn, rec, hn[t], h[t])

    @staticmethod
    def _gru_forward_checkpointed(x, h0, w_ih, w_hh, bias, has_bias, b_hn, p, starts, h, h_in, work):
        steps, batch, _ = x.shape
        rows, hidden = h.shape[0], h.shape[-1]   # rows T, or 2 used in turn
        png, nh = p * batch * 3 * hidden, batch * hidden
        proj = work[:png].reshape(p * batch, 3 * hidden)
        rec = work[png:png + 3 * nh].reshape(batch, 3 * hidden)
        hn = work[png + 3 * nh:].reshape(batch, hidden)
        h_prev, j = h0, 0
        for b0 in _blocks(steps, p):
            b1 = min(b0 + p, steps)
            NumpyLoops._project(x, w_ih, bias, has_bias, b0, p, proj[:(b1 - b0) * batch])
            for t in range(b0, b1):
                if j < len(starts) and t == starts[j]:
                    h_in[j] = h_prev
                    j += 1
                NumpyLoops._gru_step(proj[(t - b0) * batch:(t - b0 + 1) * batch], h_prev, w_hh, b_hn, rec, hn,
                                     h[t % rows])
                h_prev = h[t % rows]

    @staticmethod
    def _gru_backward(grad_out, h, gates, hn, x, h0, w_ih, w_hh, p, grad_h, work, grad_x, grad_w_ih, grad_w_hh,
                      grad_b_ih, grad_b_hh, step_grads, need_x, need_w_ih, need_w_hh, need_b, need_steps):
        steps, batch, _ = x.shape
        hidden = h.shape[-1]
        png, nh = p * batch * 3 * hidden, batch * hidden
        dx_blk = work[:png].reshape(p * batch, 3 * hidden)
        dh_blk = work[png:2 * png].reshape(p * batch, 3 * hidden)
        h_blk = work[2 * png:2 * png + p * nh].reshape(p * batch, hidden)
        grad_h_next = work[2 * png + p * nh:].reshape(batch, hidden)
        NumpyLoops._gru_backward_steps(0, steps, p, gates, hn, h, h0, grad_out, x, w_ih, w_hh, grad_h, grad_h_next,
                                       dx_blk, dh_blk, h_blk, (grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh),
                                       (need_x, need_w_ih, need_w_hh, need_b, need_b),
                                       step_grads if need_steps else None)

    @staticmethod
    def _gru_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh, bias, has_bias, b_hn, p, grad_h, work,
                                   grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, step_grads, need_x,
                                   need_w_ih, need_w_hh, need_b, need_steps):
        steps, batch, _ = x.shape
        hidden = h_in.shape[-1]
        k = len(starts)
        png, nh = p * batch * 3 * hidden, batch * hidden
        longest = max((starts[j + 1] if j + 1 < k else steps) - starts[j] for j in range(k))
        dx_blk = work[:png].reshape(p * batch, 3 * hidden)
        dh_blk = work[png:2 * png].reshape(p * batch, 3 * hidden)
        h_blk = work[2 * png:2 * png + p * nh].reshape(p * batch, hidden)
        grad_h_next = work[2 * png + p * nh:2 * png + p * nh + nh].reshape(batch, hidden)
        rest = work[4 * png + p * nh + nh:]      # the compiled loops keep their slots before this
        rec = rest[:3 * nh].reshape(batch, 3 * hidden)
        gates = rest[3 * nh:3 * nh + longest * 3 * nh].reshape(longest, batch, 3 * hidden)
        hn, h = (rest[3 * nh + longest * (3 + m) * nh:3 * nh + longest * (4 + m) * nh].reshape(longest, batch, hidden)
                 for m in range(2))
        slots = NumpyLoops._Slots(x, w_ih, bias, has_bias, p)
        grads = (grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)
        need = (need_x, need_w_ih, need_w_hh, need_b, need_b)
        for j in range(k - 1, -1, -1):
            s, e = starts[j], (starts[j + 1] if j + 1 < k else steps)
            h_prev = h_in[j]
            for t in range(s, e):
                a = gates[t - s]
                a[...] = slots.row(t, t == s)
                NumpyLoops._gru_step(a, h_prev, w_hh, b_hn, rec, hn[t - s], h[t - s])
                h_prev = h[t - s]
            NumpyLoops._gru_backward_steps(s, e, p, gates, hn, h, h_in[j], grad_out, x, w_ih, w_hh, grad_h,
                                           grad_h_next, dx_blk, dh_blk, h_blk, grads, need,
                                           step_grads if need_steps else None)

    # ----- Elman RNN
    @staticmethod
    def _rnn_act(a, relu):
        if relu:
            np.maximum(a, 0, out=a)   # max(NaN, 0) is NaN, as the compiled loop
        else:
            np.tanh(a, out=a)

    @staticmethod
    def _rnn_backward_steps(s, e, p, h, h_before, grad_out, x, w_ih, w_hh, relu, grad_h, d_blk, h_blk, grads,
                            need, step_grads):
        batch = grad_h.shape[0]
        for t in range(e - 1, s - 1, -1):
            if step_grads is not None:
                step_grads[t] = grad_h
            k, b0 = t - s, (t // p) * p
            h_prev = h_before if t == s else h[k - 1]
            rows = slice((t - b0) * batch, (t - b0 + 1) * batch)
            h_blk[rows] = h_prev
            d = d_blk[rows]
            if relu:
                np.multiply(grad_h, h[k] > 0, out=d)
            else:
                np.multiply(grad_h, 1 - h[k] * h[k], out=d)
            if t > 0:
                grad_h[...] = _row(grad_out, t - 1)
                _mm(d, w_hh, grad_h, 1)
            else:
                _mm(d, w_hh, grad_h, 0)
            if t == b0:
                NumpyLoops._block_grads(b0, p, d_blk, d_blk, h_blk, x, w_ih, grads, need)

    @staticmethod
    def _rnn_forward(x, h0, w_ih, w_hh, bias, has_bias, relu, p, h, starts, h_in, work):
        steps, batch, _ = x.shape
        rows = h.shape[0]
        in_place = rows == steps
        h_prev, j = h0, 0
        for b0 in _blocks(steps, p):
            b1 = min(b0 + p, steps)
            proj = h[b0:b1] if in_place else work[:(b1 - b0) * h[0].size].reshape(b1 - b0, batch, -1)
            NumpyLoops._project(x, w_ih, bias, has_bias, b0, p, proj.reshape((b1 - b0) * batch, -1))
            for t in range(b0, b1):
                if j < len(starts) and t == starts[j]:
                    h_in[j] = h_prev
                    j += 1
                a = proj[t - b0]
                _mm(h_prev, w_hh.T, a, 1)
                NumpyLoops._rnn_act(a, relu)
                if not in_place:   # a's block is overwritten by the next projection
                    h[t % rows] = a
                h_prev = h[t % rows]

    @staticmethod
    def _rnn_backward(grad_out, h, x, h0, w_ih, w_hh, relu, p, grad_h, work, grad_x, grad_w_ih, grad_w_hh, grad_b,
                      step_grads, need_x, need_w_ih, need_w_hh, need_b, need_steps):
        steps, batch, _ = x.shape
        hidden = h.shape[-1]
        d_blk = work[:p * batch * hidden].reshape(p * batch, hidden)
        h_blk = work[p * batch * hidden:].reshape(p * batch, hidden)
        NumpyLoops._rnn_backward_steps(0, steps, p, h, h0, grad_out, x, w_ih, w_hh, relu, grad_h, d_blk, h_blk,
                                       (grad_x, grad_w_ih, grad_w_hh, grad_b, None),
                                       (need_x, need_w_ih, need_w_hh, need_b, False),
                                       step_grads if need_steps else None)

    @staticmethod
    def _rnn_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh, bias, has_bias, relu, p, grad_h, work,
                                   grad_x, grad_w_ih, grad_w_hh, grad_b, step_grads, need_x, need_w_ih,
                                   need_w_hh, need_b, need_steps):
        steps, batch, _ = x.shape
        hidden = h_in.shape[-1]
        k = len(starts)
        pnh = p * batch * hidden
        longest = max((starts[j + 1] if j + 1 < k else steps) - starts[j] for j in range(k))
        d_blk = work[:pnh].reshape(p * batch, hidden)
        h_blk = work[pnh:2 * pnh].reshape(p * batch, hidden)
        h = work[4 * pnh:4 * pnh + longest * batch * hidden].reshape(longest, batch, hidden)
        slots = NumpyLoops._Slots(x, w_ih, bias, has_bias, p)
        grads = (grad_x, grad_w_ih, grad_w_hh, grad_b, None)
        need = (need_x, need_w_ih, need_w_hh, need_b, False)
        for j in range(k - 1, -1, -1):
            s, e = starts[j], (starts[j + 1] if j + 1 < k else steps)
            h_prev = h_in[j]
            for t in range(s, e):
                a = h[t - s]
                a[...] = slots.row(t, t == s)
                _mm(h_prev, w_hh.T, a, 1)
                NumpyLoops._rnn_act(a, relu)
                h_prev = a
            NumpyLoops._rnn_backward_steps(s, e, p, h, h_in[j], grad_out, x, w_ih, w_hh, relu, grad_h, d_blk,
                                           h_blk, grads, need, step_grads if need_steps else None)


# ---------------------------------------------------------------- backend selection

def _load_compiled():
    """(the compiled sequence kernels, None) or (None, why the extension did not import)."""
    try:
        from . import _recurrent
    except ImportError as error:
        return None, error
    return SequenceKernels(_recurrent, "compiled"), None


reference = SequenceKernels(NumpyLoops, "numpy")
BACKEND = kernels.BACKEND
NAMES = (
    "rnn_sequence_forward", "rnn_sequence_backward", "rnn_sequence_forward_checkpointed",
    "rnn_sequence_backward_checkpointed", "gru_sequence_forward", "gru_sequence_backward",
    "gru_sequence_forward_checkpointed", "gru_sequence_backward_checkpointed",
    "lstm_sequence_forward", "lstm_sequence_backward", "lstm_sequence_forward_checkpointed",
    "lstm_sequence_backward_checkpointed",
)

# As in kernels.py: the extension is imported on first use (it imports scipy.linalg), and
# whether it exists is checked now.
if BACKEND == "compiled" and importlib.util.find_spec(f"{__package__}._recurrent") is None:
    raise kernels.not_built("sequence kernels", "tinygrad_vg._recurrent",
                            ImportError("no module named tinygrad_vg._recurrent"))


def _bind() -> None:
    global compiled, _compiled_error
    compiled, _compiled_error = _load_compiled()
    if BACKEND == "compiled" and compiled is None:
        raise kernels.not_built("sequence kernels", "tinygrad_vg._recurrent", _compiled_error)
    active = compiled if BACKEND == "compiled" else reference
    globals().update({name: getattr(active, name) for name in NAMES})


def __getattr__(name: str) -> Any:
    """A sequence kernel, or `compiled`, before the first use: bind them, then answer."""
    if name in NAMES or name in ("compiled", "_compiled_error"):
        _bind()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if BACKEND == "numpy":
    globals().update({name: getattr(reference, name) for name in NAMES})
