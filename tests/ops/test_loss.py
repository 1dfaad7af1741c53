"""tinygrad_vg/ops/loss.py: softmax, log_softmax, mse_loss, cross_entropy.

Shapes: logits (N, C); class targets (N,) integers in [0, C); probability
targets (N, C). Forward against scipy/numpy, gradients by central differences.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}


# ----- softmax and log_softmax ------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_along_a_drawn_axis_matches_scipy_and_finite_differences(name, data):
    x = data.draw(arrays(min_dims=1))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    fn = lambda t: getattr(F, name)(t, axis=axis)  # noqa: E731
    np.testing.assert_allclose(fn(tg.Tensor(x)).data, getattr(special, name)(x, axis=axis),
                               rtol=1e-12, atol=1e-14)
    assert gradcheck(fn, [x])


def test_softmax_rows_sum_to_one_and_large_logits_are_stable():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]])
    probs = F.softmax(tg.Tensor(x), axis=1).data
    np.testing.assert_allclose(probs.sum(axis=1), [1.0, 1.0], rtol=1e-14)
    np.testing.assert_allclose(probs, special.softmax(x, axis=1), rtol=1e-12)
    log_probs = F.log_softmax(tg.Tensor(x), axis=1).data
    assert np.isfinite(log_probs).all()
    np.testing.assert_allclose(log_probs, special.log_softmax(x, axis=1), rtol=1e-12)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("shape", [(2, 0), (0, 3)])
def test_softmax_of_an_empty_array_is_empty_with_an_empty_gradient_as_in_torch(fn, shape):
    x = tg.Tensor(np.ones(shape), requires_grad=True)
    out = fn(x, axis=1)
    assert out.shape == shape
    out.sum().backward()
    assert x.grad.shape == shape


# ----- mse_loss ------------------------------------------------------------------------------
@given(data=st.data(), reduction=st.sampled_from(list(REDUCE)))
def test_mse_loss_matches_numpy_and_finite_differences(data, reduction):
    pred = data.draw(arrays())
    target = data.draw(arrays(shape=pred.shape))
    fn = lambda p, t: F.mse_loss(p, t, reduction=reduction)  # noqa: E731
    np.testing.assert_allclose(fn(tg.Tensor(pred), tg.Tensor(target)).data,
                               REDUCE[reduction]((pred - target) ** 2), rtol=1e-12)
    assert gradcheck(fn, [pred, target])


def test_mse_loss_with_a_numpy_target():
    pred = tg.Tensor([1.0, 2.0, 4.0], requires_grad=True)
    loss = F.mse_loss(pred, np.array([1.0, 0.0, 1.0]))
    np.testing.assert_allclose(loss.item(), (0 + 4 + 9) / 3)
    loss.backward()
    np.testing.assert_allclose(pred.grad, 2 * np.array([0.0, 2.0, 3.0]) / 3)


# ----- cross_entropy ---------------------------------------------------------------------------
@st.composite
def logits_and_class_targets(draw):
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(arrays(shape=(n, c)))
    target = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64)
    return logits, target


@given(case=logits_and_class_targets(), reduction=st.sampled_from(list(REDUCE)))
def test_cross_entropy_with_class_targets(case, reduction):
    logits, target = case
    fn = lambda t: F.cross_entropy(t, target, reduction=reduction)  # noqa: E731
    per_sample = -special.log_softmax(logits, axis=1)[np.arange(len(target)), target]
    np.testing.assert_allclose(fn(tg.Tensor(logits)).data, REDUCE[reduction](per_sample), rtol=1e-12, atol=1e-14)
    assert gradcheck(fn, [logits])


@given(data=st.data(), reduction=st.sampled_from(list(REDUCE)))
def test_cross_entropy_with_probability_targets(data, reduction):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    logits = data.draw(arrays(shape=(n, c)))
    probs = special.softmax(data.draw(arrays(shape=(n, c))), axis=1)
    fn = lambda x, p: F.cross_entropy(x, p, reduction=reduction)  # noqa: E731
    per_sample = -(probs * special.log_softmax(logits, axis=1)).sum(axis=1)
    np.testing.assert_allclose(fn(tg.Tensor(logits), tg.Tensor(probs)).data, REDUCE[reduction](per_sample),
                               rtol=1e-12, atol=1e-14)
    # the loss is differentiable in the targets too
    assert gradcheck(fn, [logits, probs])


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    x = tg.Tensor(logits, requires_grad=True)
    F.cross_entropy(x, np.array([0, 2])).backward()
    onehot = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(x.grad, (special.softmax(logits, axis=1) - onehot) / 2, rtol=1e-12)


def test_cross_entropy_with_large_logits_is_finite():
    loss = F.cross_entropy(tg.Tensor([[1000.0, -1000.0], [-1000.0, 1000.0]]), [1, 1], reduction="none")
    np.testing.assert_allclose(loss.data, [2000.0, 0.0])


LOSSES = {
    "softmax": lambda x: F.softmax(x, axis=1),
    "log_softmax": lambda x: F.log_softmax(x, axis=0),
    "mse_loss": lambda x: F.mse_loss(x, np.zeros(x.shape, np.float32)),
    "cross_entropy": lambda x: F.cross_entropy(x, np.array([0, 1])),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_float32_stays_float32_in_forward_and_gradient(name):
    x = tg.Tensor(np.random.default_rng(12).normal(size=(2, 3)).astype(np.float32), requires_grad=True)
    out = LOSSES[name](x)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    assert x.grad.dtype == np.float32
