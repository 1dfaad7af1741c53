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


class NllLoss(Function):
    """y_n = -w[t_n] x[n, t_n], the negative log-likelihood of log-probabilities x (N, C) at integer
    targets t (N,) with class weights w (default 1), 0 where t_n = ignore_index (mean: divided by the
    sum of w[t_n] over targets not ignored, NaN if there is none, as torch);
    grad_x = -grad_out w[t_n] [/ that sum] at (n, t_n), 0 elsewhere"""
    saves = ("cols", "weights")
    float_only = False   # integer targets; the log-probabilities are checked below

    def forward(self, logp, target, reduction="mean", ignore_index=-100, weight=None):
        _check_reduction("nll_loss", reduction)
        if logp.dtype.kind != "f":
            raise TypeError(f"nll_loss: log-probabilities must be float32 or float64; got {logp.dtype}")
        if logp.ndim != 2:
            raise ValueError(f"nll_loss: log-probabilities must have shape (N, C); got {logp.shape}")
        n, c = logp.shape
        if target.dtype.kind not in "iu":
            raise TypeError(f"nll_loss: targets must be integer class indices; got dtype {target.dtype}")
        if target.shape != (n,):
            raise ValueError(f"nll_loss: targets must have shape ({n},) for log-probabilities {logp.shape}; "
                             f"got {target.shape}")
        if weight is not None:
            weight = np.asarray(weight.data if isinstance(weight, Function.tensor_type) else weight)
            if weight.shape != (c,) or weight.dtype.kind not in "fiu":
                raise ValueError(f"nll_loss: weight must hold one number per class, shape ({c},); got "
                                 f"shape {weight.shape}, dtype {weight.dtype}")
        valid = target != ignore_index
        bad = valid & ((target < 0) | (target >= c))
        if bad.any():
            raise ValueError(f"nll_loss: class targets must lie in [0, {c - 1}] (or equal ignore_index="
                             f"{ignore_index}); got {target[bad][0]}")
        self.cols = np.where(valid, target, 0)
        w = np.ones((), logp.dtype) if weight is None else weight.astype(logp.dtype)[self.cols]
        self.weights = np.where(valid, w, 0).astype(logp.dtype)   # per sample; 0 where ignored
        per_sample = (self.weights * -logp[np.arange(n), self.cols]).astype(logp.dtype, copy=False)
        self.shape, self.reduction = logp.shape, reduction
        self.total_weight = self.weights.sum()
        if reduction == "none":
            return per_sample
        with np.errstate(invalid="ignore", divide="ignore"):   # mean of no target: NaN, as torch
            total = per_sample.sum()
            return np.asarray(total / self.total_weight if reduction == "mean" else total, dtype=logp.dtype)

    def backward(self, grad_out):
        g = grad_out if self.reduction == "none" else np.broadcast_to(grad_out, self.cols.shape)
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                g = g / self.total_weight
        grad = np.zeros(self.shape, dtype=grad_out.dtype)
        grad[np.arange(self.shape[0]), self.cols] = -g * self.weights
        return grad, None


def _check_pair(op: str, x: np.ndarray, target: np.ndarray) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: the input must be float32 or float64; got dtype {x.dtype}")
    if target.dtype.kind != "f":
        raise TypeError(f"{op}: targets must be float (probabilities in [0, 1]); got dtype {target.dtype}")
    if target.shape != x.shape:
        raise ValueError(f"{op}: target shape {target.shape} must equal the input's shape {x.shape}")


def _reduce(per_element: np.ndarray, reduction: str, dtype) -> np.ndarray:
    if reduction == "none":
        return per_element
    with np.errstate(invalid="ignore"):   # the mean of nothing is NaN, as numpy and torch
        total = per_element.sum()
        return np.asarray(total / per_element.size if reduction == "mean" else total, dtype=dtype)


def _upstream(grad_out: np.ndarray, reduction: str, n: int) -> np.ndarray:
    return grad_out / max(n, 1) if reduction == "mean" else grad_out


class BinaryCrossEntropy(Function):
    """y = -(t log p + (1 - t) log(1 - p)), each log clamped at -100 (torch's rule, so p = 0 or 1 is finite);
    grad_p = grad_out (p - t) / max(p (1 - p), 1e-12),  grad_t = grad_out (log(1 - p) - log p) [/ n for mean],
    with the clamped logs (the derivative of what forward computes; torch's grad_t is inf at p = 0 or 1)"""
    saves = ("p", "t")
    float_only = False   # checked by _check_pair, which names the target

    def forward(self, p, t, reduction="mean"):
        _check_reduction("binary_cross_entropy", reduction)
        _check_pair("binary_cross_entropy", p, t)
        if p.size and not ((p >= 0) & (p <= 1)).all():
            raise ValueError("binary_cross_entropy: inputs must be probabilities in [0, 1] (apply sigmoid "
                             "first, or use binary_cross_entropy_with_logits); got values from "
                             f"{np.nanmin(p)} to {np.nanmax(p)}")
        self.p, self.t, self.reduction = p, t, reduction
        log_p, log_q = self._logs()
        return _reduce(-(t * log_p + (1 - t) * log_q), reduction, p.dtype)

    def _logs(self) -> tuple:
        with np.errstate(divide="ignore"):
            return np.maximum(np.log(self.p), -100), np.maximum(np.log1p(-self.p), -100)

    def backward(self, grad_out):
        g = _upstream(grad_out, self.reduction, self.p.size)
        p, t = self.p, self.t
        grad_p = g * (p - t) / np.maximum(p * (1 - p), 1e-12)
        grad_t = None
        if self.needs_grad[1]:
            log_p, log_q = self._logs()
            grad_t = g * (log_q - log_p)
        return grad_p, grad_t


class BinaryCrossEntropyWithLogits(Function):
    """y = -(w t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) = (1 - t) x + (1 + (w - 1) t) softplus(-x)
    (the stable form, w = pos_weight, default 1, broadcast along the last axis as torch);
    grad_x = grad_out (sigmoid(x) (w t + 1 - t) - w t),  grad_t = grad_out ((w - 1) softplus(-x) - x),
    grad_w = grad_out t softplus(-x)   [/ n for mean]"""
    saves = ("x", "t", "w")
    float_only = False   # checked by _check_pair, which names the target

    def forward(self, x, t, *pos_weight, reduction="mean"):
        op = "binary_cross_entropy_with_logits"
        _check_reduction(op, reduction)
        _check_pair(op, x, t)
        if pos_weight:
            (w,) = pos_weight
            if not _broadcasts(w, x) or np.broadcast_shapes(w.shape, x.shape) != x.shape:
                raise ValueError(f"{op}: pos_weight of shape {w.shape} does not broadcast to the input's "
                                 f"shape {x.shape} (give one weight per class: shape ({x.shape[-1] if x.ndim else 1},))")
        else:
            w = np.ones((), dtype=x.dtype)
        self.x, self.t, self.w, self.reduction = x, t, w, reduction
        softplus_neg = np.logaddexp(0, -x)
        return _reduce((1 - t) * x + (1 + (w - 1) * t) * softplus_neg, reduction, x.dtype)

    def backward(self, grad_out):
        g = _upstream(grad_out, self.reduction, self.x.size)
        x, t, w = self.x, self.t, self.w
        sig = np.exp(-np.logaddexp(0, -x))
        grad_x = g * (sig * (w * t + 1 - t) - w * t)
        need_t = self.needs_grad[1]
        need_w = len(self.needs_grad) > 2 and self.needs_grad[2]
        softplus_neg = np.logaddexp(0, -x) if need_t or need_w else None
        return (grad_x, g * ((w - 1) * softplus_neg - x) if need_t else None,
                g * t * softplus_neg if need_w else None)


def _broadcasts(a: np.ndarray, b: np.ndarray) -> bool:
    try:
        np.broadcast_shapes(a.shape, b.shape)
        return True
    except ValueError:
        return False
