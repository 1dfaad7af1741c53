"""tinygrad_vg/tensor.py: construction, dtypes, attributes, numpy interop, comparisons."""
import numpy as np
import pytest
from hypothesis import given

import tinygrad_vg as tg
from tinygrad_vg.testing import arrays


# ----- construction and dtypes -------------------------------------------------------------
def test_python_floats_become_float64():
    t = tg.Tensor([1.0, 2.5])
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.data, [1.0, 2.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_dtype_is_kept(dtype):
    assert tg.Tensor(np.zeros(3, dtype)).dtype == dtype
    assert tg.Tensor([1, 2], dtype=dtype).dtype == dtype
    assert tg.tensor([1.0], dtype=dtype, requires_grad=True).dtype == dtype


def test_integer_and_bool_tensors_are_allowed_without_grad():
    assert tg.Tensor([1, 2, 3]).dtype.kind == "i"
    assert tg.Tensor([True, False]).dtype == np.bool_


def test_tensor_from_a_tensor_takes_its_data():
    a = tg.Tensor([1.0, 2.0], requires_grad=True)
    b = tg.Tensor(a)
    np.testing.assert_array_equal(b.data, a.data)
    assert not b.requires_grad and b.node is None


def test_tensor_function_is_like_the_constructor():
    t = tg.tensor([[1.0, 2.0]], requires_grad=True, name="w")
    assert isinstance(t, tg.Tensor) and t.requires_grad and t.name == "w" and t.shape == (1, 2)


# ----- attributes --------------------------------------------------------------------------
@given(x=arrays())
def test_array_attributes_match_numpy(x):
    t = tg.Tensor(x)
    assert t.shape == x.shape and t.ndim == x.ndim and t.size == x.size and t.dtype == x.dtype
    assert t.numpy() is t.data
    np.testing.assert_array_equal(np.asarray(t), x)
    np.testing.assert_array_equal(t.tolist(), x.tolist())


def test_item_len_and_bool():
    assert tg.Tensor(3.5).item() == 3.5
    assert len(tg.Tensor(np.zeros((4, 2)))) == 4
    assert bool(tg.Tensor(1.0)) and not bool(tg.Tensor(0.0))


def test_array_conversion_with_a_dtype():
    converted = np.asarray(tg.Tensor([1.5, 2.5]), dtype=np.float32)
    assert converted.dtype == np.float32


def test_leaf_and_non_leaf():
    x = tg.Tensor([1.0], requires_grad=True)
    y = x * 2.0
    assert x.is_leaf and x.node is None and x.grad is None
    assert not y.is_leaf and y.node is not None and y.node.name == "Mul" and y.requires_grad


def test_requires_grad_can_be_switched_on_a_leaf_but_not_off_on_a_non_leaf():
    x = tg.Tensor([1.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad
    y = tg.Tensor([1.0], requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match="detach"):
        y.requires_grad = False


def test_repr_shows_values_dtype_and_graph_state():
    assert "requires_grad=True" in repr(tg.Tensor([1.0], requires_grad=True))
    r = repr(tg.Tensor([1.0], requires_grad=True, name="x").exp())
    assert "node=Exp" in r and "float64" in r
    assert "name='w'" in repr(tg.Tensor([2.0], name="w"))


# ----- comparisons ----------------------------------------------------------------------------
@pytest.mark.parametrize("symbol", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons_return_bool_tensors_that_need_no_grad(symbol):
    a_np, b_np = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    a = tg.Tensor(a_np, requires_grad=True)  # noqa: F841  (used by the eval below)
    compare = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
               ">": np.greater, ">=": np.greater_equal}[symbol]
    for other in (tg.Tensor(b_np), b_np, 2.0):
        result = eval(f"a {symbol} other")
        assert isinstance(result, tg.Tensor) and result.dtype == np.bool_
        assert not result.requires_grad
        np.testing.assert_array_equal(result.data, compare(a_np, b_np))


def test_tensors_are_hashable_by_identity():
    a, b = tg.Tensor([1.0]), tg.Tensor([1.0])
    assert len({a, b}) == 2 and a in {a: 1}


# ----- backward entry point -------------------------------------------------------------------
def test_backward_of_a_one_element_tensor_seeds_one():
    x = tg.Tensor([[2.0]], requires_grad=True)
    (x * 3.0).backward()
    np.testing.assert_array_equal(x.grad, [[3.0]])


def test_backward_with_an_explicit_gradient_tensor():
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(tg.Tensor([1.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, -4.0])


def test_grad_has_the_shape_and_dtype_of_the_data():
    x = tg.Tensor(np.ones((2, 1, 3), np.float32), requires_grad=True)
    (x * np.ones((4, 3))).sum().backward()
    assert x.grad.shape == (2, 1, 3) and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, np.full((2, 1, 3), 4.0))
