"""tinygrad_vg/ops/reduce.py: sum, mean, max, min, logsumexp, var over axes.

Hypothesis draws the array and the axes (None, one int, or a tuple; negative
axes too) and keepdims both ways. max/min get arrays of distinct values, spaced
far wider than the finite-difference step, because at a tie the function has a
kink; the even split of ties has its own unit test.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays


def axes_for(ndim: int) -> st.SearchStrategy:
    """None, a single axis, or a tuple of distinct axes; each possibly negative."""
    if ndim == 0:
        return st.none()
    one_axis = st.integers(-ndim, ndim - 1)
    several = st.lists(one_axis, max_size=ndim, unique_by=lambda ax: ax % ndim).map(tuple)
    return st.none() | one_axis | several


@st.composite
def array_axis_keepdims(draw, **array_kwargs):
    x = draw(arrays(**array_kwargs))
    return x, draw(axes_for(x.ndim)), draw(st.booleans())


@st.composite
def distinct_values(draw):
    """An array whose values are pairwise at least 0.25 apart (no ties)."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    size = math.prod(shape)
    order = draw(st.permutations(range(size)))
    offset = draw(st.floats(-2.0, 2.0))
    return np.asarray((np.array(order, dtype=np.float64).reshape(shape) - size / 2) * 0.25 + offset)


def naive_logsumexp(x, axis=None, keepdims=False):
    """The textbook formula: fine for the small values drawn here (stability has its own test)."""
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


# name -> (engine reduction taking (tensor, axis, keepdims), numpy reference)
SMOOTH_REDUCTIONS = {
    "sum": (lambda t, axis, keepdims: t.sum(axis=axis, keepdims=keepdims), np.sum),
    "mean": (lambda t, axis, keepdims: t.mean(axis=axis, keepdims=keepdims), np.mean),
    "logsumexp": (lambda t, axis, keepdims: t.logsumexp(axis=axis, keepdims=keepdims), naive_logsumexp),
}


@pytest.mark.parametrize("name", list(SMOOTH_REDUCTIONS))
@given(case=array_axis_keepdims())
def test_smooth_reduction_matches_reference_and_finite_differences(name, case):
    x, axis, keepdims = case
    reduce, reference = SMOOTH_REDUCTIONS[name]
    out = reduce(tg.Tensor(x), axis, keepdims)
    expected = reference(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda t: reduce(t, axis, keepdims), [x])


@pytest.mark.parametrize("ddof", [0, 1])
@given(case=array_axis_keepdims())
def test_var_with_ddof_matches_numpy_and_finite_differences(ddof, case):
    x, axis, keepdims = case
    axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    if math.prod(x.shape[ax] for ax in axes) <= ddof:   # numpy would divide by zero; the engine refuses
        with pytest.raises(ValueError, match="ddof"):
            tg.Tensor(x).var(axis=axis, keepdims=keepdims, ddof=ddof)
        return
    expected = np.var(x, axis=axis, keepdims=keepdims, ddof=ddof)
    out = tg.Tensor(x).var(axis=axis, keepdims=keepdims, ddof=ddof)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: t.var(axis=axis, keepdims=keepdims, ddof=ddof), [x])


@pytest.mark.parametrize("name", ["max", "min"])
@given(data=st.data())
def test_max_min_of_distinct_values_match_numpy_and_finite_differences(name, data):
    x = data.draw(distinct_values())
    axis, keepdims = data.draw(axes_for(x.ndim)), data.draw(st.booleans())
    reduce = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    out = reduce(tg.Tensor(x))
    assert out.shape == np.shape(expected)
    np.testing.assert_array_equal(out.data, expected)
    assert gradcheck(reduce, [x])


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "logsumexp"])
def test_functional_forms_match_the_methods_reference(name):
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -2.5]])
    reference = naive_logsumexp if name == "logsumexp" else getattr(np, name)
    fn = getattr(tg.functional, name)
    np.testing.assert_allclose(fn(tg.Tensor(x), axis=1).data, reference(x, axis=1), rtol=1e-12)
    np.testing.assert_allclose(fn(tg.Tensor(x), axis=0, keepdims=True).data,
                               reference(x, axis=0, keepdims=True), rtol=1e-12)


def test_max_splits_the_gradient_evenly_between_ties():
    x = tg.Tensor([[1.0, 3.0, 3.0, 2.0],
                   [5.0, 5.0, 5.0, 0.0]], requires_grad=True)
    x.max(axis=1).backward(np.array([4.0, 6.0]))
    np.testing.assert_allclose(x.grad, [[0.0, 2.0, 2.0, 0.0],
                                        [2.0, 2.0, 2.0, 0.0]])


def test_min_over_all_axes_splits_ties_evenly():
    x = tg.Tensor([[0.0, 1.0], [0.0, 0.0]], requires_grad=True)
    x.min().backward()
    np.testing.assert_allclose(x.grad, np.array([[1.0, 0.0], [1.0, 1.0]]) / 3)


def test_logsumexp_is_stable_for_large_and_very_negative_values():
    x = np.array([[1000.0, 1000.0, 999.0],
                  [-1000.0, -1000.0, -1001.0]])
    t = tg.Tensor(x, requires_grad=True)
    out = t.logsumexp(axis=1)
    np.testing.assert_allclose(out.data, [1000.0 + np.log(2 + np.exp(-1.0)),
                                          -1000.0 + np.log(2 + np.exp(-1.0))], rtol=1e-14)
    grad_out = np.array([2.0, -3.0])
    out.backward(grad_out)
    np.testing.assert_allclose(t.grad, grad_out[:, None] * special.softmax(x, axis=1), rtol=1e-12)


def test_mean_gradient_is_divided_by_the_number_of_reduced_elements():
    x = tg.Tensor(np.ones((2, 3, 4)), requires_grad=True)
    x.mean(axis=(0, 2)).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(x.grad, np.broadcast_to(np.array([1.0, 2.0, 3.0])[None, :, None] / 8, (2, 3, 4)))


def test_sum_of_an_integer_tensor_is_allowed_and_exact():
    x = np.arange(12).reshape(3, 4)
    out = tg.Tensor(x).sum(axis=0)
    np.testing.assert_array_equal(out.data, x.sum(axis=0))
    assert out.dtype.kind == "i"


REDUCTIONS = ["sum", "mean", "max", "min", "logsumexp", "var"]


@pytest.mark.parametrize("name", REDUCTIONS)
def test_float32_stays_float32_in_forward_and_gradient(name):
    x64 = np.random.default_rng(4).normal(size=(3, 4))
    x = tg.Tensor(x64.astype(np.float32), requires_grad=True)
    out = getattr(x, name)(axis=1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, getattr(tg.Tensor(x64), name)(axis=1).data, rtol=1e-5, atol=1e-6)
    out.backward(np.array([1.0, -2.0, 0.5], np.float32))
    assert x.grad.dtype == np.float32


def test_logsumexp_of_an_all_minus_inf_row_has_zero_gradient():
    x = tg.Tensor(np.array([[-np.inf, -np.inf], [0.0, 1.0]]), requires_grad=True)
    y = x.logsumexp(axis=1)
    assert y.data[0] == -np.inf
    y.sum().backward()
    np.testing.assert_array_equal(x.grad[0], [0.0, 0.0])
    assert np.isfinite(x.grad).all()
