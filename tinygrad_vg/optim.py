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


# torch.optim flags that a state dict from torch may carry: accepted at these values (what
# this package does), refused at any other.
_TORCH_FLAGS = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                "differentiable": False, "fused": None, "decoupled_weight_decay": False}


def _split_state_dict(owner: str, state_dict: Any) -> tuple[list, dict]:
    """(param_groups, state) of an optimizer state dict, after checking its layout."""
    if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
        keys = sorted(map(str, state_dict)) if isinstance(state_dict, dict) else type(state_dict).__name__
        raise ValueError(f"{owner}: expected a dict with keys 'param_groups' and 'state' (from "
                         f"optimizer.state_dict()), got {keys}")
    groups, state = state_dict["param_groups"], state_dict["state"]
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
        raise ValueError(f"{owner}: 'param_groups' must be a list of dicts, got {type(groups).__name__}")
    if not isinstance(state, dict):
        raise ValueError(f"{owner}: 'state' must be a dict keyed by parameter index, got {type(state).__name__}")
    return list(groups), state


def _group_hyperparameters(owner: str, group: dict, current: dict[str, Any]) -> dict[str, Any]:
    """The optimizer's hyperparameters from a parameter group; torch's extra flags are
    accepted where they mean what this package does, other keys are refused."""
    missing = sorted(set(current) - set(group))
    if missing:
        raise ValueError(f"{owner}: the parameter group has no {', '.join(missing)}")
    for key, value in group.items():
        if key in current or key == "params":
            continue
        if key in _TORCH_FLAGS and value == _TORCH_FLAGS[key]:
            continue
        raise ValueError(f"{owner}: the parameter group has {key}={value!r}, which this optimizer does not "
                         "support")
    return {key: group[key] for key in current}


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

    # ----- state dict (torch's layout) ------------------------------------------------
    # A subclass names the entries of its per-parameter state (those an entry must have,
    # and those it may have) and its hyperparameters (the constructor's keyword arguments).
    _STATE_KEYS: tuple[str, ...] = ()
    _REQUIRED_STATE_KEYS: tuple[str, ...] = ()

    def _hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: {"state": {index: {name: value}}, "param_groups": [{...hyper-
        parameters, "params": [0, 1, ...]}]}, a parameter known by its index in the list the
        optimizer was given. Arrays are copies, so later steps do not change a saved dict."""
        state = {}
        for i, p in enumerate(self.params):
            if p in self.state:
                state[i] = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.state[p].items()}
        group = {**self._hyperparameters(), "params": list(range(len(self.params)))}
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the hyperparameters and per-parameter state of `state_dict` (as state_dict()
        or torch.optim wrote it). Everything is checked first (the layout, the number of
        parameters, each hyperparameter as the constructor checks it, each state entry's
        name, shape and type); on any error nothing has changed."""
        owner = f"{type(self).__name__}.load_state_dict"
        groups, saved_state = _split_state_dict(owner, state_dict)
        if len(groups) != 1:
            raise ValueError(f"{owner}: the state dict has {len(groups)} parameter groups; this optimizer "
                             "has one")
        group = groups[0]
        ids = group.get("params")
        if not isinstance(ids, (list, tuple)) or len(ids) != len(self.params):
            count = len(ids) if isinstance(ids, (list, tuple)) else repr(ids)
            raise ValueError(f"{owner}: the state dict's parameter group has {count} parameters; this "
                             f"optimizer has {len(self.params)}")
        if not all(isinstance(i, (int, np.integer)) for i in ids) or len(set(map(int, ids))) != len(ids):
            raise ValueError(f"{owner}: the parameter group's 'params' must be distinct integers, got {ids!r}")
        hyper = _group_hyperparameters(owner, group, self._hyperparameters())
        checked = type(self)(self.params, **hyper)   # the constructor's own checks; self is untouched
        by_index = dict(zip((int(i) for i in ids), self.params))
        new_state: dict[Tensor, dict[str, Any]] = {}
        for index, entry in saved_state.items():
            if not isinstance(index, (int, np.integer)) or int(index) not in by_index:
                raise ValueError(f"{owner}: state entry {index!r} names no parameter of the group "
                                 f"(its indices are {list(by_index)[:5]}{'...' if len(by_index) > 5 else ''})")
            p = by_index[int(index)]
            new_state[p] = self._checked_entry(owner, int(index), p, entry)
        for name in hyper:
            setattr(self, name, getattr(checked, name))
        self.state = new_state

    def _checked_entry(self, owner: str, index: int, p: Tensor, entry: Any) -> dict[str, Any]:
        """One parameter's state, validated and converted: arrays of the parameter's shape in
        its dtype (copies), "step" a non-negative int."""
        if not isinstance(entry, dict):
            raise ValueError(f"{owner}: state[{index}] is a {type(entry).__name__}, not a dict")
        unknown = set(entry) - set(self._STATE_KEYS)
        missing = set(self._REQUIRED_STATE_KEYS) - set(entry)
        if unknown or missing:
            raise ValueError(f"{owner}: state[{index}] has keys {sorted(map(str, entry))}; "
                             f"{type(self).__name__} keeps {list(self._STATE_KEYS)}")
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "step":
                step = value.data if isinstance(value, Tensor) else value
                step = step[()] if isinstance(step, np.ndarray) and step.ndim == 0 else step
                if not _is_number(step) or step < 0 or step != int(step):
                    raise ValueError(f"{owner}: state[{index}]['step'] must be a whole number >= 0, "
                                     f"got {value!r}")
                out[key] = int(step)
                continue
            if value is None and key == "momentum_buffer":   # torch's entry with momentum 0
                continue
            array = value.data if isinstance(value, Tensor) else value
            if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
                got = f"an array of dtype {array.dtype}" if isinstance(array, np.ndarray) else repr(array)
                raise ValueError(f"{owner}: state[{index}][{key!r}] must be a float array, got {got}")
            if array.shape != p.data.shape:
                raise ValueError(f"{owner}: state[{index}][{key!r}] has shape {array.shape}; parameter "
                                 f"{index} has shape {p.data.shape}")
            out[key] = np.array(array, dtype=p.data.dtype, copy=True)
        return out

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

    _STATE_KEYS = ("momentum_buffer",)

    def _hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

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

    _STATE_KEYS = _REQUIRED_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")

    def _hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": self.weight_decay}

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
