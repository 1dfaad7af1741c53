"""The conv family's compiled kernels (csrc/conv.pyx) against their numpy twins
(tinygrad_vg/kernels/reference/conv.py), and both against the definition.

What "equal" means here:
- max_pool2d and avg_pool2d (forward, backward, indices): bit for bit. Both sides add the
  same values in the same order (csrc/conv_loops.h follows the twin's loops).
- conv1d/conv2d: the two sides call different BLAS builds (scipy's and numpy's) through
  gemms of different shapes, so both are held to the gemm error bound
  |got - exact| <= (k + 2) eps (|a| @ |b|) + tiny, where |a| @ |b| is the same kernel run in
  float64 on |x|, |weight|, |grad_out|, and k the longest sum (C/G KH KW for y,
  OC/G KH KW for grad_x, N OH OW for grad_weight). grad_bias is numpy's sum on both sides: equal.
"""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_vg import kernels

REFERENCE = kernels.reference
LAYOUTS = ["C", "F", "strided"]

# (N, C, H, W, OC, KH, KW, stride, padding, dilation, groups): odd shapes, every option
CONV2D_CASES = [
    (2, 3, 5, 7, 4, 3, 3, 1, 1, 1, 1),
    (3, 4, 8, 6, 6, 3, 2, (2, 1), (1, 2), (2, 1), 2),
    (1, 6, 9, 8, 6, 3, 3, 2, 1, 1, 3),
    (2, 5, 4, 4, 7, 1, 1, 1, 0, 1, 1),          # 1x1: no columns (the direct path)
    (2, 4, 7, 7, 4, 1, 1, 2, 0, 1, 2),          # 1x1 with stride: columns
    (1, 2, 3, 3, 3, 3, 3, 1, 2, 2, 1),          # padding wider than the input's border
    (4, 1, 1, 5, 2, 1, 5, 3, (0, 2), 1, 1),
]
BIG_CASES = [   # C-ordered only: they are slow
    (4, 8, 48, 48, 4, 3, 3, 1, 1, 1, 2),        # images per gemm: 3 then 1 (compiled CHUNK_ELEMENTS = 2^19)
    (2, 8, 96, 96, 3, 3, 3, 1, 1, 1, 1),        # one image per gemm
]
CONV1D_CASES = [   # (N, C, L, OC, K, stride, padding, dilation, groups)
    (2, 3, 9, 4, 3, 1, 1, 1, 1),
    (3, 4, 11, 6, 2, 2, 0, 3, 2),
    (1, 2, 5, 2, 1, 1, 0, 1, 2),
]
POOL_CASES = [   # (N, C, H, W, kernel_size, stride, padding)
    (2, 3, 8, 8, 2, 2, 0),
    (1, 2, 7, 9, 3, 2, 1),
    (2, 1, 6, 5, (3, 2), (1, 2), (1, 0)),
    (1, 3, 5, 5, 3, 1, 1),                       # overlapping windows: backward adds
]


def with_layout(base: np.ndarray, layout: str) -> np.ndarray:
    if layout == "C":
        return base.copy()
    if layout == "F":
        return np.asfortranarray(base)
    big = np.full(tuple(2 * s for s in base.shape), np.nan, dtype=base.dtype)
    view = big[tuple(slice(None, None, 2) for _ in base.shape)]
    view[...] = base
    return view


def assert_within_gemm_bound(got, want, magnitude, k, dtype, what):
    info = np.finfo(dtype)
    bound = (k + 2) * (info.eps * magnitude + info.tiny)
    error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert got.shape == want.shape and got.dtype == want.dtype, what
    assert np.all(error <= bound), f"{what}: worst error {error.max()} over the bound"


def conv_inputs(case, dtype, rng):
    n, c, h, w, oc, kh, kw, stride, padding, dilation, groups = case
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    weight = rng.normal(size=(oc, c // groups, kh, kw)).astype(dtype)
    bias = rng.normal(size=oc).astype(dtype)
    return x, weight, bias, (stride, padding, dilation, groups)


@pytest.mark.parametrize("case, layout", [(case, layout) for case in CONV2D_CASES for layout in LAYOUTS]
                         + [(case, "C") for case in BIG_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_matches_numpy_twin(compiled_kernels, case, dtype, layout):
    rng = np.random.default_rng(abs(hash((case, layout))) % 2**32)
    x, weight, bias, params = conv_inputs(case, dtype, rng)
    y_ref = REFERENCE.conv2d_forward(x, weight, bias, *params)
    y = compiled_kernels.conv2d_forward(with_layout(x, layout), with_layout(weight, layout), bias, *params)
    assert y.flags.c_contiguous
    abs64 = [np.abs(a).astype(np.float64) for a in (x, weight, bias)]
    magnitude = REFERENCE.conv2d_forward(*abs64, *params)
    k = weight[0].size
    assert_within_gemm_bound(y, y_ref, magnitude, k, dtype, "y")
    grad_out = rng.normal(size=y.shape).astype(dtype)
    got = compiled_kernels.conv2d_backward(with_layout(grad_out, layout), with_layout(x, layout), weight, *params)
    want = REFERENCE.conv2d_backward(grad_out, x, weight, *params)
    mags = REFERENCE.conv2d_backward(np.abs(grad_out).astype(np.float64), abs64[0], abs64[1], *params)
    n_l = grad_out.shape[0] * grad_out.shape[2] * grad_out.shape[3]
    k_x = weight.shape[0] // params[3] * weight.shape[2] * weight.shape[3]
    assert_within_gemm_bound(got[0], want[0], mags[0], k_x, dtype, "grad_x")
    assert_within_gemm_bound(got[1], want[1], mags[1], n_l, dtype, "grad_weight")
    np.testing.assert_array_equal(got[2], want[2])


def test_conv2d_reference_is_the_definition():
    """The twin against the sum written out, in float64, for one case with every option."""
    rng = np.random.default_rng(3)
    x, weight, bias, (stride, padding, dilation, groups) = conv_inputs(CONV2D_CASES[1], np.float64, rng)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    y = REFERENCE.conv2d_forward(x, weight, bias, stride, padding, dilation, groups)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oc_g, c_g = weight.shape[0] // groups, weight.shape[1]
    want = np.empty_like(y)
    for o in range(y.shape[1]):
        g = o // oc_g
        for a in range(y.shape[2]):
            for b in range(y.shape[3]):
                patch = xp[:, g * c_g:(g + 1) * c_g, a * sh:a * sh + dh * (weight.shape[2] - 1) + 1:dh,
                           b * sw:b * sw + dw * (weight.shape[3] - 1) + 1:dw]
                want[:, o, a, b] = (patch * weight[o]).sum(axis=(1, 2, 3)) + bias[o]
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV1D_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv1d_matches_numpy_twin_and_conv2d(compiled_kernels, case, dtype):
    n, c, length, oc, k, stride, padding, dilation, groups = case
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, c, length)).astype(dtype)
    weight = rng.normal(size=(oc, c // groups, k)).astype(dtype)
    params = (stride, padding, dilation, groups)
    y_ref = REFERENCE.conv1d_forward(x, weight, None, *params)
    y2 = REFERENCE.conv2d_forward(x[:, :, None], weight[:, :, None], None, (1, stride), (0, padding),
                                  (1, dilation), groups)[:, :, 0]
    np.testing.assert_array_equal(y_ref, y2)
    y = compiled_kernels.conv1d_forward(np.asfortranarray(x), weight, None, *params)
    magnitude = REFERENCE.conv1d_forward(np.abs(x).astype(np.float64), np.abs(weight).astype(np.float64), None,
                                         *params)
    assert_within_gemm_bound(y, y_ref, magnitude, weight[0].size, dtype, "y")
    grad_out = rng.normal(size=y.shape).astype(dtype)
    got = compiled_kernels.conv1d_backward(grad_out, x, weight, *params, need_b=False)
    want = REFERENCE.conv1d_backward(grad_out, x, weight, *params, need_b=False)
    assert got[2] is None and want[2] is None
    mags = REFERENCE.conv1d_backward(np.abs(grad_out).astype(np.float64), np.abs(x).astype(np.float64),
                                     np.abs(weight).astype(np.float64), *params)
    assert_within_gemm_bound(got[0], want[0], mags[0], oc * k, dtype, "grad_x")
    assert_within_gemm_bound(got[1], want[1], mags[1], n * y.shape[2], dtype, "grad_weight")


def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(kernel_impl):
    x, weight = np.ones((0, 4, 5, 5)), np.ones((6, 2, 3, 3))
    y = kernel_impl.conv2d_forward(x, weight, np.ones(6), 1, 1, 1, 2)
    assert y.shape == (0, 6, 5, 5)
    grad_x, grad_w, grad_b = kernel_impl.conv2d_backward(y, x, weight, 1, 1, 1, 2)
    assert grad_x.shape == x.shape and np.array_equal(grad_w, np.zeros_like(weight))
    assert np.array_equal(grad_b, np.zeros(6))


@pytest.mark.parametrize("need", [(True, False, False), (False, True, False), (False, False, True)])
def test_conv2d_backward_computes_only_what_is_asked(kernel_impl, need):
    rng = np.random.default_rng(6)
    x, weight, _, params = conv_inputs(CONV2D_CASES[0], np.float64, rng)
    grad_out = rng.normal(size=(2, 4, 5, 7))
    got = kernel_impl.conv2d_backward(grad_out, x, weight, *params, need_x=need[0], need_w=need[1], need_b=need[2])
    full = REFERENCE.conv2d_backward(grad_out, x, weight, *params)
    for asked, g, f in zip(need, got, full):
        if asked:
            np.testing.assert_allclose(g, f, rtol=1e-12, atol=1e-12)
        else:
            assert g is None


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_pools_match_numpy_twin_bit_for_bit(compiled_kernels, case, dtype, layout):
    n, c, h, w, size, stride, padding = case
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    x.flat[::5] = x.flat[1::5][:x.flat[::5].size]   # ties: the first maximum wins on both sides
    xl = with_layout(x, layout)
    y_ref, idx_ref = REFERENCE.max_pool2d_forward(x, size, stride, padding)
    y, idx = compiled_kernels.max_pool2d_forward(xl, size, stride, padding)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    assert idx.dtype == np.int64
    grad_out = rng.normal(size=y.shape).astype(dtype)
    np.testing.assert_array_equal(
        compiled_kernels.max_pool2d_backward(with_layout(grad_out, layout), idx, x.shape, size, stride, padding),
        REFERENCE.max_pool2d_backward(grad_out, idx_ref, x.shape, size, stride, padding))
    np.testing.assert_array_equal(compiled_kernels.avg_pool2d_forward(xl, size, stride, padding),
                                  REFERENCE.avg_pool2d_forward(x, size, stride, padding))
    np.testing.assert_array_equal(
        compiled_kernels.avg_pool2d_backward(with_layout(grad_out, layout), x.shape, size, stride, padding),
        REFERENCE.avg_pool2d_backward(grad_out, x.shape, size, stride, padding))


def test_max_pool_special_values(kernel_impl):
    """NaN is the maximum (the first NaN's index), -inf inputs beat the padding, ties go to the first."""
    x = np.array([[[[1.0, np.nan, 3.0, np.nan], [-np.inf, -np.inf, 2.0, 2.0]]]])
    y, idx = kernel_impl.max_pool2d_forward(x, 2, 2, 0)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert np.isnan(y[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 3
    y, idx = kernel_impl.max_pool2d_forward(np.full((1, 1, 2, 2), -np.inf), 3, 1, 1)
    assert np.all(y == -np.inf) and idx.ravel().tolist() == [0, 0, 0, 0]
    y, idx = kernel_impl.max_pool2d_forward(np.array([[[[2.0, 2.0], [2.0, 2.0]]]]), 2, 2, 0)
    assert idx.ravel().tolist() == [0]


# ---------------------------------------------------------------- errors: the same in both twins

def _error(fn, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


X = np.ones((2, 4, 5, 5))
W = np.ones((6, 2, 3, 3))
BAD_CONV = {
    "x not an array": ([[1.0]], W, None, 1, 0, 1, 2),
    "int x": (X.astype(np.int64), W, None, 1, 0, 1, 2),
    "x 3-D": (X[0], W, None, 1, 0, 1, 2),
    "mixed dtypes": (X.astype(np.float32), W, None, 1, 0, 1, 2),
    "groups not dividing": (X, np.ones((6, 4, 3, 3)), None, 1, 0, 1, 3),
    "channels wrong": (X, np.ones((6, 3, 3, 3)), None, 1, 0, 1, 2),
    "stride 0": (X, W, None, 0, 0, 1, 2),
    "negative padding": (X, W, None, 1, -1, 1, 2),
    "stride of 3 ints": (X, W, None, (1, 1, 1), 0, 1, 2),
    "float dilation": (X, W, None, 1, 0, 1.5, 2),
    "bias shape": (X, W, np.ones(5), 1, 0, 1, 2),
    "kernel larger than input": (X, np.ones((6, 2, 7, 7)), None, 1, 0, 1, 2),
    "dilated kernel larger than input": (X, W, None, 1, 0, 3, 2),
}


@pytest.mark.parametrize("case", list(BAD_CONV))
def test_conv_bad_input_raises_the_same_error_in_both_twins(compiled_kernels, case):
    args = BAD_CONV[case]
    want = _error(REFERENCE.conv2d_forward, *args)
    assert want[1].startswith("conv2d: ")
    assert _error(compiled_kernels.conv2d_forward, *args) == want


def test_conv_backward_and_1d_bad_input(kernel_impl):
    err = _error(kernel_impl.conv2d_backward, np.ones((2, 6, 4, 4)), X, W, 1, 0, 1, 2)
    assert err == (ValueError, "conv2d: grad_out has shape (2, 6, 4, 4); expected (2, 6, 3, 3) (N, OC, *output)")
    err = _error(kernel_impl.conv1d_forward, X, W[:, :, 0], None)
    assert err[0] is ValueError and "conv1d: x must be 3-D (N, C, L)" in err[1]
    err = _error(kernel_impl.conv2d_backward, np.ones((2, 6, 3, 3), np.float32), X, W, 1, 0, 1, 2)
    assert err == (TypeError, "conv2d: grad_out is float32 but x is float64; all must have one dtype")


BAD_POOL = {
    "padding over half the window": (X, 2, 2, 2),
    "window larger than input": (X, 7, 1, 0),
    "kernel_size 0": (X, 0, 1, 0),
    "x 3-D": (X[0], 2, 2, 0),
    "kernel_size a string": (X, "2", 2, 0),
}


@pytest.mark.parametrize("case", list(BAD_POOL))
@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
def test_pool_bad_input_raises_the_same_error_in_both_twins(compiled_kernels, case, pool):
    args = BAD_POOL[case]
    want = _error(getattr(REFERENCE, f"{pool}_forward"), *args)
    assert want[1].startswith(f"{pool}: ")
    assert _error(getattr(compiled_kernels, f"{pool}_forward"), *args) == want


def test_pool_backward_bad_input(kernel_impl):
    g = np.ones((2, 4, 2, 2))
    idx = np.zeros((2, 4, 2, 2), np.int64)
    assert _error(kernel_impl.max_pool2d_backward, g, idx.astype(np.int32), X.shape, 2, 2)[0] is TypeError
    assert "indices must lie in 0 .. H W - 1 = 24" in _error(kernel_impl.max_pool2d_backward, g, idx + 25,
                                                           X.shape, 2, 2)[1]
    assert "grad_out has shape (2, 4, 2, 2); expected (2, 4, 5, 5)" in _error(
        kernel_impl.avg_pool2d_backward, g, X.shape, 1, 1)[1]
    assert _error(kernel_impl.avg_pool2d_backward, g, (2, 4, 5), 2, 2)[0] is TypeError
