"""tinygrad_vg/ops/reduce.py, the additions: prod, std, cumsum, argmax, argmin, and torch's
dim=/keepdim= spelling accepted beside numpy's axis=/keepdims= (one helper, axis_args).

Hypothesis draws the array, the axes (None, one int, a tuple, negatives) and keepdims;
prod is checked with exact zeros in the array too (its gradient is the product of the
others, not y / x).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

from .test_reduce import array_axis_keepdims

FEW = settings(max_examples=max(10, settings.default.max_examples // 3))


@FEW
@given(case=array_axis_keepdims(max_side=4), zeros=st.integers(0, 2), seed=st.integers(0, 2**32 - 1))
def test_prod_matches_numpy_and_finite_differences_with_zeros_in_the_array(case, zeros, seed):
    x, axis, keepdims = case
    x = x.copy()
    if x.ndim:
        x.flat[np.random.default_rng(seed).integers(0, x.size, size=zeros)] = 0.0
    out = tg.Tensor(x).prod(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.data, np.prod(x, axis=axis, keepdims=keepdims), rtol=1e-12, atol=1e-300)
    assert gradcheck(lambda t: t.prod(axis=axis, keepdims=keepdims), [x])


def test_prod_gradient_with_one_and_two_zeros_is_the_product_of_the_others():
    x = tg.Tensor(np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0]]), requires_grad=True)
    x.prod(axis=1).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0]])


def test_prod_over_an_empty_axis_is_one_and_of_integers_is_exact():
    np.testing.assert_array_equal(tg.prod(tg.Tensor(np.zeros((0, 3))), axis=0).data, np.ones(3))
    empty = tg.Tensor(np.zeros((2, 0)), requires_grad=True)
    empty.prod(axis=1).sum().backward()
    assert empty.grad.shape == (2, 0)
    out = tg.Tensor(np.arange(1, 7).reshape(2, 3)).prod(axis=1)
    assert out.dtype.kind == "i"
    np.testing.assert_array_equal(out.data, [6, 120])


@pytest.mark.parametrize("ddof", [0, 1])
@FEW
@given(case=array_axis_keepdims())
def test_std_matches_numpy_and_finite_differences(ddof, case):
    x, axis, keepdims = case
    n = x.size if axis is None else int(np.prod([x.shape[a] for a in np.atleast_1d(axis)]))
    if n <= ddof:
        with pytest.raises(ValueError, match="ddof"):
            tg.std(tg.Tensor(x), axis=axis, keepdims=keepdims, ddof=ddof)
        return
    expected = np.std(x, axis=axis, keepdims=keepdims, ddof=ddof)
    out = tg.Tensor(x).std(axis=axis, keepdims=keepdims, ddof=ddof)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    if np.all(expected > 1e-3):   # std has a kink where the slice is constant
        assert gradcheck(lambda t: t.std(axis=axis, keepdims=keepdims, ddof=ddof), [x])


def test_std_of_a_constant_slice_has_zero_gradient_as_torch():
    x = tg.Tensor(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]), requires_grad=True)
    y = x.std(axis=1)
    assert y.data[0] == 0.0
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad[0], [0.0, 0.0, 0.0])
    assert np.all(np.isfinite(x.grad))


@FEW
@given(x=arrays(min_dims=0), data=st.data())
def test_cumsum_matches_numpy_and_finite_differences(x, data):
    axis = data.draw(st.none() | (st.integers(-x.ndim, x.ndim - 1) if x.ndim else st.none()))
    np.testing.assert_allclose(tg.cumsum(tg.Tensor(x), axis=axis).data, np.cumsum(x, axis=axis), rtol=1e-12)
    assert gradcheck(lambda t: t.cumsum(axis), [x])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@FEW
@given(data=st.data())
def test_argmax_argmin_match_numpy_and_do_not_require_grad(name, data):
    x = data.draw(arrays(min_dims=1))
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    keepdims = data.draw(st.booleans())
    out = getattr(tg.Tensor(x, requires_grad=True), name)(axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(out.data, getattr(np, name)(x, axis=axis, keepdims=keepdims))
    assert out.dtype == np.int64 and not out.requires_grad and out.node is None


def test_argmax_takes_the_first_of_ties_and_a_nan_as_numpy_and_torch():
    x = np.array([[1.0, 3.0, 3.0], [np.nan, 5.0, np.nan]])
    np.testing.assert_array_equal(tg.argmax(x, axis=1).data, [1, 0])
    np.testing.assert_array_equal(tg.argmin(x, axis=1).data, [0, 0])
    with pytest.raises(ValueError, match="empty"):
        tg.argmax(np.zeros((2, 0)), axis=1)


def test_max_and_min_propagate_nan_and_give_it_the_gradient():
    x = tg.Tensor(np.array([[1.0, np.nan, 3.0], [4.0, 2.0, 0.0]]), requires_grad=True)
    y = x.max(axis=1)
    np.testing.assert_array_equal(y.data, [np.nan, 4.0])
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    x.grad = None
    x.min(axis=1).backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


# every function and method that takes an axis takes torch's dim= (and keepdim=) the same way
DIM_CASES = {
    "sum": (lambda t, **k: t.sum(**k), lambda t, **k: F.sum(t, **k)),
    "mean": (lambda t, **k: t.mean(**k), lambda t, **k: F.mean(t, **k)),
    "max": (lambda t, **k: t.max(**k), lambda t, **k: F.max(t, **k)),
    "min": (lambda t, **k: t.min(**k), lambda t, **k: F.min(t, **k)),
    "var": (lambda t, **k: t.var(**k), lambda t, **k: F.var(t, **k)),
    "std": (lambda t, **k: t.std(**k), lambda t, **k: F.std(t, **k)),
    "prod": (lambda t, **k: t.prod(**k), lambda t, **k: F.prod(t, **k)),
    "logsumexp": (lambda t, **k: t.logsumexp(**k), lambda t, **k: F.logsumexp(t, **k)),
    "argmax": (lambda t, **k: t.argmax(**k), lambda t, **k: F.argmax(t, **k)),
    "argmin": (lambda t, **k: t.argmin(**k), lambda t, **k: F.argmin(t, **k)),
}


@pytest.mark.parametrize("name", list(DIM_CASES))
def test_dim_and_keepdim_are_axis_and_keepdims(name):
    x = tg.Tensor(np.random.default_rng(3).normal(size=(2, 3, 4)))
    for fn in DIM_CASES[name]:
        np.testing.assert_array_equal(fn(x, dim=1, keepdim=True).data, fn(x, axis=1, keepdims=True).data)
        np.testing.assert_array_equal(fn(x, dim=(0, 2)).data if name not in ("argmax", "argmin")
                                      else fn(x, dim=2).data,
                                      fn(x, axis=(0, 2)).data if name not in ("argmax", "argmin")
                                      else fn(x, axis=2).data)
        with pytest.raises(TypeError, match="dim is torch's name"):
            fn(x, axis=1, dim=1)
        with pytest.raises(TypeError, match="keepdim is torch's name"):
            fn(x, axis=1, keepdims=True, keepdim=False)


def test_softmax_cumsum_and_shape_ops_take_dim_too():
    x = tg.Tensor(np.random.default_rng(4).normal(size=(2, 3)))
    np.testing.assert_array_equal(F.softmax(x, dim=0).data, F.softmax(x, axis=0).data)
    np.testing.assert_array_equal(F.log_softmax(x, dim=0).data, F.log_softmax(x, 0).data)
    np.testing.assert_array_equal(x.cumsum(dim=1).data, np.cumsum(x.data, axis=1))
    np.testing.assert_array_equal(x.flip(dims=0).data, x.data[::-1])
    np.testing.assert_array_equal(x[None].squeeze(dim=0).data, x.data)


def test_cumsum_refuses_a_bad_axis():
    with pytest.raises(ValueError, match="axis 2 is not valid"):
        tg.cumsum(tg.Tensor(np.ones((2, 3))), axis=2)




def test_tg_sum_max_min_exist_but_a_star_import_keeps_pythons_builtins():
    assert tg.sum is F.sum and tg.max is F.max and tg.min is F.min
    namespace = {}
    exec("from tinygrad_vg import *", namespace)
    assert not {"sum", "max", "min"} & set(namespace)
    assert {"prod", "argmax", "maximum", "einsum"} <= set(namespace)
