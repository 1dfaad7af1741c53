"""tinygrad_vg/ops/shape.py: reshape, transpose, indexing, concatenate, stack, where.

These ops only move elements, so forward must equal numpy exactly and backward
must route each gradient element back to where it came from (adding up where an
integer index repeats an element). Gradients are checked by central differences.
"""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays, broadcastable_shapes

# ----- reshape and transpose -------------------------------------------------------------


@st.composite
def reshape_targets(draw, shape):
    """Another shape with as many elements: the sides shuffled, ones inserted, maybe one -1."""
    sides = list(draw(st.permutations(shape)))
    for _ in range(draw(st.integers(0, 2))):
        sides.insert(draw(st.integers(0, len(sides))), 1)
    if sides and draw(st.booleans()):
        sides[draw(st.integers(0, len(sides) - 1))] = -1
    return tuple(sides)


@given(data=st.data())
def test_reshape_matches_numpy_and_finite_differences(data):
    x = data.draw(arrays())
    target = data.draw(reshape_targets(x.shape))
    np.testing.assert_array_equal(tg.Tensor(x).reshape(target).data, x.reshape(target))
    np.testing.assert_array_equal(tg.Tensor(x).reshape(*target).data, x.reshape(target))
    assert gradcheck(lambda t: t.reshape(target), [x])


@given(data=st.data())
def test_transpose_by_drawn_permutation_matches_numpy_and_finite_differences(data):
    x = data.draw(arrays())
    axes = data.draw(st.permutations(range(x.ndim)))
    axes = tuple(ax - x.ndim if data.draw(st.booleans()) else ax for ax in axes)  # some negative
    np.testing.assert_array_equal(tg.Tensor(x).transpose(axes).data, x.transpose(axes))
    np.testing.assert_array_equal(tg.Tensor(x).permute(*axes).data, x.transpose(axes))
    assert gradcheck(lambda t: t.transpose(axes), [x])


def test_T_and_transpose_without_axes_reverse_the_axes():
    x = np.random.default_rng(14).normal(size=(2, 3, 4))
    np.testing.assert_array_equal(tg.Tensor(x).T.data, x.T)
    np.testing.assert_array_equal(tg.Tensor(x).transpose().data, x.T)
    assert gradcheck(lambda t: t.T, [x])


def test_swapaxes_and_flatten():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(tg.Tensor(x).swapaxes(0, 2).data, x.swapaxes(0, 2))
    np.testing.assert_array_equal(tg.Tensor(x).flatten().data, x.ravel())
    assert gradcheck(lambda t: t.swapaxes(-1, 0), [x])


# ----- indexing ----------------------------------------------------------------------------


@given(data=st.data())
def test_basic_indexing_with_slices_negative_steps_none_and_ellipsis(data):
    x = data.draw(arrays(min_dims=1))
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    np.testing.assert_array_equal(tg.Tensor(x)[index].data, x[index])
    assume(x[index].size > 0)
    assert gradcheck(lambda t: t[index], [x])


BASIC_INDICES = {
    "reverse": np.s_[::-1],
    "reverse_step_2_then_slice": np.s_[::-2, 1:],
    "negative_int": np.s_[-1],
    "none_ellipsis_int": np.s_[None, ..., 1],
    "ellipsis_negative_step": np.s_[..., 3:0:-1],
    "int_then_none": np.s_[1, None, :],
}


@pytest.mark.parametrize("name", list(BASIC_INDICES))
def test_basic_index_examples(name):
    index = BASIC_INDICES[name]
    x = np.random.default_rng(5).normal(size=(3, 4))
    np.testing.assert_array_equal(tg.Tensor(x)[index].data, x[index])
    assert gradcheck(lambda t: t[index], [x])


@given(data=st.data())
def test_integer_array_indexing_matches_numpy_and_finite_differences(data):
    x = data.draw(arrays(min_dims=1))
    index = data.draw(hnp.integer_array_indices(x.shape))
    np.testing.assert_array_equal(tg.Tensor(x)[index].data, x[index])
    assert gradcheck(lambda t: t[index], [x])


def test_repeated_integer_indices_add_up_their_gradients():
    x = tg.Tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)
    y = x[np.array([0, 2, 0, -1, 0])]
    np.testing.assert_array_equal(y.data, [10.0, 30.0, 10.0, 40.0, 10.0])
    y.backward(np.array([1.0, 2.0, 4.0, 8.0, 16.0]))
    np.testing.assert_array_equal(x.grad, [21.0, 0.0, 2.0, 8.0])


@pytest.mark.parametrize("index", [
    ([0, 0, 2],),
    (slice(None), [1, 1]),
    ([2, 0], slice(1, None)),
    ([[0, 1], [1, 1]], [3, 3]),
], ids=["list_rows", "columns_repeated", "rows_then_slice", "2d_index_arrays"])
def test_mixed_integer_and_slice_indexing(index):
    x = np.random.default_rng(6).normal(size=(3, 4))
    np.testing.assert_array_equal(tg.Tensor(x)[index].data, x[index])
    assert gradcheck(lambda t: t[index], [x])


def test_index_given_as_an_integer_tensor():
    x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[tg.Tensor([2, 2, 0])]
    np.testing.assert_array_equal(y.data, [3.0, 3.0, 1.0])
    y.backward(np.array([1.0, 1.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [5.0, 0.0, 2.0])


@given(data=st.data())
def test_bool_mask_indexing_matches_numpy_and_finite_differences(data):
    x = data.draw(arrays(min_dims=1))
    mask = data.draw(hnp.arrays(np.bool_, x.shape))
    np.testing.assert_array_equal(tg.Tensor(x)[mask].data, x[mask])
    assume(mask.any())
    assert gradcheck(lambda t: t[mask], [x])


def test_bool_mask_on_the_first_axis_and_bool_tensor_mask():
    x = tg.Tensor(np.arange(6.0).reshape(3, 2) - 2.5, requires_grad=True)
    rows = x[np.array([True, False, True])]
    np.testing.assert_array_equal(rows.data, x.data[[0, 2]])
    positive = x[x > 0]   # a bool Tensor as index
    np.testing.assert_array_equal(positive.data, [0.5, 1.5, 2.5])
    (rows.sum() + 10 * positive.sum()).backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 1.0], [0.0, 10.0], [11.0, 11.0]])


# ----- concatenate and stack ---------------------------------------------------------------


@given(data=st.data())
def test_concatenate_along_a_drawn_axis(data):
    base = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.integers(-len(base), len(base) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    pieces = []
    for size in sizes:
        shape = list(base)
        shape[axis] = size
        pieces.append(data.draw(arrays(shape=tuple(shape))))
    out = tg.concatenate([tg.Tensor(p) for p in pieces], axis=axis)
    np.testing.assert_array_equal(out.data, np.concatenate(pieces, axis=axis))
    assert gradcheck(lambda *ts: tg.concatenate(list(ts), axis=axis), pieces)


def test_concatenate_mixes_tensors_numpy_arrays_and_dtypes():
    a = tg.Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    b = np.zeros((1, 2))
    out = tg.concatenate([a, b], axis=0)
    assert out.shape == (3, 2) and out.dtype == np.float64
    out.backward(np.arange(6.0).reshape(3, 2))
    assert a.grad.dtype == np.float32
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0], [2.0, 3.0]])


@given(data=st.data())
def test_stack_along_a_drawn_axis(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    count = data.draw(st.integers(1, 3))
    pieces = [data.draw(arrays(shape=shape)) for _ in range(count)]
    out = tg.stack([tg.Tensor(p) for p in pieces], axis=axis)
    np.testing.assert_array_equal(out.data, np.stack(pieces, axis=axis))
    assert gradcheck(lambda *ts: tg.stack(list(ts), axis=axis), pieces)


# ----- where -------------------------------------------------------------------------------


@given(data=st.data())
def test_where_broadcasts_condition_and_both_branches(data):
    (cond_shape, a_shape, b_shape), result_shape = data.draw(broadcastable_shapes(n=3))
    cond = data.draw(hnp.arrays(np.bool_, cond_shape))
    a = data.draw(arrays(shape=a_shape))
    b = data.draw(arrays(shape=b_shape))
    out = tg.where(cond, tg.Tensor(a), tg.Tensor(b))
    assert out.shape == tuple(result_shape)
    np.testing.assert_array_equal(out.data, np.where(cond, a, b))
    assert gradcheck(lambda ta, tb: tg.where(cond, ta, tb), [a, b])


def test_where_with_a_bool_tensor_condition_and_a_scalar_branch():
    x = tg.Tensor([-1.0, 2.0, -3.0, 4.0], requires_grad=True)
    y = tg.where(x > 0, x, 0.0)
    np.testing.assert_array_equal(y.data, [0.0, 2.0, 0.0, 4.0])
    y.backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 0.0, 4.0])


# ----- float32 -------------------------------------------------------------------------------
SHAPE_OPS = {
    "reshape": lambda t: t.reshape(6, 2),
    "transpose": lambda t: t.transpose(1, 0, 2),
    "getitem_basic": lambda t: t[::-1, None, 1],
    "getitem_array": lambda t: t[[0, 0, 1]],
    "concatenate": lambda t: tg.concatenate([t, t], axis=1),
    "stack": lambda t: tg.stack([t, t], axis=-1),
    "where": lambda t: tg.where(t.data > 0, t, 1.0),
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_float32_stays_float32_in_forward_and_gradient(name):
    x = tg.Tensor(np.random.default_rng(7).normal(size=(2, 3, 2)).astype(np.float32), requires_grad=True)
    out = SHAPE_OPS[name](x)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape
