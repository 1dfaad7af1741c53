"""The kernels of the engine's hot loops: one pattern for every family.

A family is a set of kernels with one numpy module and one Cython module of the same name:

    family       numpy twin (read it)                compiled twin
    elementwise  kernels/reference/elementwise.py    csrc/elementwise.pyx  (loops: elementwise_loops.h)
    linear       kernels/reference/linear.py         csrc/linear.pyx       (linear_loops.h, BLAS)
    optim        kernels/reference/optim.py          csrc/optim.pyx        (optim_loops.h)
    memory       kernels/reference/memory.py         csrc/memory.pyx
    recurrent    kernels/reference/recurrent.py      csrc/recurrent.pyx    (recurrent_loops.h, BLAS)
    conv         kernels/reference/conv.py           csrc/conv.pyx         (conv_loops.h, BLAS)

Shared by all: kernels/_checks.py (every argument check, and FUSED_ACTIVATIONS, the one list
of fused activations), csrc/_blas.pxd (the one BLAS layer), csrc/_dispatch.h (the one
runtime-dispatch header), csrc/_arrays.pxd (the compiled fast path's array tests).

One boundary. A kernel's twins take the same arguments and give the same results and
errors: both get their checks from _checks. The per-layer families (elementwise, linear,
optim, memory) are called many times per training step, so their compiled twins test the
common case in C first and call _checks only for anything else; the recurrent family runs
a whole sequence per call, so its checks and allocation are one Python layer over both
twins' loops (kernels/recurrent.py); a convolution takes milliseconds, so the conv family's
compiled twin calls _checks on every call. A new family adds a reference module, a .pyx
of the same name, a FAMILIES entry (kernels/_families.py) and setup.py's list.

The module-level functions are those of the active backend, chosen once at import by the
environment variable TINYGRAD_VG_BACKEND:

    compiled (default)  the extensions (kernels/compiled/); ImportError saying how to build them if missing
    numpy               the numpy twins

`BACKEND` names the active one (report() says why). There is no silent fallback.
`reference` and `compiled` hold every kernel of each backend (compiled is None without the
extensions), for tests that compare the two.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from . import _checks, reference
from ._families import FAMILIES, KERNELS

__all__ = [
    "BACKEND", "BACKENDS", "FAMILIES", "FUSED_ACTIVATIONS", "KERNELS", "compiled", "reference", "report",
    "check_return_sequence", *KERNELS,
]

BACKENDS = ("compiled", "numpy")
FUSED_ACTIVATIONS = _checks.FUSED_ACTIVATIONS
check_return_sequence = _checks.check_return_sequence


# ---------------------------------------------------------------- backend selection

# The default is numpy only in a package installed without a compiler: with
# TINYGRAD_VG_NO_EXTENSIONS=1, setup.py writes _build_config.py (EXTENSIONS = False).
# That is a choice made at install time, not a failed build.
try:
    from .._build_config import EXTENSIONS
except ImportError:
    EXTENSIONS = True
NO_EXTENSIONS_SWITCH = "TINYGRAD_VG_NO_EXTENSIONS"
DEFAULT_BACKEND = "compiled" if EXTENSIONS else "numpy"

BACKEND = os.environ.get("TINYGRAD_VG_BACKEND", DEFAULT_BACKEND).strip().lower() or DEFAULT_BACKEND

if BACKEND not in BACKENDS:
    raise ValueError(f"TINYGRAD_VG_BACKEND={os.environ['TINYGRAD_VG_BACKEND']!r} is not a "
                     f"kernel backend; accepted: {', '.join(BACKENDS)}")


def not_built(error: Exception) -> ImportError:
    """The error for a missing extension under the compiled backend: never a silent fallback."""
    why = (f" This package was installed with {NO_EXTENSIONS_SWITCH}=1; reinstall it without "
           "that switch to compile them." if not EXTENSIONS else "")
    return ImportError(
        f"tinygrad_vg: the compiled kernels (tinygrad_vg.kernels.compiled) are not built.{why} Build them "
        "with `make venv` or `pip install -e .` (needs a C compiler), or set TINYGRAD_VG_BACKEND=numpy "
        f"to use the numpy kernels. ({error})")


def _missing() -> list:
    """The compiled families that are not built."""
    return [family for family in FAMILIES if importlib.util.find_spec(f"{__name__}.compiled.{family}") is None]


# The extensions are imported on first use, not here: importing them imports scipy.linalg
# (their BLAS), about 0.3 s that `import tinygrad_vg` need not pay. Whether they exist is
# checked now, so a missing build is still an error at import, never a silent fallback.
if BACKEND == "compiled" and _missing():
    raise not_built(ImportError(f"no module named tinygrad_vg.kernels.compiled.{_missing()[0]}"))


compiled = None if _missing() else importlib.import_module(f"{__name__}.compiled")


def _bind() -> None:
    """Import the compiled kernels and bind the active backend's kernels as this module's."""
    global compiled
    try:
        kernels = {name: getattr(compiled, name) for name in KERNELS} if compiled is not None else None
    except ImportError as error:   # built, but an extension does not load (e.g. another Python's)
        if BACKEND == "compiled":
            raise not_built(error) from error
        compiled = None
        kernels = None
    active = kernels if BACKEND == "compiled" else {name: getattr(reference, name) for name in KERNELS}
    globals().update(active)


def __getattr__(name: str) -> Any:
    """kernels.X for a kernel before the first use: bind them, then answer."""
    if name in KERNELS:
        _bind()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if BACKEND == "numpy":   # the numpy twins are bound now; the extensions only if asked for
    globals().update({name: getattr(reference, name) for name in KERNELS})


def report() -> str:
    """One line saying which kernels run: the backend (for the numpy one, why), and for the
    compiled one whether its tanh loops are vectorized through glibc's libmvec
    (csrc/_simd_math.h) and which instruction set its loops were dispatched to on this CPU
    (csrc/_dispatch.h)."""
    if BACKEND == "numpy":
        if not EXTENSIONS:
            why = f"the compiled kernels were not built ({NO_EXTENSIONS_SWITCH}=1 at install time)"
        else:
            why = ("chosen by TINYGRAD_VG_BACKEND=numpy (the compiled kernels are "
                   + ("not built)" if _missing() else "built)"))
        return f"numpy backend: every kernel is its numpy twin; {why}"
    elementwise = importlib.import_module(f"{__name__}.compiled.elementwise")
    isa = getattr(elementwise, "VECTOR_ISA", "?")
    vector = (f"vector math: tanh through libmvec, {isa} loops" if getattr(elementwise, "VECTOR_MATH", False)
              else f"vector math: none (scalar libm tanh), {isa} loops")
    return f"compiled backend: {', '.join(FAMILIES)} families compiled ({len(KERNELS)} kernels); {vector}"
