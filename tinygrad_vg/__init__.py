"""tinygrad_vg: a small reverse-mode autodiff engine on numpy, a zoo of plain and
skip-connected deep nets, and a lab for the vanishing-gradient problem.

    import numpy as np, tinygrad_vg as tg
    x = tg.Tensor(np.random.randn(3, 4), requires_grad=True)
    w = tg.Tensor(np.random.randn(4, 2), requires_grad=True)
    (x.tanh() @ w).sum().backward()
    x.grad, w.grad
"""
from .autograd import Function, tape
from .grad_mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor, tensor
from .locking import LockedError
from .checkpoint import checkpoint
from . import functional, kernels, ops
from .gradcheck import GradcheckError, gradcheck, jacobians
from . import nn, optim, testing  # noqa: E402  (testing needs hypothesis: the `test` extra)
from .functional import (
    abs, argmax, argmin, argsort, broadcast_to, clip, concatenate, cos, cumsum, einsum, erf, exp,
    expand_dims, expm1, flatten, flip, gather, log, log1p, log2, log10, logsumexp, matmul, max,
    maximum, mean, min, minimum, one_hot, pad, prod, relu, repeat, repeat_interleave, reshape, roll,
    sigmoid, sign, sin, softmax, sort, sqrt, squeeze, stack, std, sum, take_along_axis, tan, tanh,
    tile, topk, transpose, tril, triu, unsqueeze, var, where,
)
from .explain import explain_backward, print_tape, tape_listing
from .graph import to_dot, render
from .animate import animate_backward, step_backward
from .io import load, save



def __getattr__(name: str):
    """`tg.lab` without importing it first: the lab loads on first use (import tinygrad_vg stays light)."""
    if name == "lab":
        import importlib
        return importlib.import_module(".lab", __name__)
    raise AttributeError(f"module 'tinygrad_vg' has no attribute {name!r}")


try:  # the version is written once, in pyproject.toml; the installed metadata carries it here
    from importlib.metadata import version as _version
    __version__ = _version("tinygrad_vg")
except Exception:  # not installed (a bare checkout on sys.path)
    __version__ = "0+unknown"

__all__ = [
    "Tensor", "tensor", "LockedError", "Function", "no_grad", "enable_grad", "is_grad_enabled",
    "detect_anomaly", "tape", "checkpoint", "gradcheck", "jacobians", "GradcheckError", "nn",
    "optim", "testing", "functional", "kernels", "ops", "abs", "clip", "concatenate", "exp", "log",
    "logsumexp", "matmul", "relu", "sigmoid", "softmax", "sqrt", "stack", "tanh", "where",
    "argmax", "argmin", "argsort", "broadcast_to", "cos", "cumsum", "einsum", "erf", "expand_dims",
    "expm1", "flatten", "flip", "gather", "log1p", "log2", "log10", "maximum", "mean", "minimum",
    "one_hot", "pad", "prod", "repeat", "repeat_interleave", "reshape", "roll", "sign", "sin", "sort",
    "squeeze", "std", "take_along_axis", "tan", "tile", "topk", "transpose", "tril", "triu",
    "unsqueeze", "var",
    # tg.sum, tg.max and tg.min exist but stay out of __all__: `from tinygrad_vg import *` must not
    # shadow Python's builtins
    "__version__", "explain_backward", "print_tape", "tape_listing", "to_dot", "render",
    "animate_backward", "step_backward",
]
