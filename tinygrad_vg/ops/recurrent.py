"""Recurrent ops: fused cell steps (one node per time step instead of a dozen), and whole
sequences (one node per layer, the loop over time in tinygrad_vg.kernels.recurrent).

Shapes: T steps, N batch, D input features, H hidden units, G gates (RNN 1, GRU 3,
LSTM 4). Steps: x_proj (N, G*H) = x W_ih^T + b_ih computed outside; h (N, H); W_hh
(G*H, H); b_hh (G*H,). Fusing the GRU step also makes h a single input of the step, so
with gradient checkpointing its gradient terms add up in the same order as without.
The cells (nn.GRUCell, nn.LSTMCell) use the step ops; nn.RNN, nn.GRU and nn.LSTM the
sequence ops.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function


class GRUStep(Function):
    """torch.nn.GRUCell with the input projection done outside (gate order r, z, n):
        r = sigmoid(x_r + h_r),  z = sigmoid(x_z + h_z),  n = tanh(x_n + r * h_n),
        h' = n + z * (h - n)   where [h_r, h_z, h_n] = h W_hh^T + b_hh.
    Backward, with g = grad_out:
        grad_n = g (1 - z);  grad_z = g (h - n);  grad_h (direct) = g z
        a_n = grad_n (1 - n^2);  a_z = grad_z z (1 - z);  a_r = a_n h_n r (1 - r)
        grad_x_proj = [a_r, a_z, a_n];  d(h_proj) = [a_r, a_z, a_n r]
        grad_h += d(h_proj) W_hh;  grad_W_hh = d(h_proj)^T h;  grad_b_hh = sum over N of d(h_proj)"""

    def forward(self, x_proj, h, weight_hh, bias_hh=None):
        hidden = h.shape[-1]
        if x_proj.shape != (h.shape[0], 3 * hidden) or weight_hh.shape != (3 * hidden, hidden):
            raise ValueError(f"gru step: x_proj {x_proj.shape}, h {h.shape} and weight_hh {weight_hh.shape} "
                             f"do not fit (N, 3H), (N, H), (3H, H)")
        h_proj = h @ weight_hh.T
        if bias_hh is not None:
            h_proj += bias_hh
        rz = kernels.sigmoid_forward(x_proj[:, :2 * hidden] + h_proj[:, :2 * hidden])
        r, z = rz[:, :hidden], rz[:, hidden:]
        n = kernels.tanh_forward(x_proj[:, 2 * hidden:] + r * h_proj[:, 2 * hidden:])
        self.h, self.weight_hh, self.h_n, self.r, self.z, self.n = h, weight_hh, h_proj[:, 2 * hidden:], r, z, n
        return n + z * (h - n)

    def backward(self, grad_out):
        h, r, z, n = self.h, self.r, self.z, self.n
        a_n = kernels.tanh_backward(grad_out * (1 - z), n)
        a_z = kernels.sigmoid_backward(grad_out * (h - n), z)
        a_r = kernels.sigmoid_backward(a_n * self.h_n, r)
        grad_x = np.concatenate([a_r, a_z, a_n], axis=1)
        grad_h_proj = np.concatenate([a_r, a_z, a_n * r], axis=1)
        grad_h = grad_out * z + grad_h_proj @ self.weight_hh
        grad_w = grad_h_proj.T @ h if self.needs_grad[2] else None
        grad_b = grad_h_proj.sum(axis=0) if len(self.needs_grad) > 3 and self.needs_grad[3] else None
        return grad_x, grad_h, grad_w, grad_b


class LSTMStep(Function):
    """torch.nn.LSTMCell in one node (gate order i, f, g, o). Output: [h', c'] stacked, (2, N, H).
        a = x W_ih^T + b_ih + h W_hh^T + b_hh = [a_i, a_f, a_g, a_o]
        i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g);  c' = f c + i g;  h' = o tanh(c')
    Backward, with g_h, g_c the two halves of grad_out:
        grad_c' = g_c + g_h o (1 - tanh(c')^2);  grad_c = grad_c' f
        grad_a = [grad_c' g i(1-i), grad_c' c f(1-f), grad_c' i (1-g^2), g_h tanh(c') o(1-o)]
        grad_x = grad_a W_ih;  grad_h = grad_a W_hh;  grad_W_ih = grad_a^T x;  grad_W_hh = grad_a^T h
        grad_b_ih = grad_b_hh = sum over N of grad_a
    It takes x rather than x W_ih^T so that the tape keeps only x, h, c, the gates and
    tanh(c') per step: what backpropagation through time cannot do without."""

    def forward(self, x, h, c, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
        hidden = h.shape[-1]
        if (bias_ih is None) != (bias_hh is None):
            raise ValueError("lstm step: give both biases (bias_ih and bias_hh) or neither")
        if (weight_hh.shape != (4 * hidden, hidden) or weight_ih.shape != (4 * hidden, x.shape[-1])
                or c.shape != h.shape or x.shape[0] != h.shape[0]):
            raise ValueError(f"lstm step: x {x.shape}, h {h.shape}, c {c.shape}, weight_ih {weight_ih.shape}, "
                             f"weight_hh {weight_hh.shape} do not fit (N, D), (N, H), (N, H), (4H, D), (4H, H)")
        a = x @ weight_ih.T
        a += h @ weight_hh.T
        if bias_ih is not None:
            a += bias_ih
            a += bias_hh
        gates = np.empty_like(a)
        gates[:, :2 * hidden] = kernels.sigmoid_forward(a[:, :2 * hidden])
        gates[:, 2 * hidden:3 * hidden] = kernels.tanh_forward(a[:, 2 * hidden:3 * hidden])
        gates[:, 3 * hidden:] = kernels.sigmoid_forward(a[:, 3 * hidden:])
        i, f, g, o = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        out = np.empty((2,) + h.shape, dtype=a.dtype)
        np.multiply(f, c, out=out[1])
        out[1] += i * g
        self.tanh_c = kernels.tanh_forward(out[1])
        np.multiply(o, self.tanh_c, out=out[0])
        self.x, self.h, self.c, self.gates = x, h, c, gates
        self.weight_ih, self.weight_hh = weight_ih, weight_hh
        return out

    def backward(self, grad_out):
        hidden = self.h.shape[-1]
        i, f, g, o = (self.gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
        grad_h_out, grad_c_out = grad_out[0], grad_out[1]
        grad_c = grad_c_out + kernels.tanh_backward(grad_h_out * o, self.tanh_c)
        grad_a = np.concatenate([
            kernels.sigmoid_backward(grad_c * g, i),
            kernels.sigmoid_backward(grad_c * self.c, f),
            kernels.tanh_backward(grad_c * i, g),
            kernels.sigmoid_backward(grad_h_out * self.tanh_c, o)], axis=1)
        needs = self.needs_grad
        grad_b = grad_a.sum(axis=0) if len(needs) > 5 and (needs[5] or needs[6]) else None
        return (grad_a @ self.weight_ih if needs[0] else None,
                grad_a @ self.weight_hh if needs[1] else None,
                grad_c * f if needs[2] else None,
                grad_a.T @ self.x if needs[3] else None,
                grad_a.T @ self.h if needs[4] else None,
                grad_b, grad_b)


# ----- whole sequences: one node per layer, the time loop in the kernels ----------------------
# Shapes: x (T, N, D), h0 and c0 (N, H), weight_ih (G*H, D), weight_hh (G*H, H), biases (G*H,).
# segments (param): None keeps every step's activations; a sequence of first steps of
# checkpoint segments (0 first) keeps only the state entering each segment and recomputes
# the rest during backward, with bit-for-bit the same gradients. step_hook (param):
# called during backward as step_hook(grad_h) with grad_h (T, N, H) = dL/dh_t for every t
# (read-only), the total gradient reaching each step's output. return_sequence (param):
# True outputs every step's h; False only the last step's, h_{T-1} (1, N, H). Its gradients
# are bit for bit those of the True output with a zero gradient at the other steps, and
# backward gets no (T, N, H) gradient; with segments, the node then keeps nothing of
# length T but its input x.

def _sequence_out(x: np.ndarray, h0: np.ndarray, whole: bool, extra: int) -> np.ndarray | None:
    """The output buffer (T + extra, N, H), (1 + extra, N, H) for the last step only, or None
    when the shapes are wrong (the kernel says how)."""
    if x.ndim != 3 or h0.ndim != 2 or x.shape[1] != h0.shape[0] or x.dtype != h0.dtype:
        return None
    return np.empty(((x.shape[0] if whole else 1) + extra,) + h0.shape, dtype=x.dtype)


def _sequence_grads(grad_out: np.ndarray, whole: bool, steps: int) -> tuple:
    """(grad_out of the steps' outputs (T, N, H) or None, grad_hT) for the backward kernels:
    with the last step only, its gradient is dL/dh_{T-1} and the other steps get none."""
    return (grad_out[:steps], None) if whole else (None, grad_out[0])


def _need_flags(needs_grad: tuple, leading: tuple) -> dict:
    """The backward kernels' need_* flags from a sequence node's needs_grad: the leading
    inputs (x and the initial state), then w_ih, w_hh and the two biases (absent without
    bias), whose gradients are one (b_ih and b_hh get the same one)."""
    names = leading + ("need_w_ih", "need_w_hh")
    flags = dict(zip(names, needs_grad))
    flags["need_b"] = any(needs_grad[len(names):])
    return flags


def _step_grads(hook, x: np.ndarray, weight_hh: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """The (T, N, H) array that receives dL/dh_t, when there is a hook to call with it."""
    return None if hook is None else np.empty(x.shape[:2] + weight_hh.shape[1:], dtype=dtype)


def _call_hook(hook, step_grads: np.ndarray | None) -> None:
    if hook is not None:
        step_grads.flags.writeable = False
        hook(step_grads)


class LSTMSequence(Function):
    """y = [h_0, ..., h_{T-1}, c_{T-1}] (T+1, N, H): torch.nn.LSTM's layer over all T steps, one node;
    with return_sequence=False y = [h_{T-1}, c_{T-1}] (2, N, H).
        a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh;  i, f, o = sigmoid, g = tanh of a_t's slices;
        c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)
    Backward through time, with grad_h_t the total dL/dh_t (from y and from step t+1):
        grad_c = grad_c + grad_h_t o (1 - tanh(c_t)^2);  grad_c_{t-1} = grad_c f
        grad_a_t = [grad_c g i(1-i), grad_c c_{t-1} f(1-f), grad_c i (1-g^2), grad_h_t tanh(c_t) o(1-o)]
        grad_h_{t-1} += grad_a_t W_hh;  grad_x_t = grad_a_t W_ih
        grad_W_ih = sum_t grad_a_t^T x_t;  grad_W_hh = sum_t grad_a_t^T h_{t-1};  grad_b_ih = grad_b_hh = sum grad_a

    The last row of y is the final cell state, so one node returns both parts of the state.
    It keeps per step the gates, c, tanh(c) and h (7 H floats per sample, the BPTT minimum),
    or with segments only the state entering each segment (see above)."""

    def forward(self, x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, segments=None, step_hook=None,
                return_sequence=True):
        whole = kernels.check_return_sequence("LSTMSequence", return_sequence)
        out = _sequence_out(x, h0, whole, 1)
        h_rows = None if out is None else out[:-1]
        if segments is None:
            h, gates, c, tanh_c = kernels.lstm_sequence_forward(
                x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, out=h_rows if whole else None)
            self.h, self.gates, self.c, self.tanh_c, self.h0, self.c0 = h, gates, c, tanh_c, h0, c0
            if not whole:
                h_rows[0] = h[-1]
            c_last = c[-1]
        else:
            _, c_last, self.h_in, self.c_in = kernels.lstm_sequence_forward_checkpointed(
                x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, segments, out=h_rows, return_sequence=whole)
            self.bias_ih, self.bias_hh = bias_ih, bias_hh
        out[-1] = c_last
        self.x, self.weight_ih, self.weight_hh = x, weight_ih, weight_hh
        self.segments, self.step_hook, self.whole = segments, step_hook, whole
        return out

    def backward(self, grad_out):
        need = _need_flags(self.needs_grad, ("need_x", "need_h0", "need_c0"))
        grad_seq, grad_hT = _sequence_grads(grad_out, self.whole, self.x.shape[0])
        step_grads = _step_grads(self.step_hook, self.x, self.weight_hh, grad_out.dtype)
        if self.segments is None:
            grads = kernels.lstm_sequence_backward(
                grad_seq, grad_hT, grad_out[-1], self.h, self.gates, self.c, self.tanh_c, self.x, self.h0, self.c0,
                self.weight_ih, self.weight_hh, step_grads=step_grads, **need)
        else:
            grads = kernels.lstm_sequence_backward_checkpointed(
                grad_seq, grad_hT, grad_out[-1], self.h_in, self.c_in, self.segments, self.x, self.weight_ih,
                self.weight_hh, self.bias_ih, self.bias_hh, step_grads=step_grads, **need)
        _call_hook(self.step_hook, step_grads)
        return grads[:len(self.needs_grad)]


class GRUSequence(Function):
    """y = [h_0, ..., h_{T-1}] (T, N, H): torch.nn.GRU's layer over all T steps, one node; with
    return_sequence=False y = [h_{T-1}] (1, N, H).
        r, z = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z});  hn = h_{t-1} W_hn^T + b_hn;
        n = tanh(x_t W_in^T + b_in + r hn);  h_t = n + z (h_{t-1} - n)
    Backward through time, with g = grad_h_t the total dL/dh_t (from y and from step t+1):
        a_n = g (1 - z)(1 - n^2);  a_z = g (h_{t-1} - n) z(1-z);  a_r = a_n hn r(1-r)
        grad_x_t = [a_r, a_z, a_n] W_ih;  grad_h_{t-1} += g z + [a_r, a_z, a_n r] W_hh
        grad_W_ih = sum [a_r, a_z, a_n]^T x_t;  grad_W_hh = sum [a_r, a_z, a_n r]^T h_{t-1}

    It keeps per step h, r, z, n and hn, or with segments only the state entering each segment."""

    def forward(self, x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, segments=None, step_hook=None,
                return_sequence=True):
        whole = kernels.check_return_sequence("GRUSequence", return_sequence)
        out = _sequence_out(x, h0, whole, 0)
        if segments is None:
            self.h, self.gates, self.hn = kernels.gru_sequence_forward(
                x, h0, weight_ih, weight_hh, bias_ih, bias_hh, out=out if whole else None)
            self.h0 = h0
            if not whole:
                out[0] = self.h[-1]
        else:
            out, self.h_in = kernels.gru_sequence_forward_checkpointed(
                x, h0, weight_ih, weight_hh, bias_ih, bias_hh, segments, out=out, return_sequence=whole)
            self.bias_ih, self.bias_hh = bias_ih, bias_hh
        self.x, self.weight_ih, self.weight_hh = x, weight_ih, weight_hh
        self.segments, self.step_hook, self.whole = segments, step_hook, whole
        return out

    def backward(self, grad_out):
        need = _need_flags(self.needs_grad, ("need_x", "need_h0"))
        grad_seq, grad_hT = _sequence_grads(grad_out, self.whole, self.x.shape[0])
        step_grads = _step_grads(self.step_hook, self.x, self.weight_hh, grad_out.dtype)
        if self.segments is None:
            grads = kernels.gru_sequence_backward(
                grad_seq, grad_hT, self.h, self.gates, self.hn, self.x, self.h0, self.weight_ih, self.weight_hh,
                step_grads=step_grads, **need)
        else:
            grads = kernels.gru_sequence_backward_checkpointed(
                grad_seq, grad_hT, self.h_in, self.segments, self.x, self.weight_ih, self.weight_hh, self.bias_ih,
                self.bias_hh, step_grads=step_grads, **need)
        _call_hook(self.step_hook, step_grads)
        return grads[:len(self.needs_grad)]


class RNNSequence(Function):
    """y = [h_0, ..., h_{T-1}] (T, N, H): torch.nn.RNN's layer over all T steps, one node; with
    return_sequence=False y = [h_{T-1}] (1, N, H).
        h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), f = tanh or relu (param nonlinearity)
    Backward through time, with grad_h_t the total dL/dh_t (from y and from step t+1):
        grad_a_t = grad_h_t f'(a_t)  (tanh: 1 - h_t^2;  relu: 1 where h_t > 0);  grad_h_{t-1} += grad_a_t W_hh
        grad_x_t = grad_a_t W_ih;  grad_W_ih = sum grad_a_t^T x_t;  grad_W_hh = sum grad_a_t^T h_{t-1}

    Every step's h is all its backward needs (its output, when that is the whole sequence);
    with segments it keeps only the state entering each segment."""

    def forward(self, x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh",
                segments=None, step_hook=None, return_sequence=True):
        whole = kernels.check_return_sequence("RNNSequence", return_sequence)
        out = _sequence_out(x, h0, whole, 0)
        if segments is None:
            self.h = kernels.rnn_sequence_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh,
                                                           nonlinearity, out=out if whole else None)
            self.h0 = h0
            if not whole:
                out[0] = self.h[-1]
        else:
            out, self.h_in = kernels.rnn_sequence_forward_checkpointed(
                x, h0, weight_ih, weight_hh, bias_ih, bias_hh, segments, nonlinearity, out=out,
                return_sequence=whole)
            self.bias_ih, self.bias_hh = bias_ih, bias_hh
        self.x, self.weight_ih, self.weight_hh = x, weight_ih, weight_hh
        self.nonlinearity, self.segments, self.step_hook, self.whole = nonlinearity, segments, step_hook, whole
        return out

    def backward(self, grad_out):
        need = _need_flags(self.needs_grad, ("need_x", "need_h0"))
        grad_seq, grad_hT = _sequence_grads(grad_out, self.whole, self.x.shape[0])
        step_grads = _step_grads(self.step_hook, self.x, self.weight_hh, grad_out.dtype)
        if self.segments is None:
            grads = kernels.rnn_sequence_backward(
                grad_seq, grad_hT, self.h, self.x, self.h0, self.weight_ih, self.weight_hh, self.nonlinearity,
                step_grads=step_grads, **need)
        else:
            grads = kernels.rnn_sequence_backward_checkpointed(
                grad_seq, grad_hT, self.h_in, self.segments, self.x, self.weight_ih, self.weight_hh, self.bias_ih,
                self.bias_hh, self.nonlinearity, step_grads=step_grads, **need)
        _call_hook(self.step_hook, step_grads)
        return grads[:len(self.needs_grad)]
