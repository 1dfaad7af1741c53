"""tinygrad_vg/ops/shape.py, the additions: squeeze, expand_dims/unsqueeze, broadcast_to/expand,
flatten, flip, roll, tile, repeat/repeat_interleave, pad, tril/triu.

They only move (or copy) elements, so forward equals numpy exactly and backward must send
each gradient element back to where it came from, adding where an element was copied to
several places (broadcast_to, tile, repeat, pad's edge/reflect/wrap modes).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

FEW = settings(max_examples=max(10, settings.default.max_examples // 3))


def check(fn, x, expected):
    """fn(x) equals numpy's `expected` exactly, and its gradient passes gradcheck."""
    out = fn(tg.Tensor(x))
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    assert gradcheck(fn, [x])


@FEW
@given(x=arrays(max_dims=3, min_side=1, max_side=3), data=st.data())
def test_squeeze_and_expand_dims_match_numpy(x, data):
    x = x.reshape(data.draw(st.permutations(x.shape + (1, 1))))   # size-1 axes somewhere
    ones = tuple(i for i, n in enumerate(x.shape) if n == 1)
    axis = data.draw(st.none() | st.sampled_from(ones) | st.just(ones))
    check(lambda t: t.squeeze(axis), x, np.squeeze(x, axis))
    new = data.draw(st.integers(-x.ndim - 1, x.ndim))
    check(lambda t: tg.expand_dims(t, new), x, np.expand_dims(x, new))
    check(lambda t: t.unsqueeze(new), x, np.expand_dims(x, new))
    check(lambda t: tg.unsqueeze(t, (0, -1)), x, np.expand_dims(x, (0, -1)))


def test_squeeze_refuses_an_axis_whose_size_is_not_one():
    with pytest.raises(ValueError, match="has size 3, not 1"):
        tg.Tensor(np.ones((1, 3))).squeeze(1)
    with pytest.raises(TypeError, match="position of the new axis"):
        tg.expand_dims(tg.Tensor(np.ones(3)))


@FEW
@given(data=st.data())
def test_broadcast_to_and_expand_sum_the_gradient_over_the_broadcast_axes(data):
    x = data.draw(arrays(max_dims=3, max_side=3))
    target = tuple(data.draw(st.integers(1, 3)) if n == 1 else n for n in x.shape)
    target = (data.draw(st.integers(1, 3)),) * data.draw(st.integers(0, 1)) + target
    check(lambda t: tg.broadcast_to(t, target), x, np.broadcast_to(x, target))
    check(lambda t: t.expand(*target), x, np.broadcast_to(x, target))
    keep = (-1,) * x.ndim   # torch's -1: keep that size
    check(lambda t: t.expand((2,) + keep), x, np.broadcast_to(x, (2,) + x.shape))


def test_broadcast_to_refuses_what_numpy_refuses_and_its_result_is_writeable():
    with pytest.raises(ValueError, match="cannot be broadcast"):
        tg.broadcast_to(tg.Tensor(np.ones((2, 3))), (4, 3, 3))
    with pytest.raises(ValueError, match="fewer dimensions"):
        tg.broadcast_to(tg.Tensor(np.ones((2, 3))), (3,))
    out = tg.broadcast_to(tg.Tensor(np.ones(3)), (2, 3))
    assert out.data.flags.writeable and out.data.strides[0] != 0


@FEW
@given(x=arrays(min_dims=1, max_dims=4, max_side=3), data=st.data())
def test_flatten_matches_numpy_reshape(x, data):
    start = data.draw(st.integers(0, x.ndim - 1))
    end = data.draw(st.integers(start, x.ndim - 1))
    expected = x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:])
    check(lambda t: t.flatten(start, end), x, expected)
    check(lambda t: tg.flatten(t, start - x.ndim, end), x, expected)


def test_flatten_edge_cases():
    assert tg.flatten(tg.Tensor(np.float64(3.0))).shape == (1,)
    assert tg.Tensor(np.zeros((2, 0, 3))).flatten(1).shape == (2, 0)
    assert tg.Tensor(np.zeros((2, 3, 4))).flatten().shape == (24,)
    with pytest.raises(ValueError, match="comes after"):
        tg.flatten(tg.Tensor(np.zeros((2, 3))), 1, 0)


@FEW
@given(x=arrays(min_dims=0), data=st.data())
def test_flip_and_roll_match_numpy(x, data):
    axes = st.none() if x.ndim == 0 else st.none() | st.integers(-x.ndim, x.ndim - 1) | st.lists(
        st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True).map(tuple)
    axis = data.draw(axes)
    check(lambda t: t.flip(axis), x, np.flip(x, axis))
    shift = data.draw(st.integers(-7, 7))
    if isinstance(axis, tuple):
        shift = tuple(data.draw(st.integers(-4, 4)) for _ in axis)
    check(lambda t: tg.roll(t, shift, axis), x, np.roll(x, shift, axis))


@FEW
@given(x=arrays(max_dims=3, max_side=3), reps=st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple))
def test_tile_matches_numpy_and_adds_the_tiles_gradients(x, reps):
    check(lambda t: tg.tile(t, reps), x, np.tile(x, reps))
    if reps:
        check(lambda t: t.tile(*reps), x, np.tile(x, reps))


@FEW
@given(x=arrays(min_dims=1, max_dims=3, max_side=3), data=st.data())
def test_repeat_matches_numpy(x, data):
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    n = x.size if axis is None else x.shape[axis]
    repeats = data.draw(st.integers(0, 3) | st.lists(st.integers(0, 3), min_size=n, max_size=n).map(np.array))
    check(lambda t: tg.repeat(t, repeats, axis), x, np.repeat(x, repeats, axis))
    check(lambda t: t.repeat_interleave(repeats, dim=axis), x, np.repeat(x, repeats, axis))


def test_repeat_and_tile_refuse_bad_counts():
    x = tg.Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        tg.repeat(x, -1)
    with pytest.raises(ValueError, match="one per element"):
        tg.repeat(x, np.array([1, 2]), axis=1)
    with pytest.raises(ValueError, match="non-negative ints"):
        tg.tile(x, (2.5,))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@FEW
@given(x=arrays(min_dims=1, max_dims=3, min_side=2, max_side=3), data=st.data())
def test_pad_matches_numpy_in_every_mode(mode, x, data):
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in x.shape)
    kwargs = {"constant_values": 1.5} if mode == "constant" else {}
    check(lambda t: tg.pad(t, widths, mode=mode, **kwargs), x, np.pad(x, widths, mode=mode, **kwargs))
    check(lambda t: tg.pad(t, 1, mode=mode), x, np.pad(x, 1, mode=mode))


def test_pad_accepts_torchs_mode_names_and_refuses_bad_widths():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(tg.pad(x, 1, mode="replicate").data, np.pad(x, 1, mode="edge"))
    np.testing.assert_array_equal(tg.pad(x, 1, mode="circular").data, np.pad(x, 1, mode="wrap"))
    with pytest.raises(ValueError, match="accepted: constant"):
        tg.pad(x, 1, mode="mean")
    with pytest.raises(ValueError, match="non-negative"):
        tg.pad(x, -1)
    with pytest.raises(ValueError, match="does not fit"):
        tg.pad(x, ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match="one number"):
        tg.pad(x, 1, constant_values=(1, 2))


@pytest.mark.parametrize("name", ["tril", "triu"])
@FEW
@given(x=arrays(min_dims=2, max_dims=4, max_side=4), k=st.integers(-3, 3))
def test_tril_triu_match_numpy(name, x, k):
    check(lambda t: getattr(tg, name)(t, k), x, getattr(np, name)(x, k))
    check(lambda t: getattr(t, name)(diagonal=k), x, getattr(np, name)(x, k))


def test_tril_needs_two_dimensions():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        tg.tril(tg.Tensor(np.ones(3)))


def test_functional_names_and_aliases_are_the_same_functions():
    assert F.unsqueeze is F.expand_dims and F.expand is F.broadcast_to and F.repeat_interleave is F.repeat
    assert tg.unsqueeze is F.expand_dims and tg.tile is F.tile
