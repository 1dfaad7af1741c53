"""nn.utils: weight normalisation with torch.nn.utils.weight_norm's names and semantics.

    w = g * v / ||v||          (Salimans & Kingma 2016)

||v|| is the 2-norm over every axis of v except `dim` (dim=0, the default: one norm per
output row of a Linear weight (out, in), so g has shape (out, 1)); with dim=None one norm
over the whole tensor and g a scalar (shape ()). torch reads dim=-1 the same way as None
(norm_except_dim's convention), and so does this module; other negative dims are refused.

`weight_norm(module, "weight", dim)` replaces the parameter `weight` by two parameters,
`weight_g` (initialised to ||weight||, the shape above) and `weight_v` (initialised to
weight), so w is unchanged at first; the state dict then has `weight_g` and `weight_v`
where it had `weight`, after the module's other parameters, as torch's. `module.weight`
becomes a plain tensor, recomputed from g and v every time the module runs (and kept,
detached, for reading between runs), so the gradient reaches g and v:

    grad_g = sum over the non-dim axes of (grad_w * v) / ||v||
    grad_v = (g / ||v||) * (grad_w - (w / g) * grad_g)

(both come from the engine's ops: Mul, Sum, Sqrt, Div; nothing is written by hand).
`remove_weight_norm(module)` folds g and v back into one parameter `weight`.

Design: torch recomputes w in a forward pre-hook. Module has no pre-hooks, so weight_norm
puts a bound method named `forward` on the instance that recomputes w and then runs the
class's forward (copy.deepcopy copies it bound to the copy). Code that uses
`module.weight` without calling the module (deep_mlp's fused blocks, which hand the weight
to one fused op) takes `weight_of(module)` instead.
"""
from __future__ import annotations

import types
from typing import Any

import numpy as np

from ..grad_mode import no_grad
from ..tensor import Tensor
from .module import Module, Parameter

__all__ = ["weight_norm", "remove_weight_norm", "has_weight_norm", "compute_weight", "weight_of"]

_KEY = "_weight_norms"   # module.__dict__[_KEY]: {name: dim} of its weight-normalised parameters


def _norm_except_dim(v: Any, dim: int | None) -> Any:
    """||v|| over every axis except dim, kept as size-1 axes (so it broadcasts against v);
    over all of v (a scalar) for dim=None. Works on Tensors and on numpy arrays."""
    sqrt = np.sqrt if isinstance(v, np.ndarray) else Tensor.sqrt
    if dim is None:
        return sqrt((v * v).sum())
    axes = tuple(a for a in range(v.ndim) if a != dim)
    if not axes:   # a 1-D weight normalised along its only axis: ||v_i|| = |v_i|
        return sqrt(v * v)
    return sqrt((v * v).sum(axis=axes, keepdims=True))


def _check_dim(owner: str, name: str, dim: Any, ndim: int) -> int | None:
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"weight_norm: dim must be an int or None, got {dim!r}")
    dim = int(dim)
    if dim == -1:   # torch's norm_except_dim reads -1 as "over the whole tensor"
        return None
    if not 0 <= dim < ndim:
        raise ValueError(f"weight_norm: dim={dim} is out of range for {owner}.{name} of {ndim} dimension(s); "
                         f"accepted: 0 .. {ndim - 1}, or None / -1 for one norm over the whole tensor")
    return dim


def has_weight_norm(module: Module, name: str | None = None) -> bool:
    """True if weight_norm was applied to `name` of module (to any parameter, name=None)."""
    norms = module.__dict__.get(_KEY)
    return bool(norms) if name is None else bool(norms) and name in norms


def compute_weight(module: Module, name: str = "weight") -> Tensor:
    """g * v / ||v|| from the module's current name_g and name_v (recorded on the tape)."""
    g, v = getattr(module, name + "_g"), getattr(module, name + "_v")
    return v * (g / _norm_except_dim(v, module.__dict__[_KEY][name]))


def weight_of(module: Module, name: str = "weight") -> Tensor:
    """The weight the module computes with now: g * v / ||v|| (recorded on the tape) when
    `name` is weight-normalised, else the attribute itself. For code that uses a module's
    weight without calling the module (deep_mlp's fused blocks)."""
    norms = module.__dict__.get(_KEY)
    if norms and name in norms:
        return compute_weight(module, name)
    return getattr(module, name)


def forward(self: Module, *args: Any, **kwargs: Any) -> Any:
    """The class's forward with each weight-normalised attribute set to g * v / ||v|| (bound to a
    weight-normalised module as its instance attribute `forward`). Afterwards the attribute
    keeps the value, detached: the graph lives in what the forward returned, and a module
    that is called and its output dropped holds no graph (whose saved g and v an optimizer
    step could not change)."""
    names = list(self.__dict__[_KEY])
    for name in names:
        object.__setattr__(self, name, compute_weight(self, name))
    try:
        return type(self).forward(self, *args, **kwargs)
    finally:
        for name in names:
            object.__setattr__(self, name, getattr(self, name).detach())


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrise module's parameter `name` as name_g * name_v / ||name_v|| (torch's
    nn.utils.weight_norm); returns the module. See the module docstring for shapes and dim."""
    if not isinstance(module, Module):
        raise TypeError(f"weight_norm: expected an nn.Module, got {type(module).__name__}")
    owner = type(module).__name__
    if has_weight_norm(module, name):
        raise RuntimeError(f"weight_norm: {owner}.{name} is already weight-normalised "
                           f"(parameters {name}_g, {name}_v); remove_weight_norm first")
    if not isinstance(name, str) or name not in module._parameters:
        params = ", ".join(module._parameters) or "none"
        raise ValueError(f"weight_norm: {owner} has no parameter {name!r}; its parameters: {params}")
    weight = module._parameters[name]
    dim = _check_dim(owner, name, dim, weight.ndim)
    g = np.asarray(_norm_except_dim(weight.data, dim))
    if not np.all(g > 0):
        where = "the whole tensor" if dim is None else f"slice {int(np.argmin(g.ravel()))} along dim {dim}"
        raise ValueError(f"weight_norm: {owner}.{name} has norm 0 over {where}; g * v / ||v|| is undefined "
                         "there (0/0): initialise the weight with nonzero values first")
    delattr(module, name)
    setattr(module, name + "_g", Parameter(g.astype(weight.data.dtype)))
    setattr(module, name + "_v", Parameter(weight.data))
    norms = dict(module.__dict__.get(_KEY) or {})
    norms[name] = dim
    object.__setattr__(module, _KEY, norms)
    object.__setattr__(module, "forward", types.MethodType(forward, module))
    with no_grad():   # the value, for reading; each forward computes it again on the tape
        object.__setattr__(module, name, compute_weight(module, name))
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo weight_norm: `name` becomes one parameter again, holding g * v / ||v|| (as torch's
    nn.utils.remove_weight_norm); returns the module."""
    if not isinstance(module, Module):
        raise TypeError(f"remove_weight_norm: expected an nn.Module, got {type(module).__name__}")
    if not has_weight_norm(module, name):
        raise ValueError(f"remove_weight_norm: weight_norm of {name!r} not found in {type(module).__name__}")
    with no_grad():
        weight = compute_weight(module, name).data
    norms = dict(module.__dict__[_KEY])
    del norms[name]
    object.__setattr__(module, _KEY, norms)
    if not norms:
        del module.__dict__["forward"]
    object.__delattr__(module, name)
    delattr(module, name + "_g")
    delattr(module, name + "_v")
    setattr(module, name, Parameter(weight))
    return module
