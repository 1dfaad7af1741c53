"""The optimizer steps in numpy: SGD and Adam over lists of parameters, in place.

The twin of csrc/optim.pyx: same names, signatures, results and errors (the checks are
kernels/_checks.py's), and the arithmetic in the same order, so the steps are bit for bit
the compiled ones.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import _checks


def sgd_step(params: list, grads: list, momentum_buffers: Optional[list], lr: float,
             momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
             nesterov: bool = False) -> None:
    """SGD (torch.optim.SGD) in place over lists of parameters and their gradients:
    d = grad + weight_decay * p; buf = d (first step) or momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf (nesterov) or buf; p -= lr * d. A None momentum buffer is a
    parameter's first step: the new buffer is stored in the list."""
    params, grads, momentum_buffers = _checks.sgd_args(params, grads, momentum_buffers, momentum)
    # Python floats: numpy rounds them to the arrays' dtype, as the compiled loop does
    lr, momentum, dampening, weight_decay = float(lr), float(momentum), float(dampening), float(weight_decay)
    for i, (p, g) in enumerate(zip(params, grads)):
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = momentum_buffers[i] = np.array(g, dtype=p.dtype, copy=True)
            else:
                buf *= momentum
                buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g


def adam_step(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, steps: list, lr: float,
              beta1: float, beta2: float, eps: float, weight_decay: float = 0.0) -> None:
    """Adam (torch.optim.Adam, L2 weight decay) in place over lists of parameters, gradients
    and moments; steps[i] is parameter i's step count t including this step:
    d = grad + weight_decay * p; m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
    params, grads, exp_avgs, exp_avg_sqs, steps = _checks.adam_args(params, grads, exp_avgs,
                                                                  exp_avg_sqs, steps)
    lr, beta1, beta2, eps, weight_decay = float(lr), float(beta1), float(beta2), float(eps), float(weight_decay)
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        if weight_decay != 0:
            g = g + weight_decay * p
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
        p -= step_size * (m / denom)
