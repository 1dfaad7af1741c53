"""tinygrad_vg/testing.py: hypothesis strategies and assert_gradcheck.

The strategies must really keep their promises (bounds, distance from kinks and
poles, positivity, dtype, shapes that broadcast), since op tests rely on them to
keep finite differences away from places where they are wrong.
"""
import importlib.util
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import GradcheckError
from tinygrad_vg.testing import arrays, assert_gradcheck, broadcastable_shapes, grad_like, tensors


# ----- arrays -------------------------------------------------------------------------------
@given(x=arrays())
def test_arrays_default_is_float64_finite_bounded_with_small_shapes(x):
    assert x.dtype == np.float64
    assert np.all(np.isfinite(x)) and np.all((-3 <= x) & (x <= 3))
    assert 0 <= x.ndim <= 3 and all(1 <= n <= 5 for n in x.shape)


@given(x=arrays(away_from=(0.0,)))
def test_arrays_stay_away_from_a_kink_by_the_default_margin(x):
    assert np.all(np.abs(x) >= 1e-2)


@given(x=arrays(away_from=(-1.0, 0.0, 2.0), margin=0.3, min_value=-2, max_value=2.5))
def test_arrays_stay_away_from_several_points_by_a_large_margin(x):
    for point in (-1.0, 0.0, 2.0):
        assert np.all(np.abs(x - point) >= 0.3)
    assert np.all((-2 <= x) & (x <= 2.5))


@given(x=arrays(away_from=(-2.0, -1.0, 0.0, 1.0, 2.0), margin=0.45, max_side=6))
def test_arrays_keep_away_from_many_points_without_rejecting_most_draws(x):
    # the allowed set is 10% of [-3, 3]; values are drawn from its pieces, not filtered
    assert np.all(np.abs(x[..., None] - np.array([-2.0, -1.0, 0.0, 1.0, 2.0])) >= 0.45)


@given(x=arrays(away_from=0.0, margin=0.5))
def test_arrays_accept_a_single_point(x):
    assert np.all(np.abs(x) >= 0.5)


@given(x=arrays(positive=True))
def test_positive_arrays_are_at_least_margin_and_at_most_max_value(x):
    assert np.all(x >= 1e-2) and np.all(x <= 3)


@given(x=arrays(positive=True, margin=0.2, max_value=1.0))
def test_positive_arrays_with_custom_margin(x):
    assert np.all((0.2 <= x) & (x <= 1.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(deadline=None)
@given(data=st.data())
def test_arrays_have_the_requested_dtype_and_keep_the_promises_after_rounding(dtype, data):
    x = data.draw(arrays(dtype=dtype, min_value=-1.1, max_value=0.7, away_from=(0.1,), margin=0.05))
    assert x.dtype == dtype
    assert np.all((x >= -1.1) & (x <= 0.7))
    assert np.all(np.abs(x.astype(np.float64) - 0.1) >= 0.05)


@given(x=arrays(shape=(2, 3)), y=arrays(shape=()), z=arrays(min_dims=2, max_dims=2, min_side=3, max_side=3))
def test_arrays_shape_given_or_drawn_within_bounds(x, y, z):
    assert x.shape == (2, 3) and y.shape == () and z.shape == (3, 3)


@pytest.mark.parametrize("options", [
    {"positive": True, "margin": 1.0, "max_value": 0.5},
    {"min_value": 1.0, "max_value": -1.0},
    {"min_value": -1.0, "max_value": 1.0, "away_from": (0.0,), "margin": 1.5},
], ids=["positive_above_max", "min_above_max", "margin_covers_range"])
def test_arrays_with_nothing_to_draw_is_an_error(options):
    with pytest.raises(ValueError, match="nothing is left"):
        arrays(**options)


# ----- tensors --------------------------------------------------------------------------------
@given(t=tensors(shape=(2, 2), away_from=(0.0,)))
def test_tensors_wrap_arrays_and_require_grad(t):
    assert isinstance(t, tg.Tensor) and t.requires_grad and t.is_leaf
    assert t.shape == (2, 2) and t.dtype == np.float64
    assert np.all(np.abs(t.data) >= 1e-2)


@given(t=tensors(requires_grad=False, dtype=np.float32, positive=True))
def test_tensors_options_pass_through(t):
    assert not t.requires_grad and t.dtype == np.float32 and np.all(t.data > 0)


# ----- broadcastable_shapes --------------------------------------------------------------------
@given(shapes=broadcastable_shapes())
def test_two_shapes_broadcast_to_the_result_shape(shapes):
    (shape_a, shape_b), result = shapes
    assert shapes.input_shapes == (shape_a, shape_b) and shapes.result_shape == result
    assert np.broadcast_shapes(shape_a, shape_b) == tuple(result)
    assert all(len(s) <= 3 and all(1 <= n <= 4 for n in s) for s in (shape_a, shape_b))


@given(shapes=broadcastable_shapes(n=3, min_dims=1, max_dims=2, max_side=3))
def test_three_shapes_broadcast_together(shapes):
    assert len(shapes.input_shapes) == 3
    assert np.broadcast_shapes(*shapes.input_shapes) == tuple(shapes.result_shape)
    assert all(1 <= len(s) <= 2 for s in shapes.input_shapes)


# ----- grad_like --------------------------------------------------------------------------------
@given(grad=grad_like((3, 4)))
def test_grad_like_a_shape_is_random_float64_not_ones_or_zeros(grad):
    assert grad.shape == (3, 4) and grad.dtype == np.float64
    assert not np.all(grad == 1.0) and not np.all(grad == 0.0)


@given(grad=grad_like(tg.Tensor(np.zeros((2, 5), np.float32))))
def test_grad_like_a_tensor_takes_its_shape_and_dtype(grad):
    assert grad.shape == (2, 5) and grad.dtype == np.float32
    assert len(np.unique(grad)) > 1


@given(grad=grad_like(()))
def test_grad_like_a_scalar_shape(grad):
    assert grad.shape == ()


@settings(deadline=None)
@given(x=tensors(shape=(3,)), grad=grad_like((3,)))
def test_grad_like_drives_a_backward(x, grad):
    x.tanh().backward(grad)
    np.testing.assert_allclose(x.grad, grad * (1 - np.tanh(x.data) ** 2))


# ----- assert_gradcheck ---------------------------------------------------------------------------
class CubeForgetsTheThree(tg.Function):
    """y = x^3 with a wrong backward: grad_x = grad_out * x^2."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad_out):
        return (grad_out * self.x ** 2,)


@settings(deadline=None)
@given(x=arrays(away_from=(0.0,), margin=0.1), y=arrays(positive=True, margin=0.1))
def test_assert_gradcheck_passes_correct_ops_with_inputs_as_arguments(x, y):
    assert_gradcheck(lambda a: a.relu(), x)
    assert_gradcheck(lambda a: a.abs(), x, fast=True)
    assert_gradcheck(lambda b: b.log(), y)


@settings(deadline=None)
@given(x=arrays(away_from=(0.0,), margin=0.1))
def test_assert_gradcheck_raises_an_assertion_error_on_a_wrong_op(x):
    with pytest.raises(AssertionError) as info:
        assert_gradcheck(CubeForgetsTheThree.apply, x)
    assert isinstance(info.value, GradcheckError)
    assert "input 0" in str(info.value)


# ----- hypothesis is a test extra ----------------------------------------------------------------
def test_module_imports_without_hypothesis_and_says_how_to_get_it(monkeypatch):
    for name in ("hypothesis", "hypothesis.strategies", "hypothesis.extra", "hypothesis.extra.numpy"):
        monkeypatch.setitem(sys.modules, name, None)   # `import hypothesis` now raises ImportError
    spec = importlib.util.find_spec("tinygrad_vg.testing")
    fresh = importlib.util.module_from_spec(spec)      # a new copy; the imported one is untouched
    spec.loader.exec_module(fresh)
    with pytest.raises(ImportError, match="pip install hypothesis"):
        fresh.arrays()
    fresh.assert_gradcheck(lambda t: t * t, np.ones(2))   # needs no hypothesis
