"""tinygrad_vg/nn/linear.py: Linear, BatchNorm1d, LayerNorm. Forward against torch's
equations written out in numpy, gradients (float64) with respect to the input and
every parameter. Shapes: N batch, D features."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import nn
from tinygrad_vg.testing import arrays

from .helpers import gradcheck_module


# ----- Linear ---------------------------------------------------------------------------------
@settings(deadline=None, max_examples=30)
@given(data=st.data(), lead=st.lists(st.integers(1, 3), min_size=1, max_size=3), d_in=st.integers(1, 4),
       d_out=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_forward_and_gradients(data, lead, d_in, d_out, bias, seed):
    layer = nn.Linear(d_in, d_out, bias=bias, dtype=np.float64, rng=seed)
    x = data.draw(arrays(shape=(*lead, d_in)))
    w = layer.state_dict()["weight"]
    b = layer.state_dict()["bias"] if bias else 0.0
    y = layer(x)
    assert y.shape == (*lead, d_out)
    np.testing.assert_allclose(y.data, x @ w.T + b, rtol=1e-12, atol=1e-12)
    assert gradcheck_module(layer, [tg.Tensor(x, requires_grad=True)])


def test_linear_has_torchs_names_shapes_and_default_init():
    layer = nn.Linear(400, 300, rng=0)
    state = layer.state_dict()
    assert {k: v.shape for k, v in state.items()} == {"weight": (300, 400), "bias": (300,)}
    bound = 1 / np.sqrt(400)
    for value in state.values():
        assert value.dtype == np.float32
        assert np.abs(value).max() <= bound and np.abs(value).max() > 0.98 * bound
    assert np.std(state["weight"]) == pytest.approx(bound / np.sqrt(3), rel=0.02)
    assert list(nn.Linear(2, 3, bias=False).state_dict()) == ["weight"]


def test_linear_rejects_wrong_width_and_bad_sizes():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\).*\(4, 5\)"):
        layer(np.zeros((4, 5), np.float32))
    for args in ((0, 2), (3, -1), (2.0, 3)):
        with pytest.raises(ValueError, match="positive int"):
            nn.Linear(*args)


# ----- BatchNorm1d ------------------------------------------------------------------------------
def np_batchnorm_train(x, weight, bias, running_mean, running_var, momentum, eps):
    n = x.shape[0]
    mean, var = x.mean(axis=0), x.var(axis=0)
    y = (x - mean) / np.sqrt(var + eps) * weight + bias
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)   # unbiased
    return y, new_mean, new_var


@settings(deadline=None, max_examples=25)
@given(data=st.data(), n=st.integers(2, 6), d=st.integers(1, 4), momentum=st.floats(0.05, 0.9),
       steps=st.integers(1, 3))
def test_batchnorm_train_matches_equations_and_updates_running_stats(data, n, d, momentum, steps):
    bn = nn.BatchNorm1d(d, momentum=momentum, eps=1e-3, dtype=np.float64)
    rng = np.random.default_rng(n * 10 + d)
    bn.weight.data[:] = rng.normal(size=d)
    bn.bias.data[:] = rng.normal(size=d)
    running_mean, running_var = np.zeros(d), np.ones(d)
    for step in range(steps):
        x = data.draw(arrays(shape=(n, d)))
        want, running_mean, running_var = np_batchnorm_train(x, bn.weight.data, bn.bias.data, running_mean,
                                                             running_var, momentum, 1e-3)
        np.testing.assert_allclose(bn(x).data, want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-12, atol=1e-12)
        assert int(bn.num_batches_tracked) == step + 1
    # eval: the running statistics, not the batch's, and no update
    bn.eval()
    x = data.draw(arrays(shape=(n, d)))
    want = (x - running_mean) / np.sqrt(running_var + 1e-3) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(bn(x).data, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=0, atol=0)
    assert int(bn.num_batches_tracked) == steps


@settings(deadline=None, max_examples=20)
@given(data=st.data(), n=st.integers(2, 5), d=st.integers(1, 3), training=st.booleans())
def test_batchnorm_gradients(data, n, d, training):
    bn = nn.BatchNorm1d(d, dtype=np.float64)
    rng = np.random.default_rng(n + 7 * d)
    bn.weight.data[:] = rng.normal(size=d)
    bn.bias.data[:] = rng.normal(size=d)
    bn.running_mean[:] = rng.normal(size=d)
    bn.running_var[:] = rng.uniform(0.5, 2.0, size=d)
    bn.train(training)
    # rows well apart so the batch variance is not ~0 (the normalization divides by it)
    x = data.draw(arrays(shape=(n, d))) + 2.0 * np.arange(n)[:, None]
    assert gradcheck_module(bn, [tg.Tensor(x, requires_grad=True)])


def test_batchnorm_needs_two_samples_in_training_and_the_right_width():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 sample"):
        bn(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        bn(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 4, 3\)"):
        bn(np.zeros((2, 4, 3), np.float32))
    bn.eval()
    assert bn(np.ones((1, 3), np.float32)).shape == (1, 3)


def test_batchnorm_state_dict_has_torchs_keys():
    assert {k: v.shape for k, v in nn.BatchNorm1d(5).state_dict().items()} == {
        "weight": (5,), "bias": (5,), "running_mean": (5,), "running_var": (5,), "num_batches_tracked": ()}


# ----- LayerNorm ------------------------------------------------------------------------------------
@settings(deadline=None, max_examples=30)
@given(data=st.data(), lead=st.lists(st.integers(1, 3), min_size=1, max_size=2), d=st.integers(2, 5),
       affine=st.booleans())
def test_layernorm_forward_and_gradients(data, lead, d, affine):
    ln = nn.LayerNorm(d, eps=1e-3, elementwise_affine=affine, dtype=np.float64)
    if affine:
        rng = np.random.default_rng(d)
        ln.weight.data[:] = rng.normal(size=d)
        ln.bias.data[:] = rng.normal(size=d)
    x = data.draw(arrays(shape=(*lead, d))) + np.arange(d)   # features apart: variance not ~0
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-3)
    if affine:
        want = want * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(x).data, want, rtol=1e-10, atol=1e-10)
    assert gradcheck_module(ln, [tg.Tensor(x, requires_grad=True)])


def test_layernorm_keys_and_width_check():
    ln = nn.LayerNorm(4)
    assert {k: v.shape for k, v in ln.state_dict().items()} == {"weight": (4,), "bias": (4,)}
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        ln(np.zeros((2, 3), np.float32))
