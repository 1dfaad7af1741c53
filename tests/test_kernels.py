"""Compiled kernels against their numpy twins (tinygrad_vg/kernels/: reference/ vs csrc/).

What "equal" means here:
- tanh_backward, sigmoid_backward, relu_forward, relu_backward: bit for bit (NaN
  where the twin has NaN). Both sides do the same IEEE operations in the same
  order; the extension is built with -ffp-contract=off so no FMA sneaks in.
- tanh_forward, sigmoid_forward: within TRANSCENDENTAL_ULPS units in the last
  place, because libm's tanh/exp and numpy's (SIMD) tanh/exp round differently.
  Measured on x86-64 (AVX2, glibc, numpy 2.4): at most 3 ulp for both kernels in
  both dtypes, over 2^28 float32 bit patterns (every 16th) and 22M float64 values;
  each side is within about 2.5 ulp of the exact value.
- matmul: the two sides call different BLAS builds (scipy's and numpy's), which may
  sum in different orders, so both are held to the standard gemm error bound
  |C - C_exact| <= (k + 1) * (eps * (|op(a)| @ |op(b)|) + tiny), checked against a
  float64 (or long double) product; tiny, the smallest normal float, covers underflow.
"""
from __future__ import annotations  # `X | None` hints on Python 3.9

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_vg import kernels

TRANSCENDENTAL_ULPS = 4  # measured 3; one more for other libm/numpy builds
ROOT = Path(__file__).resolve().parents[1]

UNARY = ["tanh_forward", "sigmoid_forward", "relu_forward"]
BINARY = {"tanh_backward": ("grad_out", "y"), "sigmoid_backward": ("grad_out", "y"),
          "relu_backward": ("grad_out", "x")}
EXACT = {"tanh_backward", "sigmoid_backward", "relu_forward", "relu_backward"}
LAYOUTS = ["C", "F", "strided", "reversed", "transposed"]


# ---------------------------------------------------------------- helpers

def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many representable floats lie between a and b (0 where both are NaN)."""
    int_type = np.int32 if a.dtype == np.float32 else np.int64
    ia = a.view(int_type).astype(np.int64)
    ib = b.view(int_type).astype(np.int64)
    # Map the sign-magnitude bit patterns onto one monotone integer line.
    low = np.iinfo(int_type).min
    ia = np.where(ia < 0, low - ia, ia)
    ib = np.where(ib < 0, low - ib, ib)
    return np.where(np.isnan(a) & np.isnan(b), 0, np.abs(ia - ib))


def assert_kernel_equal(name: str, got: np.ndarray, want: np.ndarray):
    assert got.dtype == want.dtype and got.shape == want.shape
    if name in EXACT:
        np.testing.assert_array_equal(got, want, err_msg=name, strict=True)
    else:
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        worst = int(ulp_distance(got, want).max(initial=0))
        assert worst <= TRANSCENDENTAL_ULPS, f"{name}: {worst} ulp apart"


def with_layout(base: np.ndarray, layout: str) -> np.ndarray:
    """An array equal to base, laid out in memory as `layout` says."""
    if layout == "C" or base.ndim == 0:
        return base.copy()
    if layout == "F":
        return np.asfortranarray(base)
    if layout == "strided":  # every other element of a bigger array along each axis
        big = np.full(tuple(2 * s for s in base.shape), np.nan, dtype=base.dtype)
        view = big[tuple(slice(None, None, 2) for _ in base.shape)]
        view[...] = base
        return view
    if layout == "reversed":  # negative strides
        flipped = np.flip(base).copy()
        return np.flip(flipped)
    if layout == "transposed":  # the transpose of a C array: F-like for 2-D, neither for 3-D+
        return np.ascontiguousarray(base.T).T
    raise AssertionError(layout)


dtypes = st.sampled_from([np.float32, np.float64])
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
layouts = st.sampled_from(LAYOUTS)


@st.composite
def float_arrays(draw, dtype, shape, finite=False, bound=None):
    elements = st.floats(width=np.dtype(dtype).itemsize * 8,
                         allow_nan=not finite, allow_infinity=not finite,
                         min_value=None if bound is None else -bound,
                         max_value=None if bound is None else bound)
    base = draw(hnp.arrays(dtype, shape, elements=elements))
    return with_layout(base, draw(layouts))


# ---------------------------------------------------------------- compiled == numpy twin

@pytest.mark.parametrize("name", UNARY)
@given(data=st.data(), dtype=dtypes, shape=shapes)
def test_unary_matches_numpy_twin(compiled_kernels, name, data, dtype, shape):
    x = data.draw(float_arrays(dtype, shape), label="x")
    x_before = x.copy()
    got = getattr(compiled_kernels, name)(x)
    with np.errstate(all="ignore"):  # hypothesis picks huge values and signalling NaNs
        want = getattr(kernels.reference, name)(x)
    assert_kernel_equal(name, got, want)
    np.testing.assert_array_equal(x, x_before)  # input untouched
    assert not np.shares_memory(got, x)


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), dtype=dtypes, shape=shapes)
def test_binary_matches_numpy_twin(compiled_kernels, name, data, dtype, shape):
    grad_out = data.draw(float_arrays(dtype, shape), label="grad_out")
    other = data.draw(float_arrays(dtype, shape), label=BINARY[name][1])
    got = getattr(compiled_kernels, name)(grad_out, other)
    with np.errstate(all="ignore"):  # overflow to inf is part of what is compared
        want = getattr(kernels.reference, name)(grad_out, other)
    assert_kernel_equal(name, got, want)


@pytest.mark.parametrize("name", UNARY + sorted(BINARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 2), (1, 1), (), (7,)])
def test_small_and_empty_shapes(kernel_impl, name, dtype, shape):
    rng = np.random.default_rng(0)
    args = [rng.standard_normal(shape).astype(dtype)]
    if name in BINARY:
        args.append(rng.uniform(-1, 1, shape).astype(dtype))
    got = getattr(kernel_impl, name)(*args)
    assert isinstance(got, np.ndarray) and got.shape == shape and got.dtype == dtype
    assert_kernel_equal(name, got, getattr(kernels.reference, name)(*args))


@pytest.mark.parametrize("name", UNARY + sorted(BINARY))
def test_contiguous_order_is_kept(kernel_impl, name):
    """C or F input -> output in the same order (worked on in place, not copied)."""
    for order in "CF":
        x = np.asarray(np.random.default_rng(1).standard_normal((4, 3)), order=order)
        out = getattr(kernel_impl, name)(*([x, x] if name in BINARY else [x]))
        assert out.flags[f"{order}_CONTIGUOUS"]


def test_numpy_scalars_and_broadcast_views(kernel_impl):
    row = np.linspace(-3, 3, 5)
    x = np.broadcast_to(row, (4, 5))  # stride 0, read-only
    for name in UNARY:
        got = getattr(kernel_impl, name)(x)
        assert_kernel_equal(name, got, getattr(kernels.reference, name)(np.array(x)))
    got = kernel_impl.tanh_forward(np.float64(0.5))
    assert got.shape == () and got == pytest.approx(np.tanh(0.5), rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(kernel_impl, dtype):
    x = np.array([-1e30, -1000.0, -100.0, 0.0, 100.0, 1000.0, 1e30, -np.inf, np.inf], dtype=dtype)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = kernel_impl.sigmoid_forward(x)
    assert np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1))
    assert y[0] == 0 and y[3] == 0.5 and y[6] == 1 and y[7] == 0 and y[8] == 1
    assert 0 < y[2] < 1e-40 or dtype == np.float32  # exp(-100) survives in float64


def test_special_values(kernel_impl):
    x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -2.0, 2.0])
    assert np.isnan(kernel_impl.relu_forward(x)[0])  # NaN propagates
    np.testing.assert_array_equal(kernel_impl.relu_forward(x)[1:], [0, np.inf, 0, 0, 0, 2])
    np.testing.assert_array_equal(kernel_impl.tanh_forward(x)[1:3], [-1, 1])
    np.testing.assert_array_equal(kernel_impl.relu_backward(np.ones_like(x), x),
                                  [0, 0, 1, 0, 0, 0, 1])


# ---------------------------------------------------------------- bad input, both sets

BAD_DTYPES = [np.int64, np.int32, np.bool_, np.float16, np.complex128, object]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", UNARY + sorted(BINARY))
def test_bad_dtype_raises_type_error(kernel_impl, name, bad):
    x = np.ones((2, 3), dtype=bad)
    good = np.ones((2, 3))
    calls = [(x,)] if name in UNARY else [(x, good), (good, x)]
    for args in calls:
        with pytest.raises(TypeError, match=rf"{name}: .*dtype {np.dtype(bad)}.*float32 or float64"):
            getattr(kernel_impl, name)(*args)


def test_non_arrays_raise_type_error(kernel_impl):
    with pytest.raises(TypeError, match=r"tanh_forward: x must be a numpy array.*got list"):
        kernel_impl.tanh_forward([1.0, 2.0])
    with pytest.raises(TypeError, match=r"relu_backward: x must be a numpy array.*got float"):
        kernel_impl.relu_backward(np.ones(2), 1.0)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_mismatch_raises(kernel_impl, name):
    first, second = BINARY[name]
    f = getattr(kernel_impl, name)
    with pytest.raises(ValueError, match=rf"{name}: {first} has shape \(2, 3\) but {second} has shape \(3, 2\)"):
        f(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"no broadcasting"):
        f(np.ones((2, 3)), np.ones(3))
    with pytest.raises(TypeError, match=rf"{name}: {first} is float32 but {second} is float64"):
        f(np.ones(3, np.float32), np.ones(3))


# ---------------------------------------------------------------- matmul

@st.composite
def matmul_cases(draw):
    dtype = draw(dtypes)
    m, k, n = (draw(st.integers(0, 7)) for _ in range(3))
    trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
    elements = st.floats(-100, 100, width=np.dtype(dtype).itemsize * 8)
    a = draw(hnp.arrays(dtype, (k, m) if trans_a else (m, k), elements=elements))
    b = draw(hnp.arrays(dtype, (n, k) if trans_b else (k, n), elements=elements))
    a = with_layout(a, draw(st.sampled_from(["C", "F", "strided", "reversed"])))
    b = with_layout(b, draw(st.sampled_from(["C", "F", "strided", "reversed"])))
    out_order = draw(st.sampled_from([None, "C", "F"]))
    return a, b, trans_a, trans_b, out_order


def assert_gemm_close(got, a, b, trans_a, trans_b):
    wide = np.longdouble if got.dtype == np.float64 else np.float64
    op_a = (a.T if trans_a else a).astype(wide)
    op_b = (b.T if trans_b else b).astype(wide)
    k = op_a.shape[1]
    exact = op_a @ op_b
    info = np.finfo(got.dtype)
    bound = (k + 1) * (info.eps * (np.abs(op_a) @ np.abs(op_b)) + info.tiny)  # tiny: underflow
    assert np.all(np.abs(got.astype(wide) - exact) <= bound)


@given(case=matmul_cases())
def test_matmul_matches_numpy_twin(compiled_kernels, case):
    a, b, trans_a, trans_b, out_order = case
    for impl in (compiled_kernels, kernels.reference):
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        out = None if out_order is None else np.full((m, n), np.nan, a.dtype, order=out_order)
        got = impl.matmul(a, b, trans_a=trans_a, trans_b=trans_b, out=out)
        assert got.shape == (m, n) and got.dtype == a.dtype
        if out is not None:
            assert got is out
        assert_gemm_close(got, a, b, trans_a, trans_b)


def test_matmul_transposes_are_not_copied(compiled_kernels):
    """A transposed view of a C array is F-contiguous: it goes to BLAS as it is."""
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 5))
    want = a.T @ b.T
    for x, y, ta, tb in [(a, b, True, True), (a.T, b.T, False, False), (a.T, b, False, True),
                         (a, b.T, True, False)]:
        np.testing.assert_allclose(compiled_kernels.matmul(x, y, ta, tb), want, rtol=1e-12)


def test_matmul_empty_inner_dimension_gives_zeros(kernel_impl):
    out = kernel_impl.matmul(np.ones((3, 0)), np.ones((0, 2)))
    np.testing.assert_array_equal(out, np.zeros((3, 2)))


def test_matmul_bad_input_raises(kernel_impl):
    mm = kernel_impl.matmul
    with pytest.raises(TypeError, match=r"matmul: a has dtype int64; accepted: float32 or float64"):
        mm(np.ones((2, 2), np.int64), np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"matmul: a is float32 but b is float64"):
        mm(np.ones((2, 2), np.float32), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"matmul: a and b must be 2-D; got shapes \(2,\) and \(2, 2\)"):
        mm(np.ones(2), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"matmul: op\(a\) is 2x3 but op\(b\) is 2x2.*inner dimensions"):
        mm(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"matmul: out has shape \(3, 3\); expected \(2, 4\)"):
        mm(np.ones((2, 3)), np.ones((3, 4)), out=np.empty((3, 3)))
    with pytest.raises(TypeError, match=r"matmul: out must be a float64 numpy array; got float32"):
        mm(np.ones((2, 3)), np.ones((3, 4)), out=np.empty((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"matmul: out must be a writeable C- or F-contiguous"):
        mm(np.ones((2, 3)), np.ones((3, 4)), out=np.empty((4, 4))[::2])


# ---------------------------------------------------------------- backend selection

def test_active_backend_is_reported_and_used():
    assert kernels.BACKEND in kernels.BACKENDS
    expected_backend = os.environ.get("TINYGRAD_VG_BACKEND", "") or kernels.DEFAULT_BACKEND
    assert kernels.BACKEND == expected_backend.strip().lower()
    active = kernels.compiled if kernels.BACKEND == "compiled" else kernels.reference
    for name in kernels.KERNELS:
        assert getattr(kernels, name) is getattr(active, name)
        assert getattr(kernels.reference, name).__name__ == name


def _import_kernels(backend: str, hide_extension: str | None = None,
                    module: str = "kernels") -> subprocess.CompletedProcess:
    code = "import sys\n"
    if hide_extension:  # as if that extension had never been built
        code += f"sys.modules['tinygrad_vg.{hide_extension}'] = None\n"
    code += f"from tinygrad_vg import {module}\nprint({module}.BACKEND)\n"
    env = {**os.environ, "TINYGRAD_VG_BACKEND": backend}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_unknown_backend_raises_value_error():
    result = _import_kernels("fortran")
    assert result.returncode != 0
    assert "ValueError" in result.stderr and "accepted: compiled, numpy" in result.stderr


@pytest.mark.parametrize("family", list(kernels.FAMILIES))
def test_missing_extension_is_loud(family):
    """Any one family's extension missing: the compiled backend refuses to import, naming it."""
    extension = f"kernels.compiled.{family}"
    result = _import_kernels("compiled", extension)
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "(tinygrad_vg.kernels.compiled) are not built" in result.stderr
    assert "make venv" in result.stderr
    if kernels.compiled is not None:   # otherwise every family is missing, and the first is named
        assert f"tinygrad_vg.{extension}" in result.stderr
    result = _import_kernels("numpy", extension)  # numpy asked for: fine
    assert result.returncode == 0 and result.stdout.strip() == "numpy", result.stderr


def test_every_family_has_twins_with_the_same_names():
    """The pattern: kernels/reference/<family>.py and csrc/<family>.pyx, same public names."""
    import importlib
    for family, names in kernels.FAMILIES.items():
        assert (Path(kernels.__file__).parent / "reference" / f"{family}.py").exists(), family
        if (ROOT / "csrc").is_dir():   # a checkout (the installed package has no sources)
            assert (ROOT / "csrc" / f"{family}.pyx").exists(), family
        reference = importlib.import_module(f"tinygrad_vg.kernels.reference.{family}")
        if kernels.compiled is None:
            continue
        compiled = importlib.import_module(f"tinygrad_vg.kernels.compiled.{family}")
        public = {n for n in dir(reference) if callable(getattr(reference, n)) and not n.startswith("_")
                  and getattr(getattr(reference, n), "__module__", None) == reference.__name__}
        if family == "recurrent":   # loops, called by the entry points of kernels/recurrent.py
            public = {n for n in public if n.startswith(("lstm_", "gru_", "rnn_"))}
        else:
            assert public == set(names), family
        for name in public:
            assert callable(getattr(compiled, name, None)), f"csrc/{family}.pyx lacks {name}"


# ---------------------------------------------------------------- fused linear layer
# linear_act_forward/backward: the two sides call different BLAS builds, so y and the
# gradients are held to the gemm error bound (see assert_gemm_close) carried through
# the activation, whose slope is at most 1, plus TRANSCENDENTAL_ULPS of the output.

LINEAR_ACTS = [None, "tanh", "sigmoid", "relu"]


def gemm_bound(op_a: np.ndarray, op_b: np.ndarray, extra=0.0) -> np.ndarray:
    wide = np.longdouble if op_a.dtype == np.float64 else np.float64
    info = np.finfo(op_a.dtype)
    mag = np.abs(op_a.astype(wide)) @ np.abs(op_b.astype(wide)) + np.abs(extra)
    return (op_a.shape[-1] + 2) * (info.eps * mag + info.tiny)


@st.composite
def linear_cases(draw, square=False):
    """(x, w, b, g, activation); square=True: d_out == d_in, as residual=True needs"""
    dtype = draw(dtypes)
    n, d_in, d_out = (draw(st.integers(0, 6)) for _ in range(3))
    if square:
        d_out = d_in
    elements = st.floats(-4, 4, width=np.dtype(dtype).itemsize * 8)
    x = draw(hnp.arrays(dtype, (n, d_in), elements=elements))
    w = draw(hnp.arrays(dtype, (d_out, d_in), elements=elements))
    b = draw(st.none() | hnp.arrays(dtype, (d_out,), elements=elements))
    g = draw(hnp.arrays(dtype, (n, d_out), elements=elements))
    layout = st.sampled_from(["C", "F", "strided", "reversed"])
    x, w, g = (with_layout(a, draw(layout)) for a in (x, w, g))
    return x, w, b, g, draw(st.sampled_from(LINEAR_ACTS))


@given(case=linear_cases())
def test_linear_act_matches_numpy_twin(compiled_kernels, case):
    x, w, b, g, act = case
    before = [a.copy() for a in (x, w, g)]
    y = compiled_kernels.linear_act_forward(x, w, b, act)
    want = kernels.reference.linear_act_forward(x, w, b, act)
    assert y.shape == want.shape == (x.shape[0], w.shape[0]) and y.dtype == x.dtype
    assert y.flags.c_contiguous
    eps = np.finfo(x.dtype).eps
    assert np.all(np.abs(y - want) <= gemm_bound(x, w.T, 0 if b is None else b)
                  + TRANSCENDENTAL_ULPS * eps * np.abs(want))
    # backward from the same y on both sides: act'(.) is then exact, only the gemms differ
    got = compiled_kernels.linear_act_backward(g, x, w, want, act)
    ref = kernels.reference.linear_act_backward(g, x, w, want, act)
    mag_g = np.abs(g)
    for name, c, r, bound in (("grad_x", got[0], ref[0], gemm_bound(mag_g, w)),
                              ("grad_w", got[1], ref[1], gemm_bound(mag_g.T, x)),
                              ("grad_b", got[2], ref[2], gemm_bound(mag_g.T, np.ones((g.shape[0], 1), g.dtype))[:, 0])):
        assert c.shape == r.shape and c.dtype == r.dtype, name
        assert np.all(np.abs(c - r) <= bound), name
    for a, a0 in zip((x, w, g), before):
        np.testing.assert_array_equal(a, a0)   # inputs untouched


@pytest.mark.parametrize("act", LINEAR_ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d_in,d_out", [(1, 1, 1), (0, 3, 2), (3, 0, 2), (3, 2, 0), (32, 20, 20)])
def test_linear_act_small_and_empty(kernel_impl, act, dtype, n, d_in, d_out):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((n, d_in)).astype(dtype)
    w = rng.standard_normal((d_out, d_in)).astype(dtype)
    b = rng.standard_normal(d_out).astype(dtype)
    y = kernel_impl.linear_act_forward(x, w, b, act)
    want = kernels.reference.linear_act_forward(x, w, b, act)
    np.testing.assert_allclose(y, want, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    grads = kernel_impl.linear_act_backward(np.ones_like(want), x, w, want, act)
    for got, shape in zip(grads, [x.shape, w.shape, b.shape]):
        assert got.shape == shape and got.dtype == dtype
    some = kernel_impl.linear_act_backward(np.ones_like(want), x, w, want, act, need_x=False, need_b=False)
    assert some[0] is None and some[2] is None and some[1].shape == w.shape


@given(case=linear_cases(square=True))
def test_linear_act_residual_is_the_plain_kernel_plus_the_skip_path_exactly(kernel_impl, case):
    # residual=True: forward gives (y, x + y), backward adds grad_out to grad_x; on each
    # backend bit for bit the plain kernel's results with the sum done by numpy
    x, w, b, g, act = case
    before = [a.copy() for a in (x, w, g)]
    y, total = kernel_impl.linear_act_forward(x, w, b, act, residual=True)
    plain = kernel_impl.linear_act_forward(x, w, b, act)
    np.testing.assert_array_equal(y, plain)
    np.testing.assert_array_equal(total, x + plain)
    assert total.dtype == x.dtype and total.flags.c_contiguous and not np.shares_memory(total, y)
    got = kernel_impl.linear_act_backward(g, x, w, y, act, residual=True)
    ref = kernel_impl.linear_act_backward(g, x, w, y, act)
    np.testing.assert_array_equal(got[0], ref[0] + g)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[2], ref[2])
    only_w = kernel_impl.linear_act_backward(g, x, w, y, act, need_x=False, residual=True)
    assert only_w[0] is None
    np.testing.assert_array_equal(only_w[1], ref[1])
    for a, a0 in zip((x, w, g), before):
        np.testing.assert_array_equal(a, a0)   # inputs untouched


def test_linear_act_residual_bad_input(kernel_impl):
    x, w, g = np.ones((2, 3)), np.ones((4, 3)), np.ones((2, 4))
    with pytest.raises(ValueError, match=r"residual=True adds x to the output, so the weight must be square.*\(4, 3\)"):
        kernel_impl.linear_act_forward(x, w, None, "tanh", residual=True)
    with pytest.raises(ValueError, match=r"weight must be square"):
        kernel_impl.linear_act_backward(g, x, w, g, "tanh", residual=True)
    square = np.ones((3, 3))
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match=r"residual must be True or False, got"):
            kernel_impl.linear_act_forward(x, square, None, "tanh", residual=bad)
        with pytest.raises(TypeError, match=r"residual must be True or False, got"):
            kernel_impl.linear_act_backward(np.ones((2, 3)), x, square, np.ones((2, 3)), "tanh", residual=bad)
    y, total = kernel_impl.linear_act_forward(x, square, None, "tanh", residual=np.bool_(True))
    np.testing.assert_array_equal(total, x + y)


def test_linear_act_bad_input(kernel_impl):
    f = kernel_impl.linear_act_forward
    x, w = np.ones((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match=r"linear_act: unknown activation 'gelu'"):
        f(x, w, None, "gelu")
    with pytest.raises(TypeError, match=r"linear_act: weight is float32 but x is float64"):
        f(x, w.astype(np.float32))
    with pytest.raises(TypeError, match=r"linear_act: x has dtype int64"):
        f(x.astype(np.int64), w)
    with pytest.raises(ValueError, match=r"linear_act: x must be 2-D"):
        f(np.ones(3), w)
    with pytest.raises(ValueError, match=r"need weight \(D_out, 3\)"):
        f(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"bias has shape \(3,\); expected \(4,\)"):
        f(x, w, np.ones(3))
    with pytest.raises(ValueError, match=r"must have shape \(2, 4\)"):
        kernel_impl.linear_act_backward(np.ones((2, 5)), x, w, np.ones((2, 4)), "tanh")


def test_vector_math_is_reported():
    """The extension says whether its tanh loops call libmvec (see csrc/_simd_math.h)."""
    if kernels.compiled is None:
        pytest.skip("compiled extension not built")
    from tinygrad_vg.kernels.compiled import elementwise as _kernels
    assert isinstance(_kernels.VECTOR_MATH, bool)
    if kernels.BACKEND == "compiled":
        assert "vector math" in kernels.report()
    else:
        assert kernels.report().startswith("numpy backend")


def test_vector_isa_is_reported():
    """The loops are compiled for several instruction sets; the one this CPU runs is named."""
    if kernels.compiled is None:
        pytest.skip("compiled extension not built")
    from tinygrad_vg.kernels.compiled import elementwise as _kernels
    assert isinstance(_kernels.VECTOR_ISA, str) and _kernels.VECTOR_ISA
    if kernels.BACKEND == "compiled":
        assert _kernels.VECTOR_ISA in kernels.report()


# ---------------------------------------------------------------- fast path and slow path
# The compiled wrappers take a fast path for plain contiguous aligned arrays and a slow
# one (checks in kernels/_checks.py, copies) for everything else: both must give the twin's
# results, and the slow path the twin's errors.

def unaligned(base: np.ndarray) -> np.ndarray:
    """A C-contiguous, writeable copy of base whose data pointer is not aligned for its dtype."""
    raw = np.zeros(base.nbytes + 1, np.uint8)
    view = raw[1:].view(base.dtype).reshape(base.shape)
    view[...] = base
    assert not view.flags.aligned
    return view


class Sub(np.ndarray):
    """An ndarray subclass: not the exact type the fast path tests for."""


@pytest.mark.parametrize("name", UNARY + sorted(BINARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["unaligned", "subclass", "readonly"])
def test_odd_arrays_take_the_slow_path(kernel_impl, name, dtype, kind):
    rng = np.random.default_rng(11)
    base = [rng.uniform(-2, 2, (5, 7)).astype(dtype) for _ in range(2 if name in BINARY else 1)]
    if kind == "unaligned":
        args = [unaligned(a) for a in base]
    elif kind == "subclass":
        args = [a.view(Sub) for a in base]
    else:
        args = [a.copy() for a in base]
        for a in args:
            a.flags.writeable = False
    got = getattr(kernel_impl, name)(*args)
    assert_kernel_equal(name, np.asarray(got), getattr(kernels.reference, name)(*base))
    for a, b in zip(args, base):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", UNARY + sorted(BINARY))
def test_byte_swapped_arrays_are_refused(kernel_impl, name):
    swapped = np.ones((2, 3), dtype=">f4" if np.little_endian else "<f4")
    good = np.ones((2, 3), np.float32)
    calls = [(swapped,)] if name in UNARY else [(swapped, good), (good, swapped)]
    for args in calls:
        with pytest.raises(TypeError, match=rf"{name}: .*dtype [<>]f4; accepted: float32 or float64"):
            getattr(kernel_impl, name)(*args)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_mixed_memory_orders(kernel_impl, name):
    """C with F and F with C: the compiled kernel copies the second input to the first one's order."""
    rng = np.random.default_rng(12)
    a, b = rng.uniform(-2, 2, (4, 6)), rng.uniform(-2, 2, (4, 6))
    want = getattr(kernels.reference, name)(a, b)
    for x, y in [(a, np.asfortranarray(b)), (np.asfortranarray(a), b)]:
        assert_kernel_equal(name, getattr(kernel_impl, name)(x, y), want)


@pytest.mark.parametrize("n", [1, 15, 16, 17, 255, 256, 257, 1000, 70_000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lengths_around_vector_widths_and_blocks(compiled_kernels, n, dtype):
    """Vector loops have a main part and a remainder; sigmoid works in blocks of 256; the GIL
    is released from 16384 elements on. Every length must give the twin's results."""
    rng = np.random.default_rng(n)
    x = rng.uniform(-8, 8, n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    for name in UNARY:
        assert_kernel_equal(name, getattr(compiled_kernels, name)(x), getattr(kernels.reference, name)(x))
    for name in BINARY:
        assert_kernel_equal(name, getattr(compiled_kernels, name)(g, x), getattr(kernels.reference, name)(g, x))


def test_matmul_odd_operands(kernel_impl):
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    want = a @ b
    np.testing.assert_allclose(kernel_impl.matmul(unaligned(a), unaligned(b)), want, rtol=1e-12)
    np.testing.assert_allclose(kernel_impl.matmul(a.view(Sub), b), want, rtol=1e-12)
    for order in "CF":
        out = unaligned(np.zeros((4, 5))) if order == "C" else np.zeros((4, 5), order="F")
        got = kernel_impl.matmul(a, b, out=out)
        assert got is out
        np.testing.assert_allclose(out, want, rtol=1e-12)
    out = np.zeros((4, 5))
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"matmul: out must be a writeable C- or F-contiguous"):
        kernel_impl.matmul(a, b, out=out)
    with pytest.raises(TypeError, match=r"matmul: b must be a numpy array.*got list"):
        kernel_impl.matmul(a, [[1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_into_an_out_that_is_an_operand(kernel_impl, dtype):
    """out=a, out=b, or a view of one: gemm must not write what it reads; the result is the
    product of the operands as they were, as numpy's matmul gives."""
    rng = np.random.default_rng(16)
    a, b = rng.standard_normal((6, 6)).astype(dtype), rng.standard_normal((6, 6)).astype(dtype)
    for target, args, want in [("a", lambda x: (x, b), a @ b), ("b", lambda x: (a, x), a @ b),
                               ("a.T", lambda x: (x, x, False, True), a @ a.T)]:
        x = (b if target == "b" else a).copy()
        got = kernel_impl.matmul(*args(x), out=x)
        assert got is x
        np.testing.assert_allclose(x, want, rtol=1e-5 if dtype == np.float32 else 1e-12, err_msg=target)


def test_matmul_truthy_transpose_flags(kernel_impl):
    rng = np.random.default_rng(14)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    np.testing.assert_allclose(kernel_impl.matmul(a, b, np.bool_(True), 1), a.T @ b.T, rtol=1e-12)


def test_linear_act_odd_operands(kernel_impl):
    """Unaligned, F-ordered and strided operands give what plain ones give."""
    rng = np.random.default_rng(15)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    b, g = rng.standard_normal(10)[::2], rng.standard_normal((4, 5))
    want = kernels.reference.linear_act_forward(x, w, b.copy(), "tanh")
    for args in [(unaligned(x), unaligned(w), unaligned(b.copy())), (np.asfortranarray(x), w[::-1][::-1], b)]:
        np.testing.assert_allclose(kernel_impl.linear_act_forward(*args, "tanh"), want, rtol=1e-12)
    grads = kernels.reference.linear_act_backward(g, x, w, want, "tanh")
    got = kernel_impl.linear_act_backward(np.asfortranarray(g), unaligned(x), w, unaligned(want), "tanh")
    for got, ref in zip(got, grads):
        np.testing.assert_allclose(got, ref, rtol=1e-12)
    with pytest.raises(TypeError, match=r"linear_act: y is float32 but x is float64"):
        kernel_impl.linear_act_backward(g, x, w, want.astype(np.float32), "tanh")


def test_linear_act_identity_backward_leaves_grad_out_alone(kernel_impl):
    rng = np.random.default_rng(16)
    x, w, g = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal((4, 5))
    g0 = g.copy()
    grad_x, grad_w, grad_b = kernel_impl.linear_act_backward(g, x, w, x @ w.T, None)
    np.testing.assert_array_equal(g, g0)
    np.testing.assert_allclose(grad_x, g @ w, rtol=1e-12)
    np.testing.assert_allclose(grad_w, g.T @ x, rtol=1e-12)
    np.testing.assert_allclose(grad_b, g.sum(axis=0), rtol=1e-12)
    assert not np.shares_memory(grad_b, g)


# ---------------------------------------------------------------- optimizer steps
# sgd_step and adam_step update lists of arrays in place. Bit for bit equal to the twins
# (the same IEEE operations in the same order), for every layout: non-contiguous arrays
# are worked on through contiguous copies that are written back.

OPT_SHAPES = [(3, 4), (5,), (), (1, 1), (0, 3)]
OPT_LAYOUTS = ["C", "F", "strided", "reversed", "transposed"]


def opt_arrays(rng, dtype, layouts, count=1, scale=1.0):
    return [with_layout(np.asarray(scale * rng.standard_normal(shape), dtype=dtype),
                        layouts[i % len(layouts)]) for i, shape in enumerate(OPT_SHAPES * count)]


def run_sgd(impl, params, grads, steps, hyper):
    bufs = [None] * len(params) if hyper["momentum"] != 0 else None
    for k in range(steps):
        impl.sgd_step(params, [g * (k + 1) for g in grads], bufs, hyper["lr"], hyper["momentum"],
                      hyper["dampening"], hyper["weight_decay"], hyper["nesterov"])
    return params, bufs


SGD_CASES = [dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(lr=0.05, momentum=0.0, dampening=0.0, weight_decay=0.3, nesterov=False),
             dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False),
             dict(lr=0.1, momentum=0.9, dampening=0.25, weight_decay=0.01, nesterov=False),
             dict(lr=0.3, momentum=0.8, dampening=0.0, weight_decay=0.1, nesterov=True)]


@pytest.mark.parametrize("hyper", SGD_CASES, ids=lambda h: "-".join(f"{k}{v}" for k, v in h.items()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", OPT_LAYOUTS)
def test_sgd_step_matches_numpy_twin_bit_for_bit(compiled_kernels, hyper, dtype, layout):
    """C and F: every array in one order (the fast path); the others: orders mixed (slow path)."""
    rng = np.random.default_rng(20)
    layouts = [layout] if layout in "CF" else [layout, "C", "F"]
    params = opt_arrays(rng, dtype, layouts, count=2)
    grads = opt_arrays(rng, dtype, layouts[::-1], count=2)
    grads_before = [g.copy() for g in grads]
    mine = [with_layout(p.copy(), layout) for p in params]
    ref = [p.copy() for p in params]
    ids = [id(p) for p in mine]
    got, got_bufs = run_sgd(compiled_kernels, mine, grads, 3, hyper)
    want, want_bufs = run_sgd(kernels.reference, ref, grads, 3, hyper)
    assert [id(p) for p in got] == ids   # the same arrays, updated in place
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w, strict=True)
    if got_bufs is not None:
        for g, w in zip(got_bufs, want_bufs):
            np.testing.assert_array_equal(g, w, strict=True)
    for g, g0 in zip(grads, grads_before):
        np.testing.assert_array_equal(g, g0)   # gradients only read


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", OPT_LAYOUTS)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_step_matches_numpy_twin_bit_for_bit(compiled_kernels, dtype, layout, weight_decay):
    rng = np.random.default_rng(21)
    layouts = [layout] if layout in "CF" else [layout, "C", "F"]
    params = opt_arrays(rng, dtype, layouts)
    grads = opt_arrays(rng, dtype, layouts[::-1], scale=3.0)
    results = []
    for impl in (compiled_kernels, kernels.reference):
        ps = [with_layout(p.copy(), layout) for p in params]
        ms = [with_layout(np.zeros_like(p), layout if layout in "CF" else "F") for p in params]
        vs = [with_layout(np.zeros_like(p), layout) for p in params]
        for t in range(1, 5):   # parameters at different step counts
            steps = [t + i for i in range(len(ps))]
            impl.adam_step(ps, [g * t for g in grads], ms, vs, steps, 1e-2, 0.9, 0.999, 1e-8, weight_decay)
        results.append(ps + ms + vs)
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want, strict=True)


def test_optimizer_steps_special_values(kernel_impl):
    """NaN and inf propagate as in the twin; -0.0 stays what it is."""
    for dtype in (np.float32, np.float64):
        p = np.array([0.0, -0.0, 1.0, np.inf, np.nan, 1.0], dtype)
        g = np.array([0.0, 0.0, np.inf, 1.0, 1.0, np.nan], dtype)
        results = []
        for impl in (kernel_impl, kernels.reference):
            a, buf = p.copy(), [None]
            impl.sgd_step([a], [g], buf, 0.1, 0.9, 0.0, 0.0, True)
            b, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
            with np.errstate(all="ignore"):
                impl.adam_step([b], [g], [m], [v], [1], 0.1, 0.9, 0.999, 1e-8, 0.01)
            results.append([a, buf[0], b, m, v])
        for got, want in zip(*results):
            np.testing.assert_array_equal(got, want, strict=True)
            assert np.array_equal(np.signbit(got), np.signbit(want))


def test_sgd_step_first_step_stores_new_buffers(kernel_impl):
    p, q = np.ones(3), np.ones((2, 2), order="F")
    bufs = [None, None]
    kernel_impl.sgd_step([p, q], [np.full(3, 2.0), np.full((2, 2), 2.0)], bufs, 0.5, 0.9)
    np.testing.assert_array_equal(p, [0.0, 0.0, 0.0])   # first step: buf = g, p -= lr * buf
    assert all(isinstance(b, np.ndarray) for b in bufs)
    np.testing.assert_array_equal(bufs[1], np.full((2, 2), 2.0))
    assert not np.shares_memory(bufs[0], p)
    kernel_impl.sgd_step([p, q], [np.ones(3), np.ones((2, 2))], bufs, 0.5, 0.9)
    np.testing.assert_allclose(bufs[0], 0.9 * 2.0 + 1.0)


def test_optimizer_steps_on_empty_lists(kernel_impl):
    kernel_impl.sgd_step([], [], None, 0.1)
    kernel_impl.sgd_step([], [], [], 0.1, 0.9)
    kernel_impl.adam_step([], [], [], [], [], 0.1, 0.9, 0.999, 1e-8)


def test_sgd_step_bad_input(kernel_impl):
    f = kernel_impl.sgd_step
    p, g = np.ones((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError, match=r"sgd_step: 1 params but 2 grads"):
        f([p], [g, g], None, 0.1)
    with pytest.raises(TypeError, match=r"sgd_step: params must be a list \(one entry per parameter\); got nd"):
        f(p, [g], None, 0.1)
    with pytest.raises(TypeError, match=r"sgd_step: momentum=0.9 needs momentum_buffers, a list"):
        f([p], [g], None, 0.1, 0.9)
    with pytest.raises(ValueError, match=r"sgd_step: 1 params but 2 momentum_buffers"):
        f([p], [g], [None, None], 0.1, 0.9)
    with pytest.raises(TypeError, match=r"sgd_step: grads\[0\] is float32 but params\[0\] is float64"):
        f([p], [g.astype(np.float32)], None, 0.1)
    with pytest.raises(ValueError, match=r"sgd_step: grads\[0\] has shape \(3,\) but params\[0\] has shape"):
        f([p], [np.ones(3)], None, 0.1)
    with pytest.raises(TypeError, match=r"sgd_step: params\[0\] has dtype int64; accepted: float32 or"):
        f([np.ones(3, np.int64)], [np.ones(3)], None, 0.1)
    with pytest.raises(TypeError, match=r"sgd_step: params\[0\] must be a numpy array .* in place; got float64"):
        f([np.float64(1.0)], [np.float64(1.0)], None, 0.1)
    frozen = np.ones((2, 3))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"sgd_step: params\[0\] is read-only"):
        f([frozen], [g], None, 0.1)
    with pytest.raises(ValueError, match=r"sgd_step: momentum_buffers\[0\] is read-only"):
        f([p], [g], [frozen], 0.1, 0.9)
    with pytest.raises(ValueError, match=r"sgd_step: momentum_buffers\[1\] has shape \(2,\) but params\[1\] has"):
        f([p, p.copy()], [g, g], [None, np.ones(2)], 0.1, 0.9)
    # a momentum buffer that is (part of) the gradient or the parameter: the result would
    # depend on the order of the writes, so it is refused
    for buf in (g, g[:, :], p):
        with pytest.raises(ValueError, match=r"sgd_step: momentum_buffers\[0\] shares memory with (grads|params)\[0\]"):
            f([p], [g], [buf], 0.1, 0.9)
    # a gradient may be the parameter itself, but not overlap it in part
    base = np.arange(1.0, 9.0)
    with pytest.raises(ValueError, match=r"sgd_step: grads\[0\] overlaps params\[0\] in part"):
        f([base[1:8]], [base[0:7]], None, 0.1)
    np.testing.assert_array_equal(base, np.arange(1.0, 9.0))
    same = np.ones(3)
    f([same], [same], None, 0.5)
    np.testing.assert_array_equal(same, np.full(3, 0.5))
    # nothing was touched by the calls that raised
    np.testing.assert_array_equal(p, np.ones((2, 3)))
    np.testing.assert_array_equal(g, np.ones((2, 3)))


def test_adam_step_bad_input(kernel_impl):
    f = kernel_impl.adam_step
    p = np.ones(3)
    state = lambda: np.zeros(3)   # noqa: E731
    with pytest.raises(ValueError, match=r"adam_step: 1 params but 2 steps"):
        f([p], [p], [state()], [state()], [1, 1], 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match=r"adam_step: steps\[0\] must be an int from 1 to 2\*\*63 - 1"):
        f([p], [p], [state()], [state()], [0], 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match=r"adam_step: steps\[0\] must be an int from 1 to 2\*\*63 - 1"):
        f([p], [p], [state()], [state()], [1.0], 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(TypeError, match=r"adam_step: exp_avgs\[0\] is float32 but params\[0\] is float64"):
        f([p], [p], [state().astype(np.float32)], [state()], [1], 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match=r"adam_step: exp_avg_sqs\[0\] has shape \(2,\) but params\[0\] has"):
        f([p], [p], [state()], [np.zeros(2)], [1], 0.1, 0.9, 0.999, 1e-8)
    with pytest.raises(TypeError, match=r"adam_step: grads\[1\] must be a numpy array.*got str"):
        f([p, p.copy()], [p, "g"], [state(), state()], [state(), state()], [1, 1], 0.1, 0.9, 0.999, 1e-8)
    # a step count past a C long fails before any parameter is updated (it used to update
    # the first one, then overflow at the second)
    q = np.ones(3)
    with pytest.raises(ValueError, match=r"adam_step: steps\[1\] must be an int from 1 to 2\*\*63 - 1.*got 9223372036854775808"):
        f([p, q], [p, q], [state(), state()], [state(), state()], [1, 2 ** 63], 0.1, 0.9, 0.999, 1e-8)
    shared = state()
    grad = np.full(3, 0.5)
    for moments, what in (([shared], [shared]), ([grad], [state()]), ([state()], [p])):
        with pytest.raises(ValueError, match=r"adam_step: (exp_avgs|exp_avg_sqs)\[0\] shares memory with"):
            f([p], [grad], moments, what, [1], 0.1, 0.9, 0.999, 1e-8)
    base = np.arange(1.0, 9.0)
    with pytest.raises(ValueError, match=r"adam_step: grads\[0\] overlaps params\[0\] in part"):
        f([base[1:8]], [base[0:7]], [np.zeros(7)], [np.zeros(7)], [1], 0.1, 0.9, 0.999, 1e-8)
    np.testing.assert_array_equal(base, np.arange(1.0, 9.0))
    np.testing.assert_array_equal(p, np.ones(3))
    np.testing.assert_array_equal(q, np.ones(3))
    np.testing.assert_array_equal(grad, np.full(3, 0.5))


# ---------------------------------------------------------------- memory locking kernels
def _locking_story(impl):
    """Every step of lock_arrays/release_arrays as locking.py uses them, recorded: what each
    call returns (by position in `arrays`), each array's writeable flag and lock count."""
    base = np.arange(12.0)
    view = base[2:8]
    other = np.ones(3)
    ones = np.ones(2)
    frozen = np.broadcast_to(ones, (3, 2))   # read-only from numpy: left alone, but its base is locked
    arrays = [base, view, other, frozen, ones]
    held: dict = {}
    story = []

    def state(note, result=None):
        index = None if result is None else [next(i for i, a in enumerate(arrays) if a is r[0]) for r in result]
        story.append((note, index, [a.flags.writeable for a in arrays],
                      sorted((next(i for i, a in enumerate(arrays) if a is e[0]), e[1]) for e in held.values())))

    first = impl.lock_arrays([view, other, frozen, None, 3.0], ("A", 1), held)   # view: its base too
    state("lock view, other, frozen", first)
    second = impl.lock_arrays([base], ("B", 2), held)
    state("lock base again", second)
    impl.release_arrays(first, held)
    state("release the first (base still locked by B: the view stays read-only)")
    impl.release_arrays(second, held)
    state("release the second")
    third = impl.lock_arrays([view, view], ("C", 3), held)
    state("the same view twice", third)
    impl.release_arrays(third, held)
    state("released")
    return story


def test_locking_kernels_match_their_twins(compiled_kernels):
    compiled, reference = _locking_story(compiled_kernels), _locking_story(kernels.reference)
    assert compiled == reference
    assert compiled[0] == ("lock view, other, frozen", [4, 2, 0, 1], [False, False, False, False, False],
                           [(0, 1), (1, 1), (2, 1), (4, 1)])
    # the view cannot be writeable while its base is locked: it waits for the base's release
    assert compiled[2][2] == [False, False, True, False, True]
    assert compiled[3][2] == [True, True, True, False, True]
    assert compiled[-1] == ("released", None, [True, True, True, False, True], [])
