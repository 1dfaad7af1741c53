"""tinygrad_vg/ops/loss.py, the additions: nll_loss, binary_cross_entropy and
binary_cross_entropy_with_logits, against their formulas in numpy and central differences,
with every reduction; torch's conventions (the -100 clamp, ignore_index, the mean over no
target) and the errors for bad targets."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

FEW = settings(max_examples=max(10, settings.default.max_examples // 3))
REDUCE = {"mean": np.mean, "sum": np.sum, "none": lambda v: v}


@pytest.mark.parametrize("reduction", list(REDUCE))
@FEW
@given(data=st.data())
def test_nll_loss_matches_its_formula_and_finite_differences(reduction, data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    logp = data.draw(arrays(shape=(n, c)))
    target = np.array(data.draw(st.lists(st.integers(0, c - 1) | st.just(-100), min_size=n, max_size=n)))
    valid = target != -100
    picked = np.where(valid, -logp[np.arange(n), np.where(valid, target, 0)], 0.0)
    if reduction == "mean" and not valid.any():   # torch: NaN
        assert np.isnan(F.nll_loss(logp, target, reduction).data)
        return
    expected = picked.sum() / valid.sum() if reduction == "mean" else REDUCE[reduction](picked)
    np.testing.assert_allclose(F.nll_loss(logp, target, reduction).data, expected, rtol=1e-12)
    assert gradcheck(lambda t: F.nll_loss(t, target, reduction), [logp])


@pytest.mark.parametrize("reduction", list(REDUCE))
@FEW
@given(data=st.data())
def test_weighted_nll_loss_matches_its_formula_and_finite_differences(reduction, data):
    n, c = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    logp = data.draw(arrays(shape=(n, c)))
    weight = data.draw(arrays(shape=(c,), min_value=0.1, max_value=3.0))
    target = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    picked = -weight[target] * logp[np.arange(n), target]
    expected = picked.sum() / weight[target].sum() if reduction == "mean" else REDUCE[reduction](picked)
    fn = lambda t: F.nll_loss(t, target, reduction, weight=weight)  # noqa: E731
    np.testing.assert_allclose(fn(tg.Tensor(logp)).data, expected, rtol=1e-12)
    assert gradcheck(fn, [logp])


def test_nll_loss_of_log_softmax_is_cross_entropy():
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(4, 3)), np.array([0, 2, 1, 2])
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(logits, dim=1), target).data,
                               F.cross_entropy(logits, target).data, rtol=1e-14)


def test_nll_loss_checks_its_targets():
    logp = tg.Tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(logp, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        F.nll_loss(logp, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"lie in \[0, 2\]"):
        F.nll_loss(logp, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        F.nll_loss(tg.Tensor(np.zeros(3)), np.array([0]))
    with pytest.raises(ValueError, match="reduction"):
        F.nll_loss(logp, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match=r"one number per class, shape \(3,\)"):
        F.nll_loss(logp, np.array([0, 1]), weight=np.ones(2))
    np.testing.assert_array_equal(F.nll_loss(logp, np.array([5, 1]), ignore_index=5, reduction="none").data, [0, 0])


@pytest.mark.parametrize("reduction", list(REDUCE))
@FEW
@given(p=arrays(min_value=0.02, max_value=0.98, min_dims=0), data=st.data())
def test_binary_cross_entropy_matches_its_formula_and_finite_differences(reduction, p, data):
    t = data.draw(arrays(shape=p.shape, min_value=0.0, max_value=1.0))
    expected = REDUCE[reduction](-(t * np.log(p) + (1 - t) * np.log1p(-p)))
    np.testing.assert_allclose(F.binary_cross_entropy(p, t, reduction).data, expected, rtol=1e-12)
    assert gradcheck(lambda a, b: F.binary_cross_entropy(a, b, reduction), [p, t])


def test_binary_cross_entropy_clamps_the_log_at_minus_100_as_torch():
    p = tg.Tensor(np.array([0.0, 1.0, 0.5]), requires_grad=True)
    t = np.array([1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_allclose(loss.data, [100.0, 100.0, np.log(2)])
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad))   # torch: (p - t) / max(p (1 - p), 1e-12) = -1e12, 1e12
    np.testing.assert_allclose(p.grad, [-1e12, 1e12, -2.0])


def test_binary_cross_entropy_checks_inputs_and_targets():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        F.binary_cross_entropy(np.array([1.5]), np.array([1.0]))
    with pytest.raises(TypeError, match="targets must be float"):
        F.binary_cross_entropy(np.array([0.5]), np.array([1]))
    with pytest.raises(ValueError, match="must equal the input's shape"):
        F.binary_cross_entropy(np.array([0.5, 0.5]), np.array([1.0]))


@pytest.mark.parametrize("reduction", list(REDUCE))
@FEW
@given(x=arrays(min_value=-6, max_value=6, min_dims=1), data=st.data())
def test_bce_with_logits_matches_bce_of_sigmoid_and_finite_differences(reduction, x, data):
    t = data.draw(arrays(shape=x.shape, min_value=0.0, max_value=1.0))
    w = data.draw(arrays(shape=(x.shape[-1],), min_value=0.2, max_value=3.0))
    s = 1 / (1 + np.exp(-x))
    expected = REDUCE[reduction](-(w * t * np.log(s) + (1 - t) * np.log(1 - s)))
    out = F.binary_cross_entropy_with_logits(x, t, reduction, pos_weight=w)
    np.testing.assert_allclose(out.data, expected, rtol=1e-10)
    assert gradcheck(lambda a, b, c: F.binary_cross_entropy_with_logits(a, b, reduction, pos_weight=c), [x, t, w])
    assert gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction), [x, t])


def test_bce_with_logits_is_stable_for_large_logits_and_checks_pos_weight():
    x = tg.Tensor(np.array([1000.0, -1000.0]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.data, [1000.0, 1000.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, -1.0])
    with pytest.raises(ValueError, match="pos_weight of shape"):
        F.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2))
