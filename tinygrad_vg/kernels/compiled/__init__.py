"""The compiled kernels: one extension per family, built from csrc/<family>.pyx by setup.py
(`make venv` or `pip install -e .`), with the names of kernels/reference/<family>.py.

This package exposes every kernel by name (kernels.compiled.tanh_forward, ...), importing
the extensions on first use: they import scipy.linalg (their BLAS), about 0.3 s that
`import tinygrad_vg` need not pay."""
from typing import Any

from .._families import KERNELS, load

__all__ = list(KERNELS)


def __getattr__(name: str) -> Any:
    if name in KERNELS:
        globals().update(load(__name__, "compiled"))
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
