"""tinygrad_vg/ops/linalg.py: matmul with numpy's rules (1-D operands promoted and
the added axis removed; batch axes broadcast). Shapes: a (..., N, K), b (..., K, M)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_vg as tg
from tinygrad_vg.gradcheck import gradcheck
from tinygrad_vg.testing import arrays

SHAPE_PAIRS = {
    "1d@1d": ((4,), (4,)),
    "1d@2d": ((4,), (4, 3)),
    "2d@1d": ((3, 4), (4,)),
    "2d@2d": ((3, 4), (4, 2)),
    "1d@batch": ((4,), (2, 4, 3)),
    "batch@1d": ((2, 3, 4), (4,)),
    "batch@2d": ((2, 3, 4), (4, 2)),
    "2d@batch": ((3, 4), (2, 4, 2)),
    "batch_broadcast": ((2, 1, 3, 4), (5, 4, 2)),
    "batch_broadcast_both_ways": ((1, 3, 2, 4), (2, 1, 4, 3)),
}


@pytest.mark.parametrize("name", list(SHAPE_PAIRS))
def test_matmul_shapes_match_numpy_and_finite_differences(name):
    shape_a, shape_b = SHAPE_PAIRS[name]
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=shape_a), rng.normal(size=shape_b)
    out = tg.Tensor(a) @ tg.Tensor(b)
    assert out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(out.data, a @ b, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda ta, tb: ta @ tb, [a, b])


@st.composite
def matmul_operands(draw):
    """Two arrays whose shapes matmul accepts: 1-D or with broadcastable batch axes."""
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    shape_a = (k,) if draw(st.booleans()) else batch_a + (n, k)
    shape_b = (k,) if draw(st.booleans()) else batch_b + (k, m)
    return draw(arrays(shape=shape_a)), draw(arrays(shape=shape_b))


@given(operands=matmul_operands())
def test_matmul_of_drawn_shapes_matches_numpy_and_finite_differences(operands):
    a, b = operands
    np.testing.assert_allclose(tg.matmul(tg.Tensor(a), tg.Tensor(b)).data, np.matmul(a, b),
                               rtol=1e-12, atol=1e-12)
    assert gradcheck(tg.matmul, [a, b])


def test_matmul_with_a_numpy_array_on_either_side():
    rng = np.random.default_rng(9)
    w_np, x_np = rng.normal(size=(2, 3)), rng.normal(size=(3, 4))
    x = tg.Tensor(x_np, requires_grad=True)
    left = w_np @ x
    assert isinstance(left, tg.Tensor)
    np.testing.assert_allclose(left.data, w_np @ x_np)
    right = x.T @ w_np.T
    np.testing.assert_allclose(right.data, x_np.T @ w_np.T)
    grad_out = rng.normal(size=(2, 4))
    left.backward(grad_out)
    np.testing.assert_allclose(x.grad, w_np.T @ grad_out)


def test_matmul_gradient_formula_for_2d():
    # grad_a = grad_out @ b^T, grad_b = a^T @ grad_out
    rng = np.random.default_rng(10)
    a = tg.Tensor(rng.normal(size=(3, 4)), requires_grad=True)
    b = tg.Tensor(rng.normal(size=(4, 2)), requires_grad=True)
    grad_out = rng.normal(size=(3, 2))
    (a @ b).backward(grad_out)
    np.testing.assert_allclose(a.grad, grad_out @ b.data.T)
    np.testing.assert_allclose(b.grad, a.data.T @ grad_out)


def test_float32_matmul_stays_float32():
    rng = np.random.default_rng(11)
    a = tg.Tensor(rng.normal(size=(2, 3, 4)).astype(np.float32), requires_grad=True)
    b = tg.Tensor(rng.normal(size=(4, 5)).astype(np.float32), requires_grad=True)
    out = a @ b
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.data, a.data.astype(np.float64) @ b.data.astype(np.float64), rtol=1e-5, atol=1e-5)
    out.backward(np.ones(out.shape, np.float32))
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    assert b.grad.shape == (4, 5)
