"""The fused GRU step: forward equals torch's GRUCell equations written in numpy,
backward equals central differences for every input."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import ops


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


@given(n=st.integers(1, 4), hidden=st.integers(1, 4), bias=st.booleans(), seed=st.integers(0, 999))
def test_gru_step_forward_and_gradients(n, hidden, bias, seed):
    rng = np.random.default_rng(seed)
    x_proj = rng.normal(size=(n, 3 * hidden))
    h = rng.normal(size=(n, hidden))
    w = rng.normal(size=(3 * hidden, hidden)) * 0.5
    b = rng.normal(size=3 * hidden) if bias else np.zeros(3 * hidden)
    hp = h @ w.T + b
    r = sigmoid(x_proj[:, :hidden] + hp[:, :hidden])
    z = sigmoid(x_proj[:, hidden:2 * hidden] + hp[:, hidden:2 * hidden])
    new = np.tanh(x_proj[:, 2 * hidden:] + r * hp[:, 2 * hidden:])
    expected = (1 - z) * new + z * h
    inputs = [x_proj, h, w] + ([b] if bias else [])
    got = ops.GRUStep.apply(*[tg.Tensor(a) for a in inputs])
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    assert tg.gradcheck(lambda *t: ops.GRUStep.apply(*t), inputs)


def test_gru_step_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"gru step: x_proj \(2, 5\), h \(2, 2\)"):
        ops.GRUStep.apply(np.ones((2, 5)), np.ones((2, 2)), np.ones((6, 2)))


@given(n=st.integers(1, 3), d=st.integers(1, 3), hidden=st.integers(1, 3), bias=st.booleans(),
       seed=st.integers(0, 999))
def test_lstm_step_forward_and_gradients(n, d, hidden, bias, seed):
    rng = np.random.default_rng(seed)
    x, h, c = rng.normal(size=(n, d)), rng.normal(size=(n, hidden)), rng.normal(size=(n, hidden))
    w_ih, w_hh = rng.normal(size=(4 * hidden, d)) * 0.5, rng.normal(size=(4 * hidden, hidden)) * 0.5
    b_ih, b_hh = rng.normal(size=4 * hidden), rng.normal(size=4 * hidden)
    a = x @ w_ih.T + h @ w_hh.T + (b_ih + b_hh if bias else 0)
    i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h_new = sigmoid(o) * np.tanh(c_new)
    inputs = [x, h, c, w_ih, w_hh] + ([b_ih, b_hh] if bias else [])
    got = ops.LSTMStep.apply(*[tg.Tensor(v) for v in inputs])
    np.testing.assert_allclose(got.data[0], h_new, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.data[1], c_new, rtol=1e-12, atol=1e-12)
    assert tg.gradcheck(lambda *t: ops.LSTMStep.apply(*t), inputs)


def test_lstm_step_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"lstm step: x \(2, 3\), h \(2, 2\), c \(2, 2\)"):
        ops.LSTMStep.apply(np.ones((2, 3)), np.ones((2, 2)), np.ones((2, 2)), np.ones((8, 4)), np.ones((8, 2)))
