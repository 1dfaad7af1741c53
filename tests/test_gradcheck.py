"""tinygrad_vg/gradcheck.py: gradcheck, jacobians, GradcheckError.

gradcheck must pass correct ops, fail wrong ones with a message that says where
(input, element, both values), in both the per-element and the fast
random-projection mode, and leave the caller's tensors exactly as they were.
"""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import GradcheckError, gradcheck, jacobians
from tinygrad_vg.testing import arrays, broadcastable_shapes

rng = np.random.default_rng(1234)


def randn(*shape, name=None):
    return tg.Tensor(rng.standard_normal(shape), requires_grad=True, name=name)


class SquareForgetsTheTwo(tg.Function):
    """y = x^2 with a wrong backward: grad_x = grad_out * x (the factor 2 is missing)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad_out):
        return (grad_out * self.x,)


class ReversesTheGradient(tg.Function):
    """y = x (1-D) with a wrong backward that reverses grad_out: invisible to an all-ones upstream."""

    def forward(self, x):
        return x.copy()

    def backward(self, grad_out):
        return (grad_out[::-1],)


class DropsSecondGradient(tg.Function):
    """y = a * b with a backward that returns None for b although y depends on b."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad_out):
        return grad_out * self.b, None


def wrong_square(x):
    return SquareForgetsTheTwo.apply(x)


# ----- correct ops pass -----------------------------------------------------------------
@settings(deadline=None)
@given(x=arrays())
def test_tanh_passes(x):
    assert gradcheck(tg.tanh, [x])


@settings(deadline=None)
@given(data=st.data())
def test_matmul_passes(data):
    n, k, m = data.draw(st.tuples(*[st.integers(1, 4)] * 3))
    a, b = data.draw(arrays(shape=(n, k))), data.draw(arrays(shape=(k, m)))
    assert gradcheck(lambda x, y: x @ y, [a, b])
    assert gradcheck(lambda x, y: x @ y, [a, b], fast=True)


@settings(deadline=None)
@given(data=st.data())
def test_broadcasting_add_passes(data):
    (shape_a, shape_b), _ = data.draw(broadcastable_shapes(n=2))
    a, b = data.draw(arrays(shape=shape_a)), data.draw(arrays(shape=shape_b))
    assert gradcheck(lambda x, y: x + y, [a, b])


@settings(deadline=None)
@given(x=arrays(shape=(3, 4)), w=arrays(shape=(4, 2)), b=arrays(shape=(2,)))
def test_composite_passes_in_both_modes(x, w, b):
    def net(x, w, b):
        h = (x @ w + b).tanh()
        return F.log_softmax(h * h.sigmoid(), axis=-1).mean()
    assert gradcheck(net, [x, w, b])
    assert gradcheck(net, [x, w, b], fast=True)


def test_fast_mode_passes_an_unrolled_recurrence():
    w = tg.Tensor(0.3 * rng.standard_normal((16, 16)), requires_grad=True)
    u = tg.Tensor(0.3 * rng.standard_normal((8, 16)), requires_grad=True)
    x = randn(20, 4, 8)   # T, N, D

    def rnn(w, u, x):
        h = tg.Tensor(np.zeros((4, 16)))
        for t in range(x.shape[0]):
            h = (x[t] @ u + h @ w).tanh()
        return h
    assert gradcheck(rnn, [w, u, x], fast=True)


# ----- wrong ops fail, and say where ----------------------------------------------------
def test_wrong_backward_fails_naming_input_element_and_values():
    x = tg.Tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]], requires_grad=True, name="x")
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda t: wrong_square(t).sum(), [x])
    message = str(info.value)
    # the scalar output needs no projection: the values are the derivatives themselves;
    # the worst element is the largest |x|, where backward gives x and the truth is 2x
    assert "input 0 ('x')" in message
    assert "element (1, 2)" in message
    assert re.search(r"backward gives -3\b", message)
    assert re.search(r"central differences give -6\.0*\d*\b", message)
    assert "Max abs error" in message and "3" in message


def test_wrong_backward_fails_for_nonscalar_output_and_second_input():
    a, b = randn(3, name="a"), randn(3)
    with pytest.raises(GradcheckError, match=r"input 1 of shape \(3,\), element \(\d,\)"):
        gradcheck(lambda a, b: a + wrong_square(b), [a, b])


def test_gradcheck_error_is_an_assertion_error_and_can_be_turned_into_false():
    x = randn(4)
    assert issubclass(GradcheckError, AssertionError)
    assert gradcheck(wrong_square, [x], raise_exception=False) is False
    assert gradcheck(lambda t: t * t, [x], raise_exception=False) is True


def test_fast_mode_detects_the_same_bug_and_names_the_input():
    x = randn(5, 6, name="weights")
    with pytest.raises(GradcheckError, match=r"fast.*input 0 \('weights'\)"):
        gradcheck(wrong_square, [x], fast=True)
    for seed in range(5):
        assert not gradcheck(wrong_square, [x], fast=True, seed=seed, raise_exception=False)


def test_random_upstream_gradient_catches_a_bug_that_all_ones_hides():
    x = randn(4)
    wrong = lambda t: ReversesTheGradient.apply(t)  # noqa: E731
    y = wrong(x)
    y.backward(np.ones(4))
    np.testing.assert_array_equal(x.grad, np.ones(4))   # all-ones upstream: looks right
    assert not gradcheck(wrong, [x], raise_exception=False)
    assert not gradcheck(wrong, [x], fast=True, raise_exception=False)


def test_none_gradient_counts_as_zero_and_fails_when_the_input_matters():
    a, b = randn(3), randn(3, name="b")
    with pytest.raises(GradcheckError, match=r"input 1 \('b'\).*backward gives 0\b"):
        gradcheck(lambda a, b: DropsSecondGradient.apply(a, b), [a, b])


def test_unused_input_has_zero_gradient_and_passes():
    a, unused = randn(3), randn(2, 2)
    assert gradcheck(lambda a, unused: a.tanh(), [a, unused])
    assert gradcheck(lambda a, unused: a.tanh(), [a, unused], fast=True)
    (_, _), (numeric, analytic) = jacobians(lambda a, unused: a.tanh(), [a, unused])
    np.testing.assert_array_equal(analytic, np.zeros((3, 4)))
    np.testing.assert_array_equal(numeric, np.zeros((3, 4)))


def test_output_independent_of_every_checked_input_passes():
    assert gradcheck(lambda a: tg.Tensor(np.ones(3)), [randn(3)])


# ----- jacobians --------------------------------------------------------------------------
def test_jacobians_of_a_linear_map_have_kronecker_structure():
    n, d, m = 2, 3, 4
    x, w = randn(n, d), randn(d, m)
    (num_x, ana_x), (num_w, ana_w) = jacobians(lambda x, w: x @ w, [x, w])
    assert num_x.shape == ana_x.shape == (n * m, n * d)
    assert num_w.shape == ana_w.shape == (n * m, d * m)
    # d out[i, j] / d x[i', k] = [i == i'] w[k, j];  d out[i, j] / d w[k, j'] = x[i, k] [j == j']
    np.testing.assert_allclose(ana_x, np.kron(np.eye(n), w.data.T), rtol=0, atol=0)
    np.testing.assert_allclose(ana_w, np.kron(x.data, np.eye(m)), rtol=0, atol=0)
    np.testing.assert_allclose(num_x, ana_x, atol=1e-8)
    np.testing.assert_allclose(num_w, ana_w, atol=1e-8)


def test_jacobians_of_vector_times_matrix_is_the_transposed_matrix():
    v, w = randn(3), randn(3, 5)
    (num_v, ana_v), = jacobians(lambda v: v @ w, [v])
    np.testing.assert_allclose(ana_v, w.data.T, atol=0)
    np.testing.assert_allclose(num_v, w.data.T, atol=1e-8)


def test_jacobians_of_a_scalar_output_are_one_row():
    x = randn(2, 3)
    (numeric, analytic), = jacobians(lambda t: (t * t).sum(), [x])
    assert numeric.shape == analytic.shape == (1, 6)
    np.testing.assert_allclose(analytic, 2 * x.data.reshape(1, 6), atol=0)
    np.testing.assert_allclose(numeric, analytic, atol=1e-8)


def test_jacobians_is_reachable_as_an_attribute_of_the_function():
    # the package exports the function as tg.gradcheck, which shadows the module
    assert gradcheck.jacobians is jacobians
    assert gradcheck.GradcheckError is GradcheckError


# ----- inputs: what is checked, dtypes, constants -----------------------------------------
@pytest.mark.parametrize("make", [
    lambda: tg.Tensor(np.ones(3, np.float32), requires_grad=True),
    lambda: np.ones(3, np.float32),
], ids=["float32_tensor", "float32_array"])
def test_non_float64_input_is_a_type_error_that_says_why(make):
    with pytest.raises(TypeError, match="float64.*(digits|rounding)"):
        gradcheck(lambda t: t * 2.0, [make()])


def test_non_float64_output_is_a_type_error():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda t: t.astype(np.float32), [randn(3)])


def test_fn_must_return_a_tensor():
    with pytest.raises(TypeError, match="must return one Tensor"):
        gradcheck(lambda t: (t, t), [randn(3)])


def test_nothing_to_check_is_an_error_not_a_silent_pass():
    with pytest.raises(ValueError, match="no input to check"):
        gradcheck(lambda t: t * 2.0, [tg.Tensor(np.ones(3))])


def test_constants_pass_through_unchecked():
    logits = randn(4, 3)
    target = np.array([0, 2, 1, 1])                  # integer array: a constant
    weights = tg.Tensor(rng.standard_normal(3))      # no requires_grad: a constant
    fn = lambda z, y, w, scale: F.cross_entropy(z * w * scale, y)  # noqa: E731
    assert gradcheck(fn, [logits, target, weights, 0.5])
    assert len(jacobians(fn, [logits, target, weights, 0.5])) == 1


def test_a_single_bare_input_is_accepted():
    x = rng.standard_normal((3, 2))   # a 2-D array is one input, not a sequence of rows
    assert gradcheck(lambda t: t.tanh(), x)
    (numeric, _), = jacobians(lambda t: t.tanh(), x)
    assert numeric.shape == (6, 6)


# ----- the caller's tensors are left alone --------------------------------------------------
def test_grad_of_inputs_and_closure_tensors_is_restored():
    x, w = randn(3, 4), randn(4, 2)
    previous = np.full((3, 4), 7.0)
    x.grad = previous
    assert gradcheck(lambda t: t @ w, [x])            # w is captured, not checked
    assert x.grad is previous and np.all(previous == 7.0)
    assert w.grad is None
    w.grad = np.zeros((4, 2))
    saved_w_grad = w.grad
    assert gradcheck(lambda t: (t @ w).tanh(), [x], fast=True)
    assert w.grad is saved_w_grad and not saved_w_grad.any()
    jacobians(lambda t: t @ w, [x])
    assert x.grad is previous and w.grad is saved_w_grad


def test_input_data_is_not_mutated_even_when_the_check_fails():
    x, a = randn(3, 4), rng.standard_normal((2, 2))
    x_before, a_before = x.data.copy(), a.copy()
    gradcheck(lambda t, s: t.sum() * s.sum(), [x, a])
    gradcheck(lambda t, s: wrong_square(t).sum() + s.sum(), [x, a], raise_exception=False)
    gradcheck(lambda t, s: wrong_square(t).sum() + s.sum(), [x, a], fast=True, raise_exception=False)
    jacobians(lambda t, s: t.sum() * s.sum(), [x, a])
    np.testing.assert_array_equal(x.data, x_before)
    np.testing.assert_array_equal(a, a_before)
    assert x.requires_grad and x.is_leaf


def test_works_inside_no_grad_and_leaves_grad_mode_off():
    x = randn(3)
    with tg.no_grad():
        assert gradcheck(lambda t: t.tanh() * t, [x])
        assert not gradcheck(wrong_square, [x], raise_exception=False)   # backward really ran
        (numeric, analytic), = jacobians(lambda t: t * 3.0, [x])
        np.testing.assert_allclose(analytic, 3 * np.eye(3))
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_same_seed_same_verdict_and_message():
    x = randn(4, 4)
    messages = []
    for _ in range(2):
        with pytest.raises(GradcheckError) as info:
            gradcheck(wrong_square, [x], fast=True, seed=3)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_package_exports_gradcheck_function_and_testing_module():
    # needs in tinygrad_vg/__init__.py:
    #     from .gradcheck import gradcheck, jacobians, GradcheckError
    #     from . import testing
    assert tg.gradcheck is gradcheck
    assert tg.jacobians is jacobians and tg.GradcheckError is GradcheckError
    assert tg.gradcheck.jacobians is jacobians
    assert tg.testing.arrays is arrays
