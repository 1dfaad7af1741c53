"""Build the compiled kernels (csrc/_kernels.pyx -> tinygrad_vg._kernels).

Everything else about the package is in pyproject.toml. There is no pure-python
fallback: if Cython, numpy or scipy's cython_blas are missing, or the compiler
fails, the install fails.
"""
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "tinygrad_vg._kernels",
        ["csrc/_kernels.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
        # No FMA contraction: the kernels must round like their numpy twins.
        extra_compile_args=["-O3", "-ffp-contract=off"],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
    ),
)
