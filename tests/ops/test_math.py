"""tinygrad_vg/ops/math.py and the activations added with it: sin, cos, tan, erf, log1p,
expm1, log2, log10, sign, maximum, minimum; silu, mish, selu, hardtanh, dropout.

Forward against numpy/scipy, gradients against central differences (float64, random
upstream gradient from gradcheck), values away from poles (tan at pi/2, logs at their
domain's edge) and kinks (selu at 0, hardtanh at its bounds, maximum/minimum where a = b).
The conventions at the kinks and at NaN have their own tests, against torch's numbers.
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import special

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays, broadcastable_shapes

# a third of the profile's examples (dev 16, ci 10, thorough 166): many ops share the suite's time
FEW = settings(max_examples=max(10, settings.default.max_examples // 3))
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

# name -> (engine function, numpy reference, keyword arguments of testing.arrays)
UNARY = {
    "sin": (tg.sin, np.sin, {}),
    "cos": (tg.cos, np.cos, {}),
    "tan": (tg.tan, np.tan, {"min_value": -1.4, "max_value": 1.4}),   # poles at +-pi/2
    "erf": (tg.erf, special.erf, {}),
    "log1p": (tg.log1p, np.log1p, {"min_value": -0.9}),
    "expm1": (tg.expm1, np.expm1, {}),
    "log2": (tg.log2, np.log2, {"positive": True, "margin": 0.05}),
    "log10": (tg.log10, np.log10, {"positive": True, "margin": 0.05}),
    "silu": (F.silu, lambda x: x * special.expit(x), {}),
    "mish": (F.mish, lambda x: x * np.tanh(np.logaddexp(0, x)), {}),
    "selu": (F.selu, lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x)), {"away_from": (0.0,)}),
    "hardtanh": (F.hardtanh, lambda x: np.clip(x, -1, 1), {"away_from": (-1.0, 1.0)}),
}


@pytest.mark.parametrize("name", list(UNARY))
@FEW
@given(data=st.data())
def test_unary_op_matches_reference_and_finite_differences(name, data):
    fn, reference, kwargs = UNARY[name]
    x = data.draw(arrays(**kwargs))
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, reference(x), rtol=1e-12, atol=1e-15)
    assert gradcheck(fn, [x])


METHODS = ["sin", "cos", "tan", "erf", "log1p", "expm1", "log2", "log10"]


@pytest.mark.parametrize("name", METHODS)
def test_methods_and_functions_agree_and_float32_stays_float32(name):
    x = np.array([[0.3, 0.7, 1.2], [0.05, 0.9, 0.5]])
    t = tg.Tensor(x.astype(np.float32), requires_grad=True)
    out = getattr(t, name)()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, getattr(tg, name)(tg.Tensor(x)).data, rtol=1e-5)
    out.backward(np.ones((2, 3), np.float32))
    assert t.grad.dtype == np.float32


@FEW
@given(x=arrays(), lo=st.floats(-2, 0), width=st.floats(0.1, 3))
def test_hardtanh_with_drawn_bounds(x, lo, width):
    hi = lo + width
    x = x[(np.abs(x - lo) > 1e-2) & (np.abs(x - hi) > 1e-2)] if x.ndim else x
    fn = lambda t: F.hardtanh(t, lo, hi)  # noqa: E731
    np.testing.assert_array_equal(fn(tg.Tensor(x)).data, np.clip(x, lo, hi))
    if x.size and np.all(np.abs(x - lo) > 1e-2) and np.all(np.abs(x - hi) > 1e-2):
        assert gradcheck(fn, [x])


def test_activation_kinks_follow_torch():
    # torch 2.13: hardtanh's gradient is 0 at both bounds; selu at 0 takes the left branch (scale * alpha);
    # abs and relu give 0 at 0
    x = tg.Tensor(np.array([-1.0, 0.0, 1.0]), requires_grad=True)
    F.hardtanh(x).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    z = tg.Tensor(np.zeros(1), requires_grad=True)
    F.selu(z).backward(np.ones(1))
    np.testing.assert_allclose(z.grad, [SELU_SCALE * SELU_ALPHA], rtol=1e-15)
    for fn in (tg.abs, tg.relu):
        z = tg.Tensor(np.zeros(1), requires_grad=True)
        fn(z).backward(np.ones(1))
        assert z.grad[0] == 0.0


def test_hardtanh_refuses_min_above_max():
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(tg.Tensor([0.0]), 1.0, -1.0)


def test_sign_is_minus_one_zero_one_and_does_not_require_grad():
    x = tg.Tensor(np.array([-2.0, -0.0, 0.0, 3.0, np.nan]), requires_grad=True)
    s = tg.sign(x)
    np.testing.assert_array_equal(s.data, [-1.0, 0.0, 0.0, 1.0, np.nan])
    assert not s.requires_grad and s.node is None
    assert x.sign().dtype == np.float64
    # used in a larger expression, sign contributes nothing to the gradient
    (x[:4] * tg.sign(x[:4])).sum().backward()
    np.testing.assert_array_equal(x.grad[:4], [-1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(tg.sign(np.array([-3, 0, 2])).data, [-1, 0, 1])


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@FEW
@given(data=st.data())
def test_maximum_minimum_broadcast_and_match_finite_differences(name, data):
    (shape_a, shape_b), _ = data.draw(broadcastable_shapes())
    a = data.draw(arrays(shape=shape_a))
    b = data.draw(arrays(shape=shape_b))
    assume(np.all(np.abs(np.subtract(a, b)) > 1e-2))   # a tie is a kink (the even split has its own test)
    fn = getattr(tg, name)
    np.testing.assert_array_equal(fn(tg.Tensor(a), tg.Tensor(b)).data, getattr(np, name)(a, b))
    np.testing.assert_array_equal(getattr(tg.Tensor(a), name)(b).data, getattr(np, name)(a, b))
    assert gradcheck(fn, [a, b])


def test_maximum_minimum_split_ties_evenly_and_nan_sends_the_gradient_to_both_as_torch():
    # torch 2.13: torch.maximum(a, b).backward(g) gives a.grad = [g0, g1/2, 0, g3], b.grad = [0, g1/2, g2, g3]
    a = tg.Tensor(np.array([3.0, 1.0, 0.0, np.nan]), requires_grad=True)
    b = tg.Tensor(np.array([1.0, 1.0, 2.0, 0.0]), requires_grad=True)
    g = np.array([2.0, 4.0, 6.0, 8.0])
    out = tg.maximum(a, b)
    np.testing.assert_array_equal(out.data, [3.0, 1.0, 2.0, np.nan])
    out.backward(g)
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 0.0, 8.0])
    np.testing.assert_array_equal(b.grad, [0.0, 2.0, 6.0, 8.0])
    a.grad = b.grad = None
    out = tg.minimum(a, b)
    np.testing.assert_array_equal(out.data, [1.0, 1.0, 0.0, np.nan])
    out.backward(g)
    np.testing.assert_array_equal(a.grad, [0.0, 2.0, 6.0, 8.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0, 0.0, 8.0])


def test_maximum_with_a_scalar_keeps_float32_and_refuses_unbroadcastable_shapes():
    x = tg.Tensor(np.array([-1.0, 2.0], np.float32), requires_grad=True)
    y = tg.maximum(x, 0.0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [0.0, 2.0])
    with pytest.raises(ValueError, match="cannot be broadcast"):
        tg.maximum(tg.Tensor(np.ones(3)), tg.Tensor(np.ones(4)))


def test_erf_of_float32_stays_float32_and_large_arguments_saturate():
    x = tg.Tensor(np.array([-10.0, 0.0, 10.0], np.float32))
    y = tg.erf(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [-1.0, 0.0, 1.0])
    assert math.isclose(float(tg.erf(tg.Tensor(0.5)).data), math.erf(0.5), rel_tol=1e-15)


@FEW
@given(x=arrays(), p=st.floats(0.0, 0.9), seed=st.integers(0, 2**32 - 1))
def test_dropout_is_the_mask_times_one_over_keep_and_its_gradient_is_the_same_mask(x, p, seed):
    out = F.dropout(tg.Tensor(x), p, rng=seed)
    mask = np.random.default_rng(seed).random(x.shape) >= p
    np.testing.assert_allclose(out.data, np.where(mask, x / (1 - p), 0.0), rtol=1e-15)
    assert gradcheck(lambda t: F.dropout(t, p, rng=seed), [x])


def test_dropout_edge_cases_and_errors():
    x = tg.Tensor(np.ones((3, 4)), requires_grad=True)
    assert F.dropout(x, 0.0) is x and F.dropout(x, 0.7, training=False) is x
    zero = F.dropout(x, 1.0, rng=0)
    np.testing.assert_array_equal(zero.data, np.zeros((3, 4)))   # torch: p = 1 zeroes everything
    zero.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((3, 4)))
    for p in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ValueError, match="probability"):
            F.dropout(x, p)
    with pytest.raises(TypeError, match="Generator"):
        F.dropout(x, 0.5, rng=np.random.RandomState(0))
    kept = np.mean(F.dropout(tg.Tensor(np.ones(100_000)), 0.3, rng=1).data > 0)
    assert abs(kept - 0.7) < 0.01
