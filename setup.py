"""Build the compiled kernels (csrc/_kernels.pyx -> tinygrad_vg._kernels).

Everything else about the package is in pyproject.toml. There is no pure-python
fallback: if Cython, numpy or scipy's cython_blas are missing, or the compiler
fails, the install fails.
"""
import platform
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _has_libmvec() -> bool:
    """glibc >= 2.35 on x86-64 has libmvec's tanhf/tanh (see csrc/_simd_math.h)."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return False
    libc, version = platform.libc_ver()
    try:
        major, minor = (int(v) for v in version.split(".")[:2])
    except ValueError:
        return False
    return libc == "glibc" and (major, minor) >= (2, 35)


LIBMVEC = _has_libmvec()

extensions = [
    Extension(
        "tinygrad_vg._kernels",
        ["csrc/_kernels.pyx"],
        depends=["csrc/_kernel_loops.h", "csrc/_simd_math.h"],
        include_dirs=[np.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([("TG_LIBMVEC", "1")] if LIBMVEC else []),
        libraries=["mvec", "m"] if LIBMVEC else [],
        # No FMA contraction: the kernels must round like their numpy twins.
        # -fno-math-errno only drops errno writes from libm calls (results are the same),
        # which lets gcc vectorize loops that call them.
        extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno"],
    ),
    # Whole-sequence RNN/GRU/LSTM kernels (tinygrad_vg/sequence_kernels.py); same flags.
    Extension(
        "tinygrad_vg._recurrent",
        ["csrc/_recurrent.pyx"],
        depends=["csrc/_recurrent_loops.h", "csrc/_simd_math.h"],
        include_dirs=[np.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
        + ([("TG_LIBMVEC", "1")] if LIBMVEC else []),
        libraries=["mvec", "m"] if LIBMVEC else [],
        extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno"],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    ),
)
