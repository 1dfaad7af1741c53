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
