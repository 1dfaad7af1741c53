"""The kernel families and their names: what each backend package (kernels/reference/,
kernels/compiled/) exposes, one module per family."""
from __future__ import annotations

import importlib

from .recurrent import KERNELS as RECURRENT, SequenceKernels

FAMILIES = {
    "elementwise": ("tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward", "relu_forward",
                    "relu_backward"),
    "linear": ("matmul", "linear_act_forward", "linear_act_backward"),
    "optim": ("sgd_step", "adam_step"),
    "memory": ("lock_arrays", "release_arrays"),
    "recurrent": RECURRENT,
    "conv": ("conv2d_forward", "conv2d_backward", "conv1d_forward", "conv1d_backward", "max_pool2d_forward",
             "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"),
}
KERNELS = tuple(name for names in FAMILIES.values() for name in names)


def load(package: str, backend: str) -> dict:
    """Every kernel of a backend package, by name: the families' functions, and for the
    recurrent family the entry points (kernels/recurrent.py) over the package's loops."""
    kernels = {}
    for family, names in FAMILIES.items():
        module = importlib.import_module(f"{package}.{family}")
        if family == "recurrent":
            module = SequenceKernels(module, backend)
        kernels.update({name: getattr(module, name) for name in names})
    return kernels
