"""Fused recurrent cell steps: one node per time step instead of a dozen.

Shapes: x_proj (N, G*H) = x W_ih^T + b_ih computed outside; h (N, H); W_hh (G*H, H);
b_hh (G*H,). Fusing the GRU step also makes h a single input of the step, so with
gradient checkpointing its gradient terms add up in the same order as without.
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
