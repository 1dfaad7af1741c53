"""The linear kernels in numpy: matmul and the fused linear layer y = f(x W^T + b).

The twin of csrc/linear.pyx: same names, signatures, results and errors (the checks are
kernels/_checks.py's). The activations f are FUSED_ACTIVATIONS (kernels/_checks.py).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import _checks
from .elementwise import relu_backward, sigmoid_backward, sigmoid_forward, tanh_backward


def matmul(a: np.ndarray, b: np.ndarray, trans_a: bool = False, trans_b: bool = False,
           out: Optional[np.ndarray] = None) -> np.ndarray:
    """out = op(a) @ op(b), op(m) = m.T if trans_m else m; 2-D float32/float64"""
    a, b, out, m, _, n = _checks.matmul_args(a, b, trans_a, trans_b, out)
    if out is None:
        out = np.empty((m, n), dtype=a.dtype)
    op_a = a.T if trans_a else a
    op_b = b.T if trans_b else b
    return np.matmul(op_a, op_b, out=out)


def linear_act_forward(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                       activation: Optional[str] = None, residual: bool = False) -> Any:
    """y = f(x @ weight^T + bias); x (N, D_in), weight (D_out, D_in), bias (D_out,) or None;
    f: None/"identity", "tanh", "sigmoid", "relu". A new C-ordered (N, D_out) array.
    residual=True (square weight): the pair (y, x + y), a residual block's f output and sum."""
    x, weight, bias = _checks.linear_args(x, weight, bias, activation)
    _checks.check_residual(weight, residual)
    y = _linear_act(x, weight, bias, activation)
    return (y, np.add(x, y, out=np.empty_like(y))) if residual else y


def _linear_act(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray],
                activation: Optional[str]) -> np.ndarray:
    y = np.matmul(x, weight.T, out=np.empty((x.shape[0], weight.shape[0]), dtype=x.dtype))
    if bias is not None:
        y += bias
    if activation == "tanh":
        np.tanh(y, out=y)
    elif activation == "sigmoid":
        y = sigmoid_forward(y)
    elif activation == "relu":
        np.maximum(y, 0, out=y)
    return y


def linear_act_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, y: np.ndarray,
                        activation: Optional[str] = None, need_x: bool = True, need_w: bool = True,
                        need_b: bool = True, residual: bool = False) -> tuple:
    """grad_z = grad_out * f'(z), f' from the output y; grad_x = grad_z @ weight,
    grad_w = grad_z^T @ x, grad_b = grad_z summed over rows; None where not needed.
    residual=True (square weight): grad_x = grad_z @ weight + grad_out (the skip path)."""
    grad_out, x, weight, y = _checks.linear_backward_args(grad_out, x, weight, y, activation)
    _checks.check_residual(weight, residual)
    if activation == "tanh":
        grad_z = tanh_backward(grad_out, y)
    elif activation == "sigmoid":
        grad_z = sigmoid_backward(grad_out, y)
    elif activation == "relu":
        grad_z = relu_backward(grad_out, y)   # y > 0 exactly where z > 0
    else:
        grad_z = grad_out
    grad_x = (grad_z @ weight) if need_x else None
    if residual and need_x:
        grad_x += grad_out
    grad_w = (grad_z.T @ x) if need_w else None
    grad_b = grad_z.sum(axis=0) if need_b else None
    return grad_x, grad_w, grad_b
