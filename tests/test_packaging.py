"""Packaging: the version's one source, the sdist's contents, the install-time switch
without a compiler (TINYGRAD_VG_NO_EXTENSIONS=1), the kernels' report of it, the CLI's
lines for a missing compiler or matplotlib, the lazy scipy import, and the C headers'
portability guards compiled as strict C99 by whichever of gcc and clang are here.

The full installs (sdist into a fresh venv, the wheel, the no-compiler install) take
minutes and the network: they are .ci/run's job (.ci/install_check), not the suite's.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import tinygrad_vg
from tinygrad_vg import cli, kernels

ROOT = Path(__file__).resolve().parents[1]
HAS_PYPROJECT = (ROOT / "pyproject.toml").exists()
needs_pyproject = pytest.mark.skipif(not HAS_PYPROJECT, reason="needs pyproject.toml beside tests/")
needs_checkout = pytest.mark.skipif(
    not (HAS_PYPROJECT and (ROOT / "setup.py").exists() and (ROOT / "tinygrad_vg").is_dir()),
    reason="needs the source tree (setup.py and the package's sources)")


def _setuptools_version() -> tuple:
    try:
        from importlib.metadata import version
        return tuple(int(part) for part in version("setuptools").split(".")[:2])
    except Exception:  # not installed, or an unusual version string
        return (0,)


# setup.py run directly needs the setuptools of [build-system] (>= 77: the SPDX licence);
# pip's isolated build brings it, an old venv's setuptools does not.
needs_setuptools = pytest.mark.skipif(_setuptools_version() < (77,),
                                      reason="setup.py needs setuptools >= 77")


def _python(code: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


def _setup_py(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "setup.py", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


# ---------------------------------------------------------------- version and metadata

@needs_pyproject
def test_version_is_pyprojects():
    """One place: pyproject.toml; __version__ reads it back from the installed metadata."""
    text = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)[1]
    assert tinygrad_vg.__version__ == version
    source = ROOT / "tinygrad_vg" / "__init__.py"
    if source.exists():
        assert f'"{version}"' not in source.read_text()


@needs_pyproject
def test_metadata_declares_licence_readme_and_matplotlib():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license\s*=\s*"MIT"', text, re.M)
    assert re.search(r'^readme\s*=\s*"README.md"', text, re.M)
    dependencies = re.search(r"^dependencies\s*=\s*\[([^\]]*)\]", text, re.M)[1]
    assert '"matplotlib"' in dependencies
    assert "MIT License" in (ROOT / "LICENSE").read_text()


# ---------------------------------------------------------------- the sdist

@needs_checkout
@needs_setuptools
def test_sdist_holds_the_sources_tests_and_docs(tmp_path):
    """The sdist can build and test the package: the .pyx/.h sources (not the generated C),
    every test folder, the docs, the licence and the README."""
    result = _setup_py("-q", "egg_info", "--egg-base", str(tmp_path), "sdist", "-d", str(tmp_path),
                       env={"TINYGRAD_VG_NO_EXTENSIONS": ""})
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("tinygrad_vg-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.split()) if shutil.which("git") else set()
    expected = [f"csrc/{p.name}" for p in (ROOT / "csrc").iterdir() if p.suffix in (".pyx", ".pxd", ".h")]
    expected += [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")]
    expected += [str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")]
    expected += ["LICENSE", "README.md", "pyproject.toml", "setup.py", "Makefile",
                 "tests/conftest.py", "tests/lab/test_plots.py", "tests/nn/test_deep.py",
                 "tests/ops/test_activation.py", "docs/img/seed_figure_grad_norms.png"]
    missing = [name for name in expected if name not in names and (not tracked or name in tracked)]
    assert not missing, f"not in the sdist: {missing}"
    assert not [name for name in names if name.endswith((".c", ".so", ".pyd", ".o"))]


# ---------------------------------------------------------------- the switch at install time

@needs_checkout
@needs_setuptools
@pytest.mark.parametrize("value, extensions", [("1", False), ("", True), ("0", True)])
def test_no_extensions_switch_writes_build_config(tmp_path, value, extensions):
    """build_py writes _build_config.py (EXTENSIONS = False) only under the switch."""
    result = _setup_py("-q", "build_py", "-d", str(tmp_path), env={"TINYGRAD_VG_NO_EXTENSIONS": value})
    assert result.returncode == 0, result.stderr
    config = tmp_path / "tinygrad_vg" / "_build_config.py"
    assert config.exists() == (not extensions)
    if not extensions:
        namespace = {}
        exec(config.read_text(), namespace)
        assert namespace["EXTENSIONS"] is False


@needs_checkout
@needs_setuptools
def test_no_extensions_switch_rejects_a_value_it_does_not_know():
    result = _setup_py("--version", env={"TINYGRAD_VG_NO_EXTENSIONS": "maybe"})
    assert result.returncode != 0
    assert "TINYGRAD_VG_NO_EXTENSIONS='maybe'" in result.stderr + result.stdout


# A package installed with the switch, simulated: its _build_config says EXTENSIONS = False
# and the extensions were never built.
_NO_EXTENSIONS_INSTALL = (
    "import sys, types\n"
    "config = types.ModuleType('tinygrad_vg._build_config'); config.EXTENSIONS = False\n"
    "sys.modules['tinygrad_vg._build_config'] = config\n"
    + "".join(f"sys.modules['tinygrad_vg.kernels.compiled.{family}'] = None\n" for family in kernels.FAMILIES)
)


def _without_backend_variable() -> dict:
    env = dict(os.environ)
    env.pop("TINYGRAD_VG_BACKEND", None)
    return env


def test_install_without_extensions_picks_numpy_and_says_why():
    code = _NO_EXTENSIONS_INSTALL + (
        "from tinygrad_vg import kernels\n"
        "print(kernels.BACKEND, kernels.compiled)\nprint(kernels.report())\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_without_backend_variable(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    backends, report = result.stdout.splitlines()
    assert backends == "numpy None"
    assert report.startswith("numpy backend") and "TINYGRAD_VG_NO_EXTENSIONS=1" in report


def test_install_without_extensions_still_refuses_the_compiled_backend():
    """Asking for the compiled kernels of a package installed without them is an error, not a fallback."""
    code = _NO_EXTENSIONS_INSTALL + "from tinygrad_vg import kernels\n"
    result = _python(code, env={"TINYGRAD_VG_BACKEND": "compiled"})
    assert result.returncode != 0
    assert "not built" in result.stderr and "TINYGRAD_VG_NO_EXTENSIONS=1" in result.stderr


@pytest.mark.skipif(not kernels.EXTENSIONS, reason="this package was installed without extensions")
def test_default_install_without_extensions_fails_loudly():
    """A package installed normally whose extension is missing does not fall back to numpy."""
    code = "import sys\nsys.modules['tinygrad_vg.kernels.compiled.linear'] = None\nimport tinygrad_vg\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_without_backend_variable(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "not built" in result.stderr


def test_report_names_the_numpy_backends_reason():
    report = kernels.report()
    if kernels.BACKEND == "numpy":
        assert "TINYGRAD_VG_BACKEND=numpy" in report or "TINYGRAD_VG_NO_EXTENSIONS=1" in report
    else:
        assert report.startswith("compiled backend")


# ---------------------------------------------------------------- the CLI

_SMALL_RUN = ["run", "depth", "--depths", "3", "--kinds", "plain", "--norms", "none"]


def test_cli_says_when_the_kernels_are_not_compiled(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(kernels, "compiled", None)
    monkeypatch.setattr(kernels, "BACKEND", "numpy")
    assert cli.main(_SMALL_RUN + ["--no-plot", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "kernels are not compiled" in line]) == 1


def test_cli_without_matplotlib_writes_the_json_and_skips_the_plots(monkeypatch, tmp_path, capsys):
    real_find_spec = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    assert cli.main(_SMALL_RUN + ["--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "depth.json").read_text())["runs"]
    assert not list(tmp_path.glob("*.png"))
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "matplotlib is not installed" in line]) == 1


# ---------------------------------------------------------------- import cost

def test_import_does_not_load_scipy_special():
    """scipy.special (~0.3 s) is imported by gelu when it runs, not by `import tinygrad_vg`."""
    result = _python("import sys, tinygrad_vg\nprint('scipy.special' in sys.modules)\n"
                     "tinygrad_vg.functional.gelu(tinygrad_vg.Tensor([0.5]))\n"
                     "print('scipy.special' in sys.modules)\n", cwd=Path("/"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


# ---------------------------------------------------------------- portable C

_TRANSLATION_UNIT = """#include "elementwise_loops.h"
#include "linear_loops.h"
#include "optim_loops.h"
#include "recurrent_loops.h"
int main(void) {
    float x[4] = {0.5f, -1.0f, 2.0f, 0.0f}, y[4];
    tg_tanh_f(x, y, 4);
    tg_sigmoid_f(x, y, 4);
    return tg_vector_isa()[0] == 0;
}
"""


# How each compiler family sees the headers, as far as gcc and clang can show it here: their
# own GNU spellings; MSVC's (__restrict, __forceinline) through clang's Microsoft extensions,
# with _MSC_VER defined and the GNU macros removed; and a plain C99 compiler's.
_NOT_GNU = ["-U__GNUC__", "-U__clang__", "-Wno-builtin-macro-redefined"]
HEADER_BUILDS = {
    "gcc": ("gcc", []),
    "gcc+libmvec": ("gcc", ["-DTG_LIBMVEC=1"]),
    "clang": ("clang", []),
    "clang+libmvec": ("clang", ["-DTG_LIBMVEC=1"]),   # the simd attribute stays GCC's
    "msvc-spellings": ("clang", _NOT_GNU + ["-D_MSC_VER=1930", "-fms-extensions",
                                            "-Wno-language-extension-token"]),
    "plain-c99": ("clang", _NOT_GNU),
}


@needs_checkout
@pytest.mark.parametrize("build", HEADER_BUILDS)
def test_headers_compile_as_strict_c99(build, tmp_path):
    """No compiler-specific syntax outside its guard: -std=c99 -pedantic -Werror."""
    compiler, flags = HEADER_BUILDS[build]
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    if "-U__GNUC__" in flags and not sys.platform.startswith("linux"):
        pytest.skip("other systems' C headers may need the GNU macros removed here")
    source = tmp_path / "tu.c"
    source.write_text(_TRANSLATION_UNIT)
    command = [compiler, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function",
               "-ffp-contract=off", "-fno-math-errno", *flags, "-I", str(ROOT / "csrc"),
               "-c", str(source), "-o", str(tmp_path / "tu.o")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
