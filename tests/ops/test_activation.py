"""tinygrad_vg/ops/activation.py: tanh, sigmoid, relu, leaky_relu, elu, softplus, gelu.

Forward against numpy/scipy, gradients against central differences (float64,
random upstream gradient), values away from the kinks at 0 (relu, leaky_relu,
elu) and from softplus's switch to the identity at beta * x = threshold.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

# name -> (engine function, reference, keyword arguments of testing.arrays)
SMOOTH_OR_AWAY_FROM_KINK = {
    "tanh": (tg.tanh, np.tanh, {}),
    "sigmoid": (tg.sigmoid, special.expit, {}),
    "relu": (tg.relu, lambda x: np.maximum(x, 0.0), {"away_from": (0.0,)}),
    "gelu": (F.gelu, lambda x: x * special.ndtr(x), {}),
}


@pytest.mark.parametrize("name", list(SMOOTH_OR_AWAY_FROM_KINK))
@given(data=st.data())
def test_activation_matches_reference_and_finite_differences(name, data):
    fn, reference, kwargs = SMOOTH_OR_AWAY_FROM_KINK[name]
    x = data.draw(arrays(**kwargs))
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, reference(x), rtol=1e-12, atol=1e-15)
    assert gradcheck(fn, [x])


@given(x=arrays(away_from=(0.0,)), slope=st.floats(0.0, 0.5))
def test_leaky_relu_with_drawn_slope(x, slope):
    fn = lambda t: F.leaky_relu(t, negative_slope=slope)  # noqa: E731
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, np.where(x > 0, x, slope * x), rtol=1e-12)
    assert gradcheck(fn, [x])


@given(x=arrays(away_from=(0.0,)), alpha=st.floats(0.1, 2.0))
def test_elu_with_drawn_alpha(x, alpha):
    fn = lambda t: F.elu(t, alpha=alpha)  # noqa: E731
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, np.where(x > 0, x, alpha * np.expm1(x)),
                               rtol=1e-12, atol=1e-15)
    assert gradcheck(fn, [x])


@given(data=st.data())
def test_softplus_with_drawn_beta_and_threshold(data):
    beta = data.draw(st.floats(0.5, 3.0))
    threshold = data.draw(st.floats(1.0, 20.0))
    # the switch to the identity at beta * x = threshold is a (tiny) jump: stay away from it
    x = data.draw(arrays(away_from=(threshold / beta,), margin=1e-2))
    fn = lambda t: F.softplus(t, beta=beta, threshold=threshold)  # noqa: E731
    expected = np.where(beta * x > threshold, x, np.logaddexp(0.0, beta * x) / beta)
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, expected, rtol=1e-12)
    assert gradcheck(fn, [x])


DEFAULT_ARGUMENTS_AND_METHODS = {
    "tanh_method": (lambda t: t.tanh(), np.tanh),
    "sigmoid_method": (lambda t: t.sigmoid(), special.expit),
    "relu_method": (lambda t: t.relu(), lambda x: np.maximum(x, 0.0)),
    "softplus_default": (F.softplus, lambda x: np.logaddexp(0.0, x)),
    "leaky_relu_default": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x)),
    "elu_default": (F.elu, lambda x: np.where(x > 0, x, np.expm1(x))),
}


@pytest.mark.parametrize("name", list(DEFAULT_ARGUMENTS_AND_METHODS))
def test_methods_and_default_arguments(name):
    fn, reference = DEFAULT_ARGUMENTS_AND_METHODS[name]
    x = np.array([[-2.5, -0.3, 0.2], [0.7, 1.9, -1.1]])
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, reference(x), rtol=1e-12)
    assert gradcheck(fn, [x])


def test_relu_family_gradient_at_zero_is_the_left_derivative():
    # at exactly 0 the derivative is taken from the left (x > 0 is False), as in PyTorch
    grad_out = np.array([3.0, 5.0, 7.0])
    for fn, at_zero in [(tg.relu, 0.0), (lambda t: F.leaky_relu(t, 0.1), 0.5), (F.elu, 5.0)]:
        x = tg.Tensor([-1.0, 0.0, 1.0], requires_grad=True)
        fn(x).backward(grad_out)
        assert x.grad[1] == at_zero
        assert x.grad[2] == 7.0


def test_extreme_inputs_stay_finite_without_overflow_warnings():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # an overflow in exp would be a RuntimeWarning
        for fn in (tg.sigmoid, tg.tanh, F.softplus, F.gelu, F.elu):
            t = tg.Tensor(x, requires_grad=True)
            out = fn(t)
            out.backward(np.ones_like(x))
            assert np.isfinite(out.data).all(), fn
            assert np.isfinite(t.grad).all(), fn
    np.testing.assert_allclose(tg.sigmoid(tg.Tensor(x)).data, special.expit(x), rtol=1e-12)
    np.testing.assert_allclose(F.softplus(tg.Tensor(x)).data, np.logaddexp(0.0, x), rtol=1e-12)


ALL_ACTIVATIONS = {
    "tanh": tg.tanh, "sigmoid": tg.sigmoid, "relu": tg.relu, "leaky_relu": F.leaky_relu,
    "elu": F.elu, "softplus": F.softplus, "gelu": F.gelu,
}


@pytest.mark.parametrize("name", list(ALL_ACTIVATIONS))
def test_float32_stays_float32_in_forward_and_gradient(name):
    fn = ALL_ACTIVATIONS[name]
    x64 = np.random.default_rng(2).normal(size=(3, 4))
    x = tg.Tensor(x64.astype(np.float32), requires_grad=True)
    out = fn(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, fn(tg.Tensor(x64)).data, rtol=1e-5, atol=1e-6)
    out.backward(np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32))
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("name", list(ALL_ACTIVATIONS))
def test_integer_input_is_a_type_error(name):
    with pytest.raises(TypeError, match="float"):
        ALL_ACTIVATIONS[name](tg.Tensor(np.array([1, 2, 3])))
