"""Shared test setup: hypothesis profiles and the kernel backend.

Hypothesis profiles, chosen by the environment variable HYPOTHESIS_PROFILE:
    dev (default)  50 examples per test
    ci             25 examples, derandomized (same examples every run)
    thorough       500 examples

The kernel backend is chosen by TINYGRAD_VG_BACKEND (compiled | numpy), or by
`pytest --kernel-backend numpy`, which sets that variable before tinygrad_vg is
imported. `make test` runs the whole suite once under each; the header of the
pytest report names the active one.
"""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(_PROFILE)


def pytest_addoption(parser):
    parser.addoption("--kernel-backend", choices=("compiled", "numpy"), default=None,
                     help="kernel backend for this run (sets TINYGRAD_VG_BACKEND)")


def pytest_configure(config):
    backend = config.getoption("--kernel-backend")
    if backend:
        os.environ["TINYGRAD_VG_BACKEND"] = backend


def pytest_report_header(config):
    try:
        from tinygrad_vg import kernels
    except Exception as error:  # reported here, and every test that imports it fails
        return f"tinygrad_vg kernels: NOT IMPORTABLE: {type(error).__name__}: {error}"
    built = "built" if kernels.compiled is not None else "NOT built"
    return (f"tinygrad_vg kernels: backend={kernels.BACKEND} (compiled extension {built}); "
            f"hypothesis profile={_PROFILE}")


@pytest.fixture(scope="session")
def compiled_kernels():
    """The compiled kernels. Skipped only when TINYGRAD_VG_BACKEND=numpy and the
    extension is not built; with the compiled backend a missing extension has
    already failed the import of tinygrad_vg."""
    from tinygrad_vg import kernels
    if kernels.compiled is None:
        pytest.skip("compiled extension not built (TINYGRAD_VG_BACKEND=numpy)")
    return kernels.compiled


@pytest.fixture(scope="session", params=["compiled", "reference"])
def kernel_impl(request):
    """Each kernel set in turn: the compiled kernels and their numpy twins."""
    if request.param == "compiled":
        return request.getfixturevalue("compiled_kernels")
    from tinygrad_vg import kernels
    return kernels.reference
