"""tinygrad_vg/ops/index.py: take_along_axis/gather, sort/argsort/topk, one_hot.

take_along_axis and gather route the gradient back to the picked elements, adding where an
index repeats; sort's gradient follows the permutation; argsort, topk's indices and one_hot
carry no gradient. Ties sort stably (also descending), NaN sorts as the largest value.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

from .test_reduce import distinct_values

FEW = settings(max_examples=max(10, settings.default.max_examples // 3))


@FEW
@given(x=arrays(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_take_along_axis_matches_numpy_and_adds_repeated_picks(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    shape = list(x.shape)
    shape[axis] = data.draw(st.integers(0, 5))
    indices = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(-n, n, size=shape)
    out = tg.take_along_axis(tg.Tensor(x), indices, axis)
    np.testing.assert_array_equal(out.data, np.take_along_axis(x, indices, axis))
    assert gradcheck(lambda t: tg.take_along_axis(t, indices, axis), [x])


def test_take_along_axis_broadcasts_and_flattens_for_axis_none_as_numpy():
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([[0, 3]])   # broadcast along axis 0
    np.testing.assert_array_equal(tg.take_along_axis(x, idx, 1).data, np.take_along_axis(x, idx, 1))
    flat = np.array([11, 0, 5])
    np.testing.assert_array_equal(tg.take_along_axis(x, flat, None).data, np.take_along_axis(x, flat, None))
    assert gradcheck(lambda t: tg.take_along_axis(t, flat, None), [x])
    assert gradcheck(lambda t: tg.take_along_axis(t, idx, 1), [x])


def test_take_along_axis_and_gather_refuse_bad_indices():
    x = tg.Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match="must lie in"):
        tg.take_along_axis(x, np.array([[3]]), 1)
    with pytest.raises(TypeError, match="integers"):
        tg.take_along_axis(x, np.array([[0.0]]), 1)
    with pytest.raises(ValueError, match="as many dimensions"):
        tg.take_along_axis(x, np.array([0]), 1)
    with pytest.raises(ValueError, match="larger than the input"):
        x.gather(1, np.zeros((3, 1), int))


@FEW
@given(x=arrays(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_gather_is_torchs_gather_with_a_smaller_index(x, data):
    dim = data.draw(st.integers(0, x.ndim - 1))
    shape = [data.draw(st.integers(1, n)) if i != dim else data.draw(st.integers(1, 4))
             for i, n in enumerate(x.shape)]
    index = np.random.default_rng(0).integers(0, x.shape[dim], size=shape)
    cut = x[tuple(slice(None) if i == dim else slice(n) for i, n in enumerate(shape))]
    np.testing.assert_array_equal(tg.gather(x, dim, index).data, np.take_along_axis(cut, index, dim))
    assert gradcheck(lambda t: t.gather(dim, index), [x])


@FEW
@given(data=st.data(), descending=st.booleans())
def test_sort_matches_numpy_and_its_gradient_follows_the_permutation(data, descending):
    x = data.draw(distinct_values())
    axis = data.draw(st.none() | (st.integers(-x.ndim, x.ndim - 1) if x.ndim else st.none()))
    expected = np.sort(x, axis=axis)
    if descending:
        expected = np.flip(expected, -1 if axis is None else axis)
    np.testing.assert_array_equal(tg.sort(tg.Tensor(x), axis, descending).data, expected)
    assert gradcheck(lambda t: tg.sort(t, axis, descending), [x])
    order = tg.argsort(x, axis, descending)
    assert not order.requires_grad and order.dtype == np.int64
    np.testing.assert_array_equal(np.take_along_axis(x.reshape(-1) if axis is None else x, order.data,
                                                     -1 if axis is None else axis), expected)


def test_sort_is_stable_with_ties_and_puts_nan_last_or_first_as_torch():
    x = np.array([2.0, 1.0, 2.0, np.nan, 1.0])
    np.testing.assert_array_equal(tg.argsort(x).data, [1, 4, 0, 2, 3])
    # torch.sort(x, descending=True, stable=True): NaN first, ties in their first-come order
    np.testing.assert_array_equal(tg.argsort(x, descending=True).data, [3, 0, 2, 1, 4])
    t = tg.Tensor(x[[0, 1, 2, 4]], requires_grad=True)
    tg.sort(t, descending=True).backward(np.array([10.0, 20.0, 30.0, 40.0]))
    np.testing.assert_array_equal(t.grad, [10.0, 30.0, 20.0, 40.0])   # each tie keeps its own slot


@FEW
@given(x=arrays(min_dims=1, max_dims=3, max_side=5), data=st.data())
def test_topk_values_and_indices_as_torch(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    k = data.draw(st.integers(0, x.shape[axis]))
    largest = data.draw(st.booleans())
    values, indices = tg.topk(tg.Tensor(x), k, axis=axis, largest=largest)
    expected = np.sort(x, axis=axis)
    expected = np.take(np.flip(expected, axis) if largest else expected, np.arange(k), axis=axis)
    np.testing.assert_array_equal(values.data, expected)
    np.testing.assert_array_equal(np.take_along_axis(x, indices.data, axis), expected)
    assert not indices.requires_grad
    if x.size < 2 or np.diff(np.sort(x, axis=None)).min() > 1e-3:   # a near-tie at the k-th place is a kink
        assert gradcheck(lambda t: t.topk(k, axis, largest)[0], [x])


def test_topk_refuses_k_out_of_range_and_0_d():
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 3\]"):
        tg.topk(tg.Tensor(np.ones(3)), 4)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        tg.topk(tg.Tensor(np.float64(1.0)), 1)


def test_one_hot_as_torch():
    out = tg.one_hot(np.array([[0, 2], [1, 1]]), 4)
    assert out.shape == (2, 2, 4) and out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.data[0], [[1, 0, 0, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(tg.one_hot(tg.Tensor(np.array([3, 0]))).data, np.eye(4, dtype=int)[[3, 0]])
    with pytest.raises(ValueError, match="out of range for num_classes=3"):
        tg.one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match=">= 0"):
        tg.one_hot(np.array([-1]), 3)
    with pytest.raises(TypeError, match="integers"):
        tg.one_hot(np.array([1.0]), 3)
    with pytest.raises(ValueError, match="cannot infer"):
        tg.one_hot(np.array([], dtype=int))
    assert tg.one_hot(np.array([], dtype=int), 3).shape == (0, 3)
