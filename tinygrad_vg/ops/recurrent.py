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
