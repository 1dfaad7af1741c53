"""tinygrad_vg/ops/elementwise.py: + - * / ** neg, exp, log, sqrt, abs, clip, cast.

Forward is compared with numpy; gradients with central differences (gradcheck,
float64, random upstream gradient). Hypothesis draws shapes (broadcast pairs for
binary ops) and values, kept away from kinks (abs at 0, clip at its bounds) and
poles (log/sqrt at 0, division by ~0, pow with a non-positive base).
"""
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays, broadcastable_shapes

# name -> (operator, keyword arguments of testing.arrays for the RIGHT operand)
BINARY = {
    "add": (operator.add, {}),
    "sub": (operator.sub, {}),
    "mul": (operator.mul, {}),
    "div": (operator.truediv, {"away_from": (0.0,), "margin": 0.5}),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_op_broadcasts_like_numpy_and_matches_finite_differences(name, data):
    op, right_kwargs = BINARY[name]
    (shape_a, shape_b), result_shape = data.draw(broadcastable_shapes(n=2))
    a = data.draw(arrays(shape=shape_a))
    b = data.draw(arrays(shape=shape_b, **right_kwargs))

    out = op(tg.Tensor(a), tg.Tensor(b))
    assert out.shape == tuple(result_shape)
    np.testing.assert_allclose(out.data, op(a, b), rtol=1e-12, atol=0)
    assert gradcheck(op, [a, b])


@given(data=st.data())
def test_pow_with_positive_base_matches_numpy_and_finite_differences(data):
    (shape_a, shape_b), _ = data.draw(broadcastable_shapes(n=2))
    base = data.draw(arrays(shape=shape_a, min_value=0.2, max_value=3.0))
    exponent = data.draw(arrays(shape=shape_b, min_value=-2.0, max_value=2.0))

    np.testing.assert_allclose((tg.Tensor(base) ** tg.Tensor(exponent)).data, base ** exponent, rtol=1e-12)
    assert gradcheck(lambda x, p: x ** p, [base, exponent])


@given(x=arrays(away_from=(0.0,), margin=0.3), power=st.sampled_from([2, 3, -1.0]))
def test_pow_with_constant_exponent_handles_negative_bases(x, power):
    # an integer (or integral float) exponent is defined for negative bases
    np.testing.assert_allclose((tg.Tensor(x) ** power).data, x ** power, rtol=1e-12)
    assert gradcheck(lambda t: t ** power, [x])


# name -> (engine function, numpy reference, keyword arguments of testing.arrays)
UNARY = {
    "neg": (lambda t: -t, np.negative, {}),
    "exp": (tg.exp, np.exp, {}),
    "log": (tg.log, np.log, {"min_value": 0.1}),
    "sqrt": (tg.sqrt, np.sqrt, {"min_value": 0.1}),
    "abs": (tg.abs, np.abs, {"away_from": (0.0,)}),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_op_matches_numpy_and_finite_differences(name, data):
    fn, reference, kwargs = UNARY[name]
    x = data.draw(arrays(**kwargs))
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, reference(x), rtol=1e-12, atol=0)
    assert gradcheck(fn, [x])


@pytest.mark.parametrize("method, reference", [
    (lambda t: t.exp(), np.exp), (lambda t: t.log(), np.log), (lambda t: t.sqrt(), np.sqrt),
    (lambda t: t.abs(), np.abs), (abs, np.abs), (lambda t: +t, np.positive),
], ids=["exp", "log", "sqrt", "abs", "builtin_abs", "unary_plus"])
def test_tensor_methods_match_numpy(method, reference):
    x = np.random.default_rng(13).uniform(0.1, 3.0, size=(2, 3))
    np.testing.assert_allclose(method(tg.Tensor(x)).data, reference(x), rtol=1e-12)
    assert gradcheck(method, [x])


def test_abs_gradient_at_zero_is_zero():
    x = tg.Tensor([-2.0, 0.0, 3.0], requires_grad=True)
    abs(x).backward(np.array([5.0, 7.0, 11.0]))
    np.testing.assert_array_equal(x.grad, [-5.0, 0.0, 11.0])


# ----- clip ------------------------------------------------------------------------
@given(data=st.data())
def test_clip_matches_numpy_and_finite_differences_away_from_bounds(data):
    bounds = data.draw(st.sampled_from(["both", "min_only", "max_only"]))
    lo = data.draw(st.floats(-2.0, 1.0))
    hi = lo + data.draw(st.floats(0.1, 2.0))
    lo = None if bounds == "max_only" else lo
    hi = None if bounds == "min_only" else hi
    x = data.draw(arrays(away_from=tuple(v for v in (lo, hi) if v is not None), margin=1e-2))

    out = tg.clip(tg.Tensor(x), lo, hi)
    np.testing.assert_array_equal(out.data, np.clip(x, lo, hi))
    assert gradcheck(lambda t: t.clip(lo, hi), [x])


def test_clip_passes_the_gradient_only_inside_the_bounds():
    x = tg.Tensor([-3.0, -1.0, 0.5, 1.0, 4.0], requires_grad=True)
    grad_out = np.array([2.0, 3.0, 5.0, 7.0, 11.0])
    x.clip(-1.0, 1.0).backward(grad_out)
    # the bounds themselves count as inside (lo <= x <= hi), as in PyTorch
    np.testing.assert_array_equal(x.grad, [0.0, 3.0, 5.0, 7.0, 0.0])



def test_clip_with_tensor_bounds_gives_the_bounds_their_gradient_as_torch_clamp():
    x = tg.Tensor([-2.0, 0.5, 3.0, 0.0], requires_grad=True)
    lo = tg.Tensor([0.0, 0.0, 0.0, 0.0], requires_grad=True)
    hi = tg.Tensor([1.0, 1.0, 1.0, -1.0], requires_grad=True)   # last: min > max gives max
    out = tg.clip(x, lo, hi)
    np.testing.assert_array_equal(out.data, [0.0, 0.5, 1.0, -1.0])
    out.backward(np.array([1.0, 2.0, 3.0, 4.0]))
    # torch.clamp(x, lo, hi) gives these (checked against torch 2.13)
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(lo.grad, [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(hi.grad, [0.0, 0.0, 3.0, 4.0])
    # the method spellings take Tensor bounds too
    np.testing.assert_array_equal(x.clamp(lo, hi).data, out.data)
    np.testing.assert_array_equal(x.clip(max=hi).data, [-2.0, 0.5, 1.0, -1.0])


def test_clip_with_tensor_bounds_keeps_x_dtype_and_handles_nan_as_torch_clamp():
    x = tg.Tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
    assert x.clip(tg.Tensor(np.array([2, 2, 2])), None).dtype == np.float32   # an int bound
    assert x.clip(tg.Tensor(np.array(2.0)), 2.5).dtype == np.float32          # a float64 bound
    # NaN in x or in a bound: NaN out, and no gradient to x or the bounds there (torch 2.13)
    x = tg.Tensor(np.array([1.0, np.nan, 3.0]), requires_grad=True)
    lo = tg.Tensor(np.array([np.nan, 2.0, 2.0]), requires_grad=True)
    hi = tg.Tensor(np.array([2.5, 2.5, 2.5]), requires_grad=True)
    out = x.clip(lo, hi)
    np.testing.assert_array_equal(out.data, [np.nan, np.nan, 2.5])
    out.backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(lo.grad, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(hi.grad, [0.0, 0.0, 3.0])
    with pytest.raises(TypeError, match="clip: max must be a number, a numpy array, a Tensor or None; got str"):
        x.clip(lo, "a")


def test_clip_with_a_numpy_array_bound_broadcasts_and_is_a_constant():
    x = np.array([[-2.0, 0.5], [3.0, 0.25]])
    out = tg.Tensor(x).clip(np.array([0.0, 1.0]), 2.0)
    np.testing.assert_array_equal(out.data, np.clip(x, [0.0, 1.0], 2.0))
    assert gradcheck(lambda t: tg.clip(t, np.array([0.0, 0.4]), 2.0), [np.array([[-2.0, 0.5], [1.0, 0.25]])])


@pytest.mark.parametrize("bound, error, message", [
    ("a", TypeError, "clip: min must be a number, a numpy array, a Tensor or None; got str"),
    (True, TypeError, "got bool"),
    (np.array(["x"]), TypeError, "min has dtype <U1; accepted: int or float arrays"),
    (np.zeros(4), ValueError, "shapes (3,) and (4,) cannot be broadcast"),
    (np.zeros((2, 3)), ValueError, "min has shape (2, 3), which does not broadcast to x's shape (3,)"),
])
def test_clip_refuses_a_bad_bound_naming_what_is_accepted(bound, error, message):
    with pytest.raises(error) as info:
        tg.clip(tg.Tensor(np.zeros(3)), bound, 1.0)
    assert message in str(info.value)

# ----- Python scalars and numpy arrays on either side --------------------------------
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
             "**": operator.pow}
OTHERS = {
    "python_float": 1.5,
    "python_int": 2,
    "numpy_scalar": np.float64(0.75),
    "numpy_array": np.array([0.5, 1.25, 2.0, 0.8]),
}


@pytest.mark.parametrize("other_name", list(OTHERS))
@pytest.mark.parametrize("symbol", list(OPERATORS))
@pytest.mark.parametrize("tensor_on_left", [True, False], ids=["tensor_op_other", "other_op_tensor"])
def test_operators_accept_python_scalars_and_numpy_arrays_on_either_side(symbol, other_name, tensor_on_left):
    op, other = OPERATORS[symbol], OTHERS[other_name]
    x = np.random.default_rng(0).uniform(0.5, 2.0, size=(3, 4))   # positive: / and ** are smooth
    fn = (lambda t: op(t, other)) if tensor_on_left else (lambda t: op(other, t))

    out = fn(tg.Tensor(x, requires_grad=True))
    assert isinstance(out, tg.Tensor)
    assert out.requires_grad
    np.testing.assert_allclose(out.data, fn(x), rtol=1e-12)
    assert gradcheck(fn, [x])


# ----- float32 is kept ------------------------------------------------------------------
FLOAT32_CASES = {
    "tensor*2.0": lambda t: t * 2.0,
    "2.0*tensor": lambda t: 2.0 * t,
    "tensor+1": lambda t: t + 1,
    "1-tensor": lambda t: 1 - t,
    "tensor/3.0": lambda t: t / 3.0,
    "3.0/tensor": lambda t: 3.0 / t,
    "tensor**2": lambda t: t ** 2,
    "2.0**tensor": lambda t: 2.0 ** t,
    "tensor*np.float64": lambda t: t * np.float64(2.0),
    "-tensor": lambda t: -t,
    "tensor*tensor": lambda t: t * t,
    "exp": tg.exp,
    "log": tg.log,
    "sqrt": tg.sqrt,
    "abs": tg.abs,
    "clip": lambda t: t.clip(0.7, 1.5),
}


@pytest.mark.parametrize("name", list(FLOAT32_CASES))
def test_float32_stays_float32_in_forward_and_gradient(name):
    fn = FLOAT32_CASES[name]
    x64 = np.random.default_rng(1).uniform(0.5, 2.0, size=(2, 3))
    x = tg.Tensor(x64.astype(np.float32), requires_grad=True)
    out = fn(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, fn(tg.Tensor(x64)).data, rtol=1e-5)
    out.backward(np.ones((2, 3), np.float32))
    assert x.grad.dtype == np.float32


def test_float32_tensor_with_float64_array_promotes_like_numpy_but_grad_keeps_input_dtype():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    out = x + np.ones(3, np.float64)
    assert out.dtype == np.result_type(np.float32, np.float64)
    out.backward(np.array([1.0, 2.0, 3.0]))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 3.0])


# ----- integer tensors in the ops that allow them ------------------------------------------
def test_integer_tensors_add_and_multiply_like_numpy():
    a, b = np.array([1, 2, 3]), np.array([[4], [5]])
    np.testing.assert_array_equal((tg.Tensor(a) + tg.Tensor(b)).data, a + b)
    np.testing.assert_array_equal((tg.Tensor(a) * 2).data, a * 2)
    assert (tg.Tensor(a) * 2).dtype.kind == "i"
    assert not (tg.Tensor(a) - tg.Tensor(a)).requires_grad


# ----- cast ------------------------------------------------------------------------------
def test_cast_to_float32_and_back_routes_the_gradient_in_the_input_dtype():
    x = tg.Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True)
    y = x.astype(np.float32)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, x.data.astype(np.float32))
    grad_out = np.array([1.0, -2.0, 0.5], np.float32)
    (y * 3.0).backward(grad_out)
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, 3.0 * grad_out, rtol=1e-6)


@given(x=arrays())
def test_cast_float64_to_float64_matches_finite_differences(x):
    assert gradcheck(lambda t: t.astype(np.float64) * 2.0, [x])


def test_cast_to_integer_is_not_differentiable():
    x = tg.Tensor([1.7, -2.2], requires_grad=True)
    y = x.astype(np.int64)
    np.testing.assert_array_equal(y.data, [1, -2])
    assert y.dtype == np.int64
    assert not y.requires_grad


def test_pow_exponent_gradient_at_a_zero_base_is_zero_as_in_torch():
    p = tg.Tensor(np.array([2.0, 3.0]), requires_grad=True)
    (tg.Tensor(np.array([0.0, 1.0])) ** p).sum().backward()
    np.testing.assert_array_equal(p.grad, [0.0, 0.0])
