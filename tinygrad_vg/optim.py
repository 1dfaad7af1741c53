"""Optimizers with torch.optim's update equations, and gradient clipping.

Each optimizer holds a list of parameters (Tensors that require grad) and updates
their .data in place on step(); a parameter whose .grad is None is skipped, as in
torch. Per-parameter state (momentum buffers, Adam's moments) lives in
`optimizer.state`, keyed by the parameter. step() is one call of a fused kernel over
all the parameters (kernels.sgd_step / adam_step: one pass over each array, compiled
or its numpy twin), not a few numpy expressions per parameter.

    SGD:  g = grad + weight_decay * p
          b = g (first step), else b = momentum * b + (1 - dampening) * g
          g = g + momentum * b (nesterov) or g = b (momentum > 0)
          p = p - lr * g
    Adam: g = grad + weight_decay * p;  t = t + 1
          m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g^2
          p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from . import kernels, locking
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "StepInBackward", "clip_grad_norm_"]


def _param_list(owner: str, params: Any) -> list[Tensor]:
    if isinstance(params, Tensor):
        params = [params]
    params = list(params)
    if not params:
        raise ValueError(f"{owner}: got an empty parameter list (did the model build any parameters? "
                         "pass list(model.parameters()))")
    seen: set[int] = set()
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: parameter {i} is a {type(p).__name__}; expected a Tensor "
                            "(e.g. from model.parameters())")
        if p.data.dtype.kind != "f":
            raise TypeError(f"{owner}: parameter {i} has dtype {p.data.dtype}; parameters must be float")
        if id(p) in seen:
            raise ValueError(f"{owner}: parameter {i} appears more than once in the list; it would be "
                             "updated twice per step")
        seen.add(id(p))
    return params


def _is_number(value: Any) -> bool:
    """a real number: int, float, a numpy one, or a 0-d numpy array of one (not a bool)"""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_number(owner: str, name: str, value: Any, accepted: str = "a number") -> None:
    if not _is_number(value):
        raise TypeError(f"{owner}: {name} must be {accepted}, got {value!r}")


def _check_nonnegative(owner: str, **values: float) -> None:
    for name, value in values.items():
        _check_number(owner, name, value, "a number >= 0")
        if not value >= 0.0:   # also rejects NaN
            raise ValueError(f"{owner}: {name} must be >= 0, got {value}")


def _like(buffer: np.ndarray | None, data: np.ndarray) -> np.ndarray | None:
    """An optimizer state array in its parameter's dtype (after Module.to(), .double()...)."""
    if buffer is None or buffer.dtype == data.dtype:
        return buffer
    return buffer.astype(data.dtype)


class Optimizer:
    """Base class: holds the parameters, zero_grad() clears their gradients."""

    def __init__(self, params: Iterable[Tensor]) -> None:
        self.params = _param_list(type(self).__name__, params)
        self.state: dict[Tensor, dict[str, Any]] = {}

    def _with_grads(self, params: Iterable[Tensor]) -> tuple[list[Tensor], list[np.ndarray], list[np.ndarray]]:
        """(parameters, their data arrays, their gradients) for those of `params` that have a
        gradient (.grad has the parameter's shape and dtype: Tensor checks assignments).
        A parameter that a recorded node saved for a backward not yet run is refused: the
        update would change what that backward reads (locking.py)."""
        owners, arrays, grads = [], [], []
        for p in params:
            g = p._grad   # the arrays themselves (.data is a read-only view while locked)
            if g is None:
                continue
            owners.append(p)
            arrays.append(p._data)
            grads.append(g)
        if locking.held:
            for p in owners:
                if locking.locked_by(p._data) is not None:
                    i = next(i for i, q in enumerate(self.params) if q is p)
                    name = repr(p.name) if p.name else f"{i} (shape {p.shape})"
                    locking.check_writeable(p.data, f"{type(self).__name__}.step() on parameter {name}")
        return owners, arrays, grads

    def zero_grad(self) -> None:
        """Set every parameter's .grad to None (torch's default set_to_none=True)."""
        for p in self.params:
            p._grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient (one kernel call for all of them)."""
        self._update(self.params)

    def _update(self, params: Iterable[Tensor]) -> None:
        raise NotImplementedError

    def step_in_backward(self) -> StepInBackward:
        """Update each parameter inside backward(), as soon as its gradient is complete, and
        then drop that gradient (.grad = None): PyTorch's "optimizer step in backward" recipe
        (a post-accumulate-grad hook per parameter), built in. A training step is then
        `loss.backward()` alone; step() and zero_grad() have nothing left to do.

        The update is the same as step()'s, parameter by parameter (one kernel call each, so
        it is not faster than step(); measured on W2 it is a few percent slower). What changes
        is memory: the gradients need not all be held at once. What is given up: anything
        that needs every gradient before the update, such as clip_grad_norm_ or gradient
        accumulation over several backward passes. A parameter's gradient is complete, and it is updated, once backward
        has passed the last node that uses it; so with one node per layer the gradients come
        and go one layer at a time, while a node that holds many layers (deep_mlp's stack)
        hands over all of its parameters' gradients at once. When the graph has a checkpoint,
        every parameter is updated at the end of backward. Parameters that do not require grad
        (frozen) are left alone, as step() does. Returns a handle; handle.remove() goes back
        to step()."""
        def hook(p: Tensor) -> None:
            self._update((p,))
            p.grad = None
        return StepInBackward([p.register_post_accumulate_grad_hook(hook) for p in self.params
                               if p.requires_grad and p.is_leaf])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.params)} parameters, {self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class StepInBackward:
    """What Optimizer.step_in_backward returns: remove() unregisters its hooks."""

    def __init__(self, handles: list) -> None:
        self._handles = handles

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)."""

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, dampening: float = 0.0, nesterov: bool = False) -> None:
        _check_nonnegative("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        _check_number("SGD", "dampening", dampening)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False, got {nesterov!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0; got momentum="
                             f"{momentum}, dampening={dampening}")
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.dampening, self.nesterov = dampening, nesterov

    def _update(self, params: Iterable[Tensor]) -> None:
        """One kernel call (kernels.sgd_step) updates every parameter that has a gradient."""
        owners, arrays, grads = self._with_grads(params)
        if not owners:
            return
        buffers = None
        if self.momentum != 0:   # None: a parameter's first step; the kernel makes its buffer
            buffers = [_like(self.state.get(p, {}).get("momentum_buffer"), data) for p, data in zip(owners, arrays)]
        kernels.sgd_step(arrays, grads, buffers, float(self.lr), float(self.momentum),
                         float(self.dampening), float(self.weight_decay), bool(self.nesterov))
        if buffers is not None:
            for p, buf in zip(owners, buffers):
                self.state.setdefault(p, {})["momentum_buffer"] = buf

    def extra_repr(self) -> str:
        return (f"lr={self.lr}, momentum={self.momentum}, weight_decay={self.weight_decay}, "
                f"dampening={self.dampening}, nesterov={self.nesterov}")


class Adam(Optimizer):
    """Adam with bias correction (torch.optim.Adam; weight decay added to the gradient, L2 style)."""

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        _check_nonnegative("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(_is_number(b) for b in betas):
            raise TypeError(f"Adam: betas must be a pair of numbers in [0, 1); got {betas!r}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1); got {tuple(betas)}")
        super().__init__(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay

    def _update(self, params: Iterable[Tensor]) -> None:
        """One kernel call (kernels.adam_step) updates every parameter that has a gradient."""
        owners, arrays, grads = self._with_grads(params)
        if not owners:
            return
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for p, data in zip(owners, arrays):
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {"step": 0, "exp_avg": np.zeros_like(data),
                                         "exp_avg_sq": np.zeros_like(data)}
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = _like(state[key], data)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"] + 1)
        beta1, beta2 = self.betas
        kernels.adam_step(arrays, grads, exp_avgs, exp_avg_sqs, steps, float(self.lr), float(beta1),
                          float(beta2), float(self.eps), float(self.weight_decay))
        for p in owners:   # counted once the update is done: a step that raised does not count
            self.state[p]["step"] += 1

    def extra_repr(self) -> str:
        return f"lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"


def clip_grad_norm_(params: Any, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the gradients in place so that their joint norm is at most max_norm
    (torch.nn.utils.clip_grad_norm_): total = ||(||g_1||, ..., ||g_k||)||_p over the
    parameters that have a gradient; if total > max_norm every g is multiplied by
    max_norm / (total + 1e-6). Returns total, the norm before clipping."""
    if isinstance(params, Tensor):
        params = [params]
    params = [p for p in params if p.grad is not None]
    grads = [np.asarray(p.grad) for p in params]
    if isinstance(norm_type, str) and norm_type == "inf":
        norm_type = math.inf
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf, got {norm_type}")
    _check_nonnegative("clip_grad_norm_", max_norm=max_norm)
    if not grads:
        return 0.0
    if norm_type == math.inf:
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) if g.size else 0.0 for g in grads])
        total = float(np.linalg.norm(norms, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of the gradients is {total}; "
                           "pass error_if_nonfinite=False to clip anyway")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for p in params:
            if isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
                p.grad *= coef   # in place, as torch
            else:                # a NumPy scalar or read-only array someone assigned
                p.grad = np.asarray(p.grad) * coef
    return total
