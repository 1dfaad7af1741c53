"""The recurrent kernels in numpy: one time loop, written once, over a cell (RNN, GRU, LSTM).

The twin of csrc/recurrent.pyx. The public kernels (lstm_sequence_forward, ...) are
tinygrad_vg/kernels/recurrent.py's: they check the arguments and allocate the outputs, then
call the loops below or the compiled ones, which take the same arguments.

Read it as the equations. Shapes: T steps, N batch, D inputs, H hidden units, G gates
(RNN 1, GRU 3, LSTM 4); x (T, N, D), h (N, H), w_ih (G*H, D), w_hh (G*H, H).

    a_t = x_t W_ih^T + b                       the input projection (b: the summed biases)
    h_t, c_t = cell.step(a_t, h_{t-1}, c_{t-1})                       (c only in the LSTM)

and backward, from dL/dh_t (g) and dL/dc_t:

    d_x, d_h, dL/dh_{t-1} (direct part), dL/dc_{t-1} = cell.step_backward(...)
    grad_x_t = d_x W_ih;  grad_W_ih += d_x^T x_t;  grad_W_hh += d_h^T h_{t-1}
    grad_b_ih += sum over N of d_x;  grad_b_hh += sum over N of d_h
    dL/dh_{t-1} = grad_out_{t-1} + direct part + d_h W_hh

d_x and d_h are the gradients of the input and recurrent pre-activations: the same array
but in the GRU, whose candidate gate sees r * (h W_hn^T + b_hn).

Checkpointing keeps only the states entering each segment of steps; backward reruns a
segment's steps from its state, then goes back through it. The rerun does the same
operations on the same operands as the first run, so the gradients are bit for bit those
of the plain loop (here, and separately in the compiled loops).

The compiled loops compute the same equations in blocks of steps (one GEMM projects a
block's inputs, three GEMMs per block give the parameter gradients) with a workspace;
sums in another order, so they agree with these to rounding (tests/test_recurrent_kernels.py).
"""
from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-a)), as 0.5 tanh(a / 2) + 0.5: never overflows (the compiled loops' form)"""
    return 0.5 * np.tanh(0.5 * a) + 0.5


def _split(a: np.ndarray, gates: int) -> list:
    hidden = a.shape[-1] // gates
    return [a[:, k * hidden:(k + 1) * hidden] for k in range(gates)]


# ---------------------------------------------------------------- the cells
# step(a, h_prev, c_prev, w_hh, b_hn) -> (h, c, saved): saved is what backward reads of the
# step, in the order of the arrays the forward kernels keep (LSTM gates, c, tanh(c); GRU
# gates, hn; RNN h). step_backward(saved, h, h_prev, c_prev, grad_h, grad_c, w_hh) ->
# (d_x, d_h, the direct part of dL/dh_{t-1}, dL/dc_{t-1}).

class LSTM:
    """Gates i, f, g, o:  i, f, o = sigmoid(a + h_{t-1} W_hh^T), g = tanh(...);
    c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)"""
    gates = 4

    @staticmethod
    def step(a, h_prev, c_prev, w_hh, b_hn):
        a = a + h_prev @ w_hh.T
        i, f, g, o = _split(a, 4)
        i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
        c = f * c_prev + i * g
        tanh_c = np.tanh(c)
        return o * tanh_c, c, (np.concatenate([i, f, g, o], axis=1), c, tanh_c)

    @staticmethod
    def step_backward(saved, h, h_prev, c_prev, grad_h, grad_c, w_hh):
        """gc = dL/dc_t + g o (1 - tanh(c_t)^2);  dL/dc_{t-1} = gc f
        d = [gc g i(1-i), gc c_{t-1} f(1-f), gc i (1-g^2), g tanh(c_t) o(1-o)]"""
        gates, _, tanh_c = saved
        i, f, g, o = _split(gates, 4)
        gc = grad_c + grad_h * o * (1 - tanh_c * tanh_c)
        d = np.concatenate([gc * g * (i * (1 - i)), gc * c_prev * (f * (1 - f)), gc * i * (1 - g * g),
                            grad_h * tanh_c * (o * (1 - o))], axis=1)
        return d, d, 0, gc * f


class GRU:
    """Gates r, z, n:  r, z = sigmoid(a_{r,z} + h_{t-1} W_h{r,z}^T);  hn = h_{t-1} W_hn^T + b_hn;
    n = tanh(a_n + r hn);  h_t = n + z (h_{t-1} - n)   (a holds b_ih and b_h{r,z}, not b_hn)"""
    gates = 3

    @staticmethod
    def step(a, h_prev, c_prev, w_hh, b_hn):
        a_r, a_z, a_n = _split(a, 3)
        h_r, h_z, h_n = _split(h_prev @ w_hh.T, 3)
        r, z = sigmoid(a_r + h_r), sigmoid(a_z + h_z)
        hn = h_n + b_hn
        n = np.tanh(a_n + r * hn)
        return n + z * (h_prev - n), None, (np.concatenate([r, z, n], axis=1), hn)

    @staticmethod
    def step_backward(saved, h, h_prev, c_prev, grad_h, grad_c, w_hh):
        """a_n = g (1 - z)(1 - n^2);  a_z = g (h_{t-1} - n) z(1-z);  a_r = a_n hn r(1-r)
        d_x = [a_r, a_z, a_n];  d_h = [a_r, a_z, a_n r];  direct part of dL/dh_{t-1} = g z"""
        gates, hn = saved
        r, z, n = _split(gates, 3)
        a_n = grad_h * (1 - z) * (1 - n * n)
        a_z = grad_h * (h_prev - n) * (z * (1 - z))
        a_r = a_n * hn * (r * (1 - r))
        return (np.concatenate([a_r, a_z, a_n], axis=1), np.concatenate([a_r, a_z, a_n * r], axis=1),
                grad_h * z, None)


class RNN:
    """Elman:  h_t = f(a + h_{t-1} W_hh^T), f = tanh or relu"""
    gates = 1

    def __init__(self, relu: bool) -> None:
        self.relu = bool(relu)

    def step(self, a, h_prev, c_prev, w_hh, b_hn):
        a = a + h_prev @ w_hh.T
        h = np.maximum(a, 0) if self.relu else np.tanh(a)   # max(NaN, 0) is NaN, as in C
        return h, None, (h,)

    def step_backward(self, saved, h, h_prev, c_prev, grad_h, grad_c, w_hh):
        """d = g f'(pre), from h: tanh' = 1 - h^2, relu' = (h > 0)"""
        d = grad_h * (h > 0) if self.relu else grad_h * (1 - h * h)
        return d, d, 0, None


# ---------------------------------------------------------------- the time loop, once for every cell

def forward(cell, x, h0, c0, w_ih, w_hh, bias, b_hn, steps, out, keep=(), starts=(), h_in=None, c_in=None):
    """Run `steps` (a range) from the state (h0, c0); with k = t - steps.start, h_t goes to
    out[k % len(out)] (every step, or two rows used in turn) and what backward reads to keep[.][k]. The state
    entering step starts[j] is copied to h_in[j] (and c_in[j]). Returns the last (h, c)."""
    h_prev, c_prev = h0, c0
    for t in steps:
        if t in starts:
            j = starts.index(t)
            h_in[j] = h_prev
            if c_in is not None:
                c_in[j] = c_prev
        a = x[t] @ w_ih.T
        if bias is not None:
            a = a + bias
        h, c, saved = cell.step(a, h_prev, c_prev, w_hh, b_hn)
        k = t - steps.start
        for array, value in zip(keep, saved):
            array[k] = value
        out[k % len(out)] = h
        h_prev, c_prev = out[k % len(out)], c
    return h_prev, c_prev


def backward(cell, steps, saved, h, h_before, c_before, grad_out, grad_h, grad_c, x, w_ih, w_hh, grads, step_grads):
    """Back through `steps` (a range), last first. saved(k) and h[k] are step steps.start + k's;
    h_before and c_before the state entering the range. grad_h, grad_c (N, H): dL/dh, dL/dc of
    the last step in, of the state entering the range out (in place). grads: grad_x, grad_W_ih,
    grad_W_hh, grad_b_ih, grad_b_hh, each None if not wanted."""
    grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh = grads
    s = steps.start
    for t in reversed(steps):
        if step_grads is not None:
            step_grads[t] = grad_h
        k = t - s
        h_prev = h_before if t == s else h[k - 1]
        c_prev = c_before if t == s else (saved(k - 1)[1] if cell.gates == 4 else None)
        d_x, d_h, direct, grad_c_prev = cell.step_backward(saved(k), h[k], h_prev, c_prev, grad_h, grad_c, w_hh)
        if grad_x is not None:
            grad_x[t] = d_x @ w_ih
        if grad_w_ih is not None:
            grad_w_ih += d_x.T @ x[t]
        if grad_w_hh is not None:
            grad_w_hh += d_h.T @ h_prev
        if grad_b_ih is not None:
            grad_b_ih += d_x.sum(axis=0)
        if grad_b_hh is not None:
            grad_b_hh += d_h.sum(axis=0)
        into = d_h @ w_hh + direct
        if t > 0:
            into += grad_out[t - 1 if len(grad_out) > 1 else 0]   # (1, N, H): zero at every step
        grad_h[...] = into
        if grad_c_prev is not None:
            grad_c[...] = grad_c_prev


def backward_checkpointed(cell, grad_out, h_in, c_in, starts, x, w_ih, w_hh, bias, b_hn, grad_h, grad_c, grads,
                          step_grads):
    """Each segment, last first: rerun its steps from the state kept at its start, then go
    back through them."""
    total, batch, hidden = x.shape[0], h_in.shape[1], h_in.shape[2]
    ends = list(starts[1:]) + [total]
    for j in reversed(range(len(starts))):
        steps = range(starts[j], ends[j])
        h = np.empty((len(steps), batch, hidden), x.dtype)
        keep = _keep(cell, len(steps), batch, hidden, x.dtype)
        c0 = None if c_in is None else c_in[j]
        forward(cell, x, h_in[j], c0, w_ih, w_hh, bias, b_hn, steps, h, keep)
        backward(cell, steps, lambda k: [a[k] for a in keep], h, h_in[j], c0, grad_out, grad_h, grad_c, x,
                 w_ih, w_hh, grads, step_grads)


def _keep(cell, steps, batch, hidden, dtype) -> tuple:
    """Arrays for what backward reads of `steps` steps, as forward's keep."""
    if cell.gates == 1:
        return (np.empty((steps, batch, hidden), dtype),)
    gates = np.empty((steps, batch, cell.gates * hidden), dtype)
    return (gates,) + tuple(np.empty((steps, batch, hidden), dtype) for _ in range(2 if cell.gates == 4 else 1))


# ---------------------------------------------------------------- the entry points
# tinygrad_vg/kernels/recurrent.py calls these with the arguments of the compiled loops:
# `block` and `work` are the compiled side's blocking and workspace and go unused here; a
# bias without has_bias, and an output whose need_* flag is False, are 1-element dummies.

def _wanted(need, *arrays):
    return tuple(a if n else None for a, n in zip(arrays, need))


def _starts(starts) -> list:
    return [int(s) for s in starts]


def lstm_forward(x, h0, c0, w_ih, w_hh, bias, has_bias, block, h, gates, c, tanh_c):
    forward(LSTM, x, h0, c0, w_ih, w_hh, bias if has_bias else None, None, range(len(x)), h, (gates, c, tanh_c))


def lstm_forward_checkpointed(x, h0, c0, w_ih, w_hh, bias, has_bias, block, starts, h, c_last, h_in, c_in, work):
    _, c_last[...] = forward(LSTM, x, h0, c0, w_ih, w_hh, bias if has_bias else None, None, range(len(x)), h,
                             starts=_starts(starts), h_in=h_in, c_in=c_in)


def lstm_backward(grad_out, h, gates, c, tanh_c, x, h0, c0, w_ih, w_hh, block, grad_h, grad_c, work, grad_x,
                  grad_w_ih, grad_w_hh, grad_b, step_grads, need_x, need_w_ih, need_w_hh, need_b, need_steps):
    backward(LSTM, range(len(x)), lambda k: (gates[k], c[k], tanh_c[k]), h, h0, c0, grad_out, grad_h, grad_c, x,
             w_ih, w_hh, _wanted((need_x, need_w_ih, need_w_hh, need_b, False), grad_x, grad_w_ih, grad_w_hh,
                                 grad_b, None), step_grads if need_steps else None)


def lstm_backward_checkpointed(grad_out, h_in, c_in, starts, x, w_ih, w_hh, bias, has_bias, block, grad_h,
                               grad_c, work, grad_x, grad_w_ih, grad_w_hh, grad_b, step_grads, need_x, need_w_ih,
                               need_w_hh, need_b, need_steps):
    backward_checkpointed(LSTM, grad_out, h_in, c_in, _starts(starts), x, w_ih, w_hh, bias if has_bias else None,
                          None, grad_h, grad_c,
                          _wanted((need_x, need_w_ih, need_w_hh, need_b, False), grad_x, grad_w_ih, grad_w_hh,
                                  grad_b, None), step_grads if need_steps else None)


def gru_forward(x, h0, w_ih, w_hh, bias, has_bias, b_hn, block, h, gates, hn, work):
    forward(GRU, x, h0, None, w_ih, w_hh, bias if has_bias else None, b_hn, range(len(x)), h, (gates, hn))


def gru_forward_checkpointed(x, h0, w_ih, w_hh, bias, has_bias, b_hn, block, starts, h, h_in, work):
    forward(GRU, x, h0, None, w_ih, w_hh, bias if has_bias else None, b_hn, range(len(x)), h,
            starts=_starts(starts), h_in=h_in)


def gru_backward(grad_out, h, gates, hn, x, h0, w_ih, w_hh, block, grad_h, work, grad_x, grad_w_ih, grad_w_hh,
                 grad_b_ih, grad_b_hh, step_grads, need_x, need_w_ih, need_w_hh, need_b, need_steps):
    backward(GRU, range(len(x)), lambda k: (gates[k], hn[k]), h, h0, None, grad_out, grad_h, None, x, w_ih, w_hh,
             _wanted((need_x, need_w_ih, need_w_hh, need_b, need_b), grad_x, grad_w_ih, grad_w_hh, grad_b_ih,
                     grad_b_hh), step_grads if need_steps else None)


def gru_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh, bias, has_bias, b_hn, block, grad_h, work,
                              grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh, step_grads, need_x, need_w_ih,
                              need_w_hh, need_b, need_steps):
    backward_checkpointed(GRU, grad_out, h_in, None, _starts(starts), x, w_ih, w_hh, bias if has_bias else None,
                          b_hn, grad_h, None,
                          _wanted((need_x, need_w_ih, need_w_hh, need_b, need_b), grad_x, grad_w_ih, grad_w_hh,
                                  grad_b_ih, grad_b_hh), step_grads if need_steps else None)


def rnn_forward(x, h0, w_ih, w_hh, bias, has_bias, relu, block, h, starts, h_in, work):
    forward(RNN(relu), x, h0, None, w_ih, w_hh, bias if has_bias else None, None, range(len(x)), h,
            starts=_starts(starts), h_in=h_in)


def rnn_backward(grad_out, h, x, h0, w_ih, w_hh, relu, block, grad_h, work, grad_x, grad_w_ih, grad_w_hh, grad_b,
                 step_grads, need_x, need_w_ih, need_w_hh, need_b, need_steps):
    backward(RNN(relu), range(len(x)), lambda k: (h[k],), h, h0, None, grad_out, grad_h, None, x, w_ih, w_hh,
             _wanted((need_x, need_w_ih, need_w_hh, need_b, False), grad_x, grad_w_ih, grad_w_hh, grad_b, None),
             step_grads if need_steps else None)


def rnn_backward_checkpointed(grad_out, h_in, starts, x, w_ih, w_hh, bias, has_bias, relu, block, grad_h, work,
                              grad_x, grad_w_ih, grad_w_hh, grad_b, step_grads, need_x, need_w_ih, need_w_hh,
                              need_b, need_steps):
    backward_checkpointed(RNN(relu), grad_out, h_in, None, _starts(starts), x, w_ih, w_hh,
                          bias if has_bias else None, None, grad_h, None,
                          _wanted((need_x, need_w_ih, need_w_hh, need_b, False), grad_x, grad_w_ih, grad_w_hh,
                                  grad_b, None), step_grads if need_steps else None)
