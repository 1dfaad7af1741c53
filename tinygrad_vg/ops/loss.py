"""Softmax, log-softmax and the losses. Shapes: logits (N, C), class targets (N,)
integers in [0, C), or probability targets (N, C)."""
from __future__ import annotations

import numpy as np

from ..autograd import Function
from .reduce import normalize_axis

REDUCTIONS = ("mean", "sum", "none")


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    if x.shape[axis] == 0:   # nothing to normalize over: an empty result, as torch gives
        return np.empty_like(x)
    m = np.max(x, axis=axis, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction {reduction!r} is not one of {REDUCTIONS}")


class Softmax(Function):
    """y = exp(x) / sum(exp(x), axis);  grad_x = y * (grad_out - sum(grad_out * y, axis))"""
    saves = ("y",)

    def forward(self, x, axis=-1):
        (self.axis,) = normalize_axis("softmax", axis, x.ndim)
        self.y = np.exp(_log_softmax(x, self.axis))
        return self.y

    def backward(self, grad_out):
        y = self.y
        return (y * (grad_out - np.sum(grad_out * y, axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x - logsumexp(x, axis);  grad_x = grad_out - exp(y) * sum(grad_out, axis)"""
    saves = ("y",)

    def forward(self, x, axis=-1):
        (self.axis,) = normalize_axis("log_softmax", axis, x.ndim)
        self.y = _log_softmax(x, self.axis)
        return self.y

    def backward(self, grad_out):
        return (grad_out - np.exp(self.y) * np.sum(grad_out, axis=self.axis, keepdims=True),)


class MSELoss(Function):
    """y = mean((pred - target)^2);  grad_pred = grad_out * 2 (pred - target) / n = -grad_target"""
    saves = ("diff",)

    def forward(self, pred, target, reduction="mean"):
        _check_reduction("mse_loss", reduction)
        if pred.shape != target.shape:
            raise ValueError(f"mse_loss: prediction shape {pred.shape} and target shape "
                             f"{target.shape} must be equal")
        self.diff = pred - target
        self.reduction = reduction
        sq = self.diff * self.diff
        if reduction == "none":
            return sq
        total = sq.sum()
        with np.errstate(invalid="ignore"):   # the mean of nothing is NaN, as in numpy and torch
            return np.asarray(total / sq.size if reduction == "mean" else total, dtype=pred.dtype)

    def backward(self, grad_out):
        scale = 2.0 / max(self.diff.size, 1) if self.reduction == "mean" else 2.0   # empty: no gradient
        grad = grad_out * scale * self.diff
        return grad, (-grad if self.needs_grad[1] else None)


class CrossEntropy(Function):
    """Cross-entropy of softmax(logits) and the targets, along the class axis 1.
    Class targets t: y_n = -log_softmax(x)_n,t_n;  probability targets p: y_n = -sum_c p_nc log_softmax(x)_nc.
    grad_x = grad_out * (softmax(x) - onehot(t) or p) [/ N for mean];
    grad_p = -grad_out * log_softmax(x) [/ N] for probability targets."""
    float_only = False   # integer class targets are welcome; the logits are checked below

    def forward(self, logits, target, reduction="mean"):
        _check_reduction("cross_entropy", reduction)
        if logits.dtype.kind != "f":
            raise TypeError(f"cross_entropy: logits must be float32 or float64; got {logits.dtype}")
        if logits.ndim != 2:
            raise ValueError(f"cross_entropy: logits must have shape (N, C); got {logits.shape}")
        n, c = logits.shape
        logp = _log_softmax(logits, axis=1)
        if target.dtype.kind in "iu":
            if target.shape != (n,):
                raise ValueError(f"cross_entropy: class targets must have shape ({n},) for logits "
                                 f"{logits.shape}; got {target.shape}")
            if target.size and (target.min() < 0 or target.max() >= c):
                raise ValueError(f"cross_entropy: class targets must lie in [0, {c - 1}]; got values "
                                 f"from {target.min()} to {target.max()}")
            per_sample = -logp[np.arange(n), target]
            self.onehot = np.zeros_like(logits)
            self.onehot[np.arange(n), target] = 1
        elif target.dtype.kind == "f":
            if target.shape != logits.shape:
                raise ValueError(f"cross_entropy: probability targets must have the logits' shape "
                                 f"{logits.shape}; got {target.shape}")
            per_sample = -(target * logp).sum(axis=1)
            self.onehot = target
        else:
            raise TypeError(f"cross_entropy: targets must be integer class indices or float "
                            f"probabilities; got dtype {target.dtype}")
        self.logp, self.reduction, self.n = logp, reduction, n
        if reduction == "none":
            return per_sample
        total = per_sample.sum()
        return np.asarray(total / max(n, 1) if reduction == "mean" else total, dtype=logits.dtype)

    def backward(self, grad_out):
        if self.reduction == "none":
            g = grad_out[:, None]
        else:
            g = grad_out / self.n if self.reduction == "mean" else grad_out
        grad_logits = g * (np.exp(self.logp) * self.onehot.sum(axis=1, keepdims=True) - self.onehot)
        grad_target = -g * self.logp if self.needs_grad[1] else None
        return grad_logits, grad_target
