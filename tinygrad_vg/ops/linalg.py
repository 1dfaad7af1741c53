"""Matrix product with numpy's rules: 1-D operands are promoted and the added
axis removed again; leading (batch) axes broadcast. Shapes: a (..., N, K),
b (..., K, M), y (..., N, M)."""
from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import Function


class MatMul(Function):
    """y = a @ b;  grad_a = grad_out @ b^T,  grad_b = a^T @ grad_out   (T swaps the last two axes)"""
    saves = ("a", "b")

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension; got shapes "
                             f"{a.shape} and {b.shape} (use * for scalars)")
        k_a = a.shape[-1]
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{k_a} (last axis of a) != {k_b} ({'only' if b.ndim == 1 else 'second-to-last'} axis of b)")
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be broadcast") from None
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad_out):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad_out
        if b.ndim == 1:   # b first: for 1-D @ 1-D grad_out is 0-d and needs (1,) before (1, 1)
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        grad_a = grad_b = None
        if self.needs_grad[0]:
            grad_a = g @ np.swapaxes(b2, -1, -2)
            if a.ndim == 1:
                grad_a = grad_a[..., 0, :]
        if self.needs_grad[1]:
            grad_b = np.swapaxes(a2, -1, -2) @ g
            if b.ndim == 1:
                grad_b = grad_b[..., 0]
        return grad_a, grad_b


class Linear(Function):
    """y = x @ W^T + b   (x (..., D_in), W (D_out, D_in), b (D_out,) or absent: torch.nn.functional.linear);
    grad_x = grad_out @ W,  grad_W = grad_out^T x (summed over batch axes),  grad_b = grad_out summed over batch axes"""
    saves = ("x", "weight")

    def forward(self, x, weight, bias=None):
        if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {x.shape} needs last dimension {weight.shape[-1]} "
                             f"to match weight of shape {weight.shape} (out_features, in_features)")
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias shape {bias.shape} must be ({weight.shape[0]},)")
        self.x, self.weight = x, weight
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, grad_out):
        x2 = self.x.reshape(-1, self.x.shape[-1])
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_x = (grad_out @ self.weight) if self.needs_grad[0] else None
        grad_w = (g2.T @ x2) if self.needs_grad[1] else None
        grad_b = g2.sum(axis=0) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return (grad_x, grad_w, grad_b)[:len(self.needs_grad)]   # no bias input: two gradients


class LinearAct(Function):
    """y = f(x @ W^T + b), one node for a whole layer (f: None, "tanh", "sigmoid", "relu");
    grad_z = grad_out * f'(z) (from the saved y, as Tanh/Sigmoid/Relu do),
    grad_x = grad_z @ W,  grad_W = grad_z^T x,  grad_b = grad_z summed over batch axes.
    Shapes as Linear: x (..., D_in), W (D_out, D_in), b (D_out,) or absent.
    residual=True (square W): y = x + f(x @ W^T + b), a whole residual block in one node;
    grad_x gets grad_out added (the skip path).

    The kernels (kernels.linear_act_forward/backward) do the gemm and the bias and
    activation pass without Python in between: at the small widths of the
    vanishing-gradient nets the per-op cost, not the arithmetic, is the time."""
    saves = ("x2", "weight", "y")

    def forward(self, x, weight, bias=None, activation=None, residual=False):
        x_shape, w_shape = x.shape, weight.shape
        if len(w_shape) != 2 or not x_shape or x_shape[-1] != w_shape[1]:
            raise ValueError(f"linear_act: input of shape {x_shape} needs last dimension {w_shape[-1]} "
                             f"to match weight of shape {w_shape} (out_features, in_features)")
        if bias is not None and bias.shape != (w_shape[0],):
            raise ValueError(f"linear_act: bias shape {bias.shape} must be ({w_shape[0]},)")
        if residual and w_shape[0] != w_shape[1]:
            raise ValueError(f"linear_act: residual=True adds x to the output, so the weight must be square "
                             f"(out_features == in_features); got weight of shape {w_shape}")
        self.activation, self.weight, self.residual = activation, weight, residual
        if len(x_shape) == 2:   # the common case, without the reshapes (a few tenths of a us each)
            self.x2, self.x_shape = x, None
        else:
            self.x_shape = x_shape
            x = x.reshape(-1, x_shape[-1])   # batch axes flattened: the kernels are 2-D
            self.x2 = x
        out = kernels.linear_act_forward(x, weight, bias, activation, residual)
        if residual:   # the kernel returns (y, x + y); the sum is not saved: backward needs y only
            self.y, out = out
        else:
            self.y = out
        return out if self.x_shape is None else out.reshape(x_shape[:-1] + (w_shape[0],))

    def backward(self, grad_out):
        needs = self.needs_grad
        if self.x_shape is not None:
            grad_out = grad_out.reshape(self.y.shape)
        grad_x, grad_w, grad_b = kernels.linear_act_backward(
            grad_out, self.x2, self.weight, self.y, self.activation,
            need_x=needs[0], need_w=needs[1], need_b=len(needs) > 2 and needs[2], residual=self.residual)
        if grad_x is not None and self.x_shape is not None:
            grad_x = grad_x.reshape(self.x_shape)
        return (grad_x, grad_w, grad_b)[:len(needs)]


class LinearActStack(Function):
    """y = h_L, with h_0 = x and h_{l+1} = f(h_l @ W_l^T + b_l) (+ h_l when residual): L LinearAct
    layers as ONE node; grad_h_l = layer l's LinearAct grad_x at grad_h_{l+1}, for l = L-1 down
    to 0 (grad_x = grad_h_0), and grad_W_l, grad_b_l are layer l's LinearAct gradients.

    Inputs: x, W_0 ... W_{L-1}, then b_0 ... b_{L-1} (every layer has a bias, or none does).
    Each layer runs LinearAct's kernels in the same order as L separate nodes would, so the
    values and gradients are the same bit for bit, and the stack saves what those nodes
    would: each layer's input h_l and f's output. Backward frees a layer's arrays once it
    has used them (unless retain_graph), as the engine frees a node's.
    Why: at the small widths of the vanishing-gradient nets a layer's arithmetic takes a
    few microseconds, about what recording a node and walking it in backward costs; one
    node for the stack leaves only the arithmetic. deep_mlp runs its plain and residual
    stacks through it when no hook needs to see the layers one by one."""

    def forward(self, x, *params, activation=None, residual=False, bias=True):
        # not recorded (no_grad, or no input requires grad): each layer's arrays are dropped as
        # soon as the next layer has them, as separate ops would
        save = self.recorded
        depth = len(params) // 2 if bias else len(params)
        if depth < 1 or (bias and len(params) != 2 * depth):
            raise ValueError(f"linear_act_stack: needs L >= 1 weights and, with bias=True, L biases; "
                             f"got {len(params)} parameter arrays")
        weights = params[:depth]
        biases = params[depth:] if bias else (None,) * depth
        x_shape = x.shape
        if x.ndim != 2:
            if x.ndim == 0:
                raise ValueError("linear_act_stack: the input needs at least 1 dimension")
            x = x.reshape(-1, x_shape[-1])   # batch axes flattened: the kernels are 2-D
        self.activation, self.residual, self.x_shape = activation, residual, x_shape
        self.weights, self.xs, self.ys = weights, [], []
        h = x
        for i, (weight, b) in enumerate(zip(weights, biases)):
            if weight.ndim != 2 or h.shape[1] != weight.shape[1] or (b is not None and b.shape != (weight.shape[0],)) \
                    or (residual and weight.shape[0] != weight.shape[1]):
                raise ValueError(f"linear_act_stack: layer {i}: input of shape {h.shape}, weight {weight.shape}"
                                 f"{'' if b is None else f', bias {b.shape}'}; each weight must be (out, in) "
                                 f"with in = the layer's input width{' and square (residual)' if residual else ''}, "
                                 "each bias (out,)")
            for what, a in (("weight", weight), ("bias", b)):
                if a is not None and a.dtype != x.dtype:
                    raise TypeError(f"linear_act_stack: layer {i}'s {what} is {a.dtype} and the input is "
                                    f"{x.dtype}; every layer needs the input's dtype (convert with .astype "
                                    "or the model's .to/.double)")
            out = kernels.linear_act_forward(h, weight, b, activation, residual)
            if save:
                self.xs.append(h)
            if residual:
                y, h = out
            else:
                y = h = out
            if save:
                self.ys.append(y)
        return h.reshape(x_shape[:-1] + (h.shape[1],)) if len(x_shape) != 2 else h

    def arrays_to_lock(self):
        """What a user can reach of what backward reads: the input, the weights, and the output
        (y of the last layer, unless residual); the other layers' arrays are the node's own."""
        return [self.xs[0], *self.weights] + ([] if self.residual else [self.ys[-1]])

    def saved_arrays(self):
        saved = {f"x{i}": a for i, a in enumerate(getattr(self, "xs", ())) if a is not None}
        saved.update({f"y{i}": a for i, a in enumerate(getattr(self, "ys", ())) if a is not None})
        return saved

    def backward(self, grad_out):
        needs, depth = self.needs_grad, len(self.weights)
        has_bias = len(needs) > depth + 1
        if self.ys[0] is None:   # a backward that freed them stopped half-way (an error, e.g. an anomaly)
            raise RuntimeError("Trying to backward through the graph a second time: this LinearActStack "
                               "node has already freed its saved values. Pass retain_graph=True to the "
                               "first backward() if you need to backward twice.")
        g = grad_out.reshape(self.ys[-1].shape)
        grad_ws, grad_bs = [None] * depth, [None] * depth
        for i in range(depth - 1, -1, -1):
            g, grad_ws[i], grad_bs[i] = kernels.linear_act_backward(
                g, self.xs[i], self.weights[i], self.ys[i], self.activation,
                need_x=i > 0 or needs[0], need_w=needs[1 + i],
                need_b=has_bias and needs[1 + depth + i], residual=self.residual)
            if self.last_backward:   # this layer's arrays are used: free them now, not at the end
                self.xs[i] = self.ys[i] = None
        if g is not None:
            g = g.reshape(self.x_shape)
        return (g, *grad_ws, *grad_bs) if has_bias else (g, *grad_ws)
