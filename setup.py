"""Build the compiled kernels (csrc/<family>.pyx -> tinygrad_vg.kernels.compiled.<family>).

Everything else about the package is in pyproject.toml.

Two ways to install, chosen at install time:

    pip install .                                  compiles the kernels; if Cython, numpy,
                                                   scipy's cython_blas or the C compiler
                                                   fail, the install fails (loudly: there
                                                   is no silent fallback)
    TINYGRAD_VG_NO_EXTENSIONS=1 pip install .      no compiler needed: the pure-Python
                                                   package, whose kernels are the numpy
                                                   twins (kernels.BACKEND == "numpy")

The second writes tinygrad_vg/_build_config.py (EXTENSIONS = False) into the wheel, so that
tinygrad_vg.kernels picks the numpy backend by itself and says why.

Compiler flags depend on the compiler (compiler_type of the build_ext command):
GCC and Clang get -O3 -ffp-contract=off -fno-math-errno, MSVC gets /O2 /fp:precise
(which does not contract into FMA); libmvec is linked only by GCC on x86-64 glibc >= 2.35.
The extensions are compiled in parallel (one job per core).
"""
import os
import platform
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.errors import CompileError
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.command.build_py import build_py as _build_py

SWITCH = "TINYGRAD_VG_NO_EXTENSIONS"


def _no_extensions() -> bool:
    value = os.environ.get(SWITCH, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise SystemExit(f"{SWITCH}={os.environ[SWITCH]!r}: expected 1 (install without the compiled "
                     "kernels) or 0 / unset (compile them)")


NO_EXTENSIONS = _no_extensions()


def _glibc_libmvec() -> bool:
    """glibc >= 2.35 on x86-64 has libmvec's tanhf/tanh (see csrc/_simd_math.h)."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return False
    libc, version = platform.libc_ver()
    try:
        major, minor = (int(v) for v in version.split(".")[:2])
    except ValueError:
        return False
    return libc == "glibc" and (major, minor) >= (2, 35)


def _is_gcc(compiler) -> bool:
    """Is this compiler GCC proper? Asked of the compiler itself (a wrapper such as ccache, or
    Clang answering to `gcc` as on macOS, would fool a look at its name)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "tg_is_gcc.c")
        with open(source, "w") as f:
            f.write("#if !defined(__GNUC__) || defined(__clang__) || defined(__INTEL_COMPILER)\n"
                    "#error setup.py probe (expected with Clang and others): not GCC, no libmvec\n"
                    "#endif\nint tg_is_gcc;\n")
        try:
            compiler.compile([source], output_dir=tmp)
        except CompileError:
            return False
    return True


# No FMA contraction: the kernels must round like their numpy twins.
# -fno-math-errno only drops errno writes from libm calls (results are the same),
# which lets the compiler vectorize loops that call them.
GNU_FLAGS = ["-O3", "-ffp-contract=off", "-fno-math-errno"]
# /fp:precise: no contraction into FMA (the default of MSVC 2022 unless /fp:contract).
MSVC_FLAGS = ["/O2", "/fp:precise"]


class build_ext(_build_ext):
    """Cythonizes at build time (not when setup.py is read: an sdist or a metadata query
    needs no Cython run), sets the flags of the compiler in use, builds in parallel."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        import numpy as np
        from Cython.Build import cythonize

        kind = self.compiler.compiler_type
        libmvec = kind == "unix" and _glibc_libmvec() and _is_gcc(self.compiler)
        if kind in ("unix", "mingw32", "cygwin"):
            flags = GNU_FLAGS
        elif kind == "msvc":
            flags = MSVC_FLAGS
        else:
            flags = []
        print(f"tinygrad_vg: compiling the kernels with {kind} {' '.join(flags)}"
              f"{'; libmvec' if libmvec else '; no libmvec'}; {self.parallel} parallel job(s)",
              flush=True)
        for ext in self.extensions:
            ext.include_dirs += [np.get_include(), "csrc"]
            ext.extra_compile_args += flags
            if libmvec:
                ext.define_macros.append(("TG_LIBMVEC", "1"))
                ext.libraries += ["mvec", "m"]
        # cythonize makes new Extension objects; only their .c sources are taken over, the
        # objects stay setuptools' own (finalized by this command).
        generated = cythonize(
            self.extensions,
            compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False},
            include_path=["csrc"],
        )
        sources = {ext.name: ext.sources for ext in generated}
        for ext in self.extensions:
            ext.sources = sources[ext.name]
        super().build_extensions()


class build_py(_build_py):
    """Writes tinygrad_vg/_build_config.py into the build: whether the kernels were compiled."""

    def run(self):
        super().run()
        if NO_EXTENSIONS and not getattr(self, "editable_mode", False):
            path = os.path.join(self.build_lib, "tinygrad_vg", "_build_config.py")
            with open(path, "w") as f:
                f.write('"""Written by setup.py at install time."""\n'
                        f"# {SWITCH}=1 was set: the compiled kernels were not built.\n"
                        "EXTENSIONS = False\n")

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if NO_EXTENSIONS:
            outputs.append(os.path.join(self.build_lib, "tinygrad_vg", "_build_config.py"))
        return outputs


# One extension per kernel family (tinygrad_vg/kernels/__init__.py), from csrc/<family>.pyx,
# with the C loops it includes.
FAMILIES = {
    "elementwise": ["csrc/elementwise_loops.h"],
    "linear": ["csrc/linear_loops.h", "csrc/elementwise_loops.h"],
    "optim": ["csrc/optim_loops.h"],
    "memory": [],
    "recurrent": ["csrc/recurrent_loops.h"],
    "conv": ["csrc/conv_loops.h"],
}
SHARED = ["csrc/_dispatch.h", "csrc/_simd_math.h", "csrc/_arrays.pxd", "csrc/_blas.pxd"]


def _extension(family: str) -> Extension:
    return Extension(
        f"tinygrad_vg.kernels.compiled.{family}", [f"csrc/{family}.pyx"],
        depends=FAMILIES[family] + SHARED,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    )


extensions = [] if NO_EXTENSIONS else [_extension(family) for family in FAMILIES]

setup(ext_modules=extensions, cmdclass={"build_ext": build_ext, "build_py": build_py})
