"""tinygrad_vg/ops/linalg.py LinearAct (F.linear_act): y = f(x W^T + b) as one tape node.
Gradchecked in float64 against central differences with a random upstream gradient
(gradcheck draws one), over activations, batch axes and with/without bias."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import functional as F
from tinygrad_vg.gradcheck import gradcheck

ACTIVATIONS = [None, "tanh", "sigmoid", "relu"]
UNFUSED = {None: lambda z: z, "tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu}


def away_from_kink(z: np.ndarray) -> np.ndarray:
    return np.where(np.abs(z) < 0.1, 0.1 + np.abs(z), z)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("x_shape", [(5, 3), (3,), (2, 4, 3)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_gradcheck(activation, x_shape, with_bias):
    rng = np.random.default_rng(3)
    x = rng.normal(size=x_shape)
    w = rng.normal(size=(4, 3))
    b = rng.normal(size=4)
    if activation == "relu":   # keep every pre-activation away from the kink at 0
        b = b + 3 * np.sign(b)
        x = x * 0.1
    args = [x, w, b] if with_bias else [x, w]
    assert gradcheck(lambda *t: F.linear_act(*t, activation=activation), args)


@given(n=st.integers(1, 6), d_in=st.integers(1, 5), d_out=st.integers(1, 5),
       activation=st.sampled_from(ACTIVATIONS), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_equals_linear_then_activation(n, d_in, d_out, activation, dtype, seed):
    """Same values and gradients as the two-node F.linear + activation."""
    rng = np.random.default_rng(seed)
    x_np = rng.normal(size=(n, d_in)).astype(dtype)
    w_np, b_np = rng.normal(size=(d_out, d_in)).astype(dtype), rng.normal(size=d_out).astype(dtype)
    grad_out = rng.normal(size=(n, d_out)).astype(dtype)
    results = []
    for fused in (True, False):
        x, w, b = (tg.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        y = F.linear_act(x, w, b, activation) if fused else UNFUSED[activation](F.linear(x, w, b))
        assert y.dtype == dtype and len(tg.tape(y)) == (1 if fused or activation is None else 2)
        y.backward(grad_out)
        results.append([y.data, x.grad, w.grad, b.grad])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, **tol)


def test_only_the_gradients_needed_are_computed():
    rng = np.random.default_rng(4)
    x = tg.Tensor(rng.normal(size=(3, 2)))               # a constant input: no grad_x
    w = tg.Tensor(rng.normal(size=(4, 2)), requires_grad=True)
    b = tg.Tensor(rng.normal(size=4))                    # a constant bias
    F.linear_act(x, w, b, "tanh").sum().backward()
    assert x.grad is None and b.grad is None and w.grad.shape == (4, 2)


def test_bad_input_raises():
    x, w = tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        F.linear_act(x, w, activation="gelu")
    with pytest.raises(ValueError, match=r"linear_act: input of shape \(2, 3\) needs last dimension 2"):
        F.linear_act(x, tg.Tensor(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"bias shape \(3,\) must be \(4,\)"):
        F.linear_act(x, w, tg.Tensor(np.ones(3)))


# ----- residual=True: x + f(x W^T + b) in one node ------------------------------------------
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("x_shape", [(5, 3), (3,), (2, 4, 3)])
def test_residual_gradcheck(activation, x_shape):
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=x_shape), rng.normal(size=(3, 3)), rng.normal(size=3)
    if activation == "relu":   # away from the kink at 0
        b = b + 3 * np.sign(b)
        x = x * 0.1
    assert gradcheck(lambda *t: F.linear_act(*t, activation=activation, residual=True), [x, w, b])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_is_bit_for_bit_x_plus_the_layer(activation, dtype):
    """One node, and exactly the values and gradients of the two-node x + linear_act(x)."""
    rng = np.random.default_rng(6)
    x_np, w_np, b_np = (rng.normal(size=s).astype(dtype) for s in ((4, 5), (5, 5), (5,)))
    grad_out = rng.normal(size=(4, 5)).astype(dtype)
    results = []
    for fused in (True, False):
        x, w, b = (tg.Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))
        h = x * 1.0   # an intermediate, as inside a deep net
        y = F.linear_act(h, w, b, activation, residual=True) if fused else h + F.linear_act(h, w, b, activation)
        assert len(tg.tape(y)) == (2 if fused else 3)
        y.backward(grad_out)
        results.append([y.data, x.grad, w.grad, b.grad])
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)


def test_residual_needs_a_square_weight():
    with pytest.raises(ValueError, match=r"residual=True adds x to the output, so the weight must be square "
                                         r"\(out_features == in_features\); got weight of shape \(4, 3\)"):
        F.linear_act(tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((4, 3))), residual=True)
