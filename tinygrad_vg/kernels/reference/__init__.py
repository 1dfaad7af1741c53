"""The numpy twins of the compiled kernels: one module per family, with the names of
csrc/<family>.pyx. Read them for the equations; tests/test_kernels.py and
tests/test_recurrent_kernels.py check every entry against its compiled twin.

This package exposes every kernel by name (kernels.reference.tanh_forward, ...)."""
from .._families import KERNELS, load

globals().update(load(__name__, "numpy"))
__all__ = list(KERNELS)
