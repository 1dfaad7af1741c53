"""The recurrent kernels' entry points: one layer of an Elman RNN (tanh or relu), a GRU or
an LSTM over all T steps per call, forward and backward.

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

with the same gradients as the plain pair, bit for bit, whatever the segments. The backward
kernels take need_* flags (an output not needed is None and not computed) and `step_grads`,
an optional (T, N, H) array that receives dL/dh_t for every t: the total gradient reaching
h_t (from the output at t and from step t+1).

When only the last step's output is used (nn.LSTM(..., return_sequence=False)), nothing
of size T N H needs to exist but the input: the checkpointed forward with
return_sequence=False returns h as the last step only, (1, N, H), its steps passing
through two rows of scratch; and every backward takes grad_out=None, the gradient then
entering through grad_hT (and grad_cT) alone. The bits are those of the full-length run
with grad_out zero but at the last step.

The family's twins are its loops: tinygrad_vg/kernels/reference/recurrent.py (numpy, one
time loop over a cell, as the equations) and csrc/recurrent.pyx (compiled, in blocks of
steps). SequenceKernels gives both the same arguments: the checks (kernels/_checks.py) and
the allocation are done here once, so both raise the same errors and return the same
shapes. A call runs a whole layer over a whole sequence, so this Python layer costs nothing
measurable (the per-layer kernels of the other families check in C first instead: see
kernels/__init__.py). Arrays may be float32 or float64 in any memory order (copied to C
order when needed); anything else raises a TypeError or ValueError naming the argument.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import (_biases, _layer, _nonlinearity, _out, _segments_of, _shaped, _state,
                      check_return_sequence)

KERNELS = (
    "rnn_sequence_forward", "rnn_sequence_backward",
    "rnn_sequence_forward_checkpointed", "rnn_sequence_backward_checkpointed",
    "gru_sequence_forward", "gru_sequence_backward",
    "gru_sequence_forward_checkpointed", "gru_sequence_backward_checkpointed",
    "lstm_sequence_forward", "lstm_sequence_backward",
    "lstm_sequence_forward_checkpointed", "lstm_sequence_backward_checkpointed",
)
__all__ = ["BLOCK_ROWS", "KERNELS", "SequenceKernels", "block_steps", "check_return_sequence"]

# The compiled loops cut time into blocks of about BLOCK_ROWS // N steps: one GEMM projects a
# block's inputs, and its parameter gradients are three GEMMs over its rows (csrc/recurrent.pyx).
BLOCK_ROWS = 512


def block_steps(batch: int, steps: int) -> int:
    """Steps per block: a function of N and T only, so plain and checkpointed runs agree."""
    return max(1, min(steps, BLOCK_ROWS // batch))


# ---------------------------------------------------------------- allocation

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


# ---------------------------------------------------------------- the entry points, over one set of loops

class SequenceKernels:
    """The entry points over one set of loops: kernels.compiled.recurrent or
    kernels.reference.recurrent. Checks, allocation and results are shared here."""

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
        self.loops.lstm_forward(x, h0, c0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), block_steps(batch, steps),
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
        self.loops.lstm_forward_checkpointed(x, h0, c0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), p, starts,
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
        self.loops.lstm_backward(grad_out, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh, p, grad_h, grad_c,
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
        self.loops.lstm_backward_checkpointed(grad_out, h_in, c_in, starts, x, w_ih, w_hh, *_summed(b_ih, b_hh, dt),
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
        self.loops.gru_forward(x, h0, w_ih, w_hh, *_gru_biases(b_ih, b_hh, hidden, dt), block_steps(batch, steps),
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
        self.loops.gru_forward_checkpointed(x, h0, w_ih, w_hh, *_gru_biases(b_ih, b_hh, hidden, dt), p, starts,
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
        self.loops.gru_backward(grad_out, h, gates, hn, x, h0, w_ih, w_hh, p, grad_h, work,
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
        self.loops.gru_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh,
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
        self.loops.rnn_forward(x, h0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), relu, block_steps(batch, steps), h,
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
        self.loops.rnn_forward(x, h0, w_ih, w_hh, *_summed(b_ih, b_hh, dt), relu, p, rows, starts, h_in, work)
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
        self.loops.rnn_backward(grad_out, h, x, h0, w_ih, w_hh, relu, p, grad_h,
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
        self.loops.rnn_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh, *_summed(b_ih, b_hh, dt),
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


