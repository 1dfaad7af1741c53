"""Errors a user meets: each names what went wrong (the op, the shapes, the dtype)."""
import re

import numpy as np
import pytest

import tinygrad_vg as tg
import tinygrad_vg.functional as F


def shapes_pattern(op: str, shape_a: tuple, shape_b: tuple) -> str:
    """A regex: the op's name, then both shapes, in that order, anywhere in the message."""
    return f"(?s){op}.*{re.escape(str(shape_a))}.*{re.escape(str(shape_b))}"


# ----- shape mismatches name the op and both shapes -----------------------------------------
@pytest.mark.parametrize("op, fn", [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
])
def test_broadcast_mismatch_names_the_op_and_both_shapes(op, fn):
    a, b = tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=shapes_pattern(op, (2, 3), (4,))):
        fn(a, b)


def test_matmul_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("matmul", (2, 3), (4, 5))):
        tg.Tensor(np.ones((2, 3))) @ tg.Tensor(np.ones((4, 5)))


def test_matmul_batch_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("matmul", (2, 3, 4), (3, 4, 5))):
        tg.Tensor(np.ones((2, 3, 4))) @ tg.Tensor(np.ones((3, 4, 5)))


def test_matmul_of_a_scalar_is_refused():
    with pytest.raises(ValueError, match="matmul"):
        tg.matmul(tg.Tensor(2.0), tg.Tensor(np.ones(3)))


def test_mse_loss_mismatch_names_the_op_and_both_shapes():
    # mse_loss does not broadcast silently: (3, 1) against (3,) is a classic bug
    with pytest.raises(ValueError, match=shapes_pattern("mse_loss", (3, 1), (3,))):
        F.mse_loss(tg.Tensor(np.ones((3, 1))), tg.Tensor(np.ones(3)))


def test_concatenate_mismatch_names_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("concatenate", (2, 3), (2, 4))):
        tg.concatenate([tg.Tensor(np.ones((2, 3))), tg.Tensor(np.ones((2, 4)))], axis=0)


def test_stack_mismatch_names_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("stack", (2,), (3,))):
        tg.stack([tg.Tensor(np.ones(2)), tg.Tensor(np.ones(3))])


def test_where_mismatch_names_the_op_and_the_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("where", (2,), (3,))):
        tg.where(np.array([True, False]), tg.Tensor(np.ones(3)), 0.0)


def test_reshape_to_a_wrong_size_names_both_shapes():
    with pytest.raises(ValueError, match=shapes_pattern("reshape", (2, 3), (4, 2))):
        tg.Tensor(np.ones((2, 3))).reshape(4, 2)


# ----- backward misuse ---------------------------------------------------------------------------
def test_backward_on_a_non_scalar_without_grad():
    y = tg.Tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"(?s)one-element.*\(3,\)"):
        y.backward()


def test_backward_twice_through_a_freed_graph():
    y = (tg.Tensor(np.ones(3), requires_grad=True) * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = tg.Tensor(np.ones((2, 3)), requires_grad=True) * 2.0
    with pytest.raises(ValueError, match=shapes_pattern("", (2, 3), (3, 2))):
        y.backward(np.ones((3, 2)))


def test_backward_on_a_tensor_that_needs_no_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (tg.Tensor(np.ones(2)) * 2.0).sum().backward()


def test_hook_on_a_tensor_that_needs_no_grad():
    with pytest.raises(RuntimeError, match="hook"):
        tg.Tensor(np.ones(2)).register_hook(lambda g: g)


# ----- dtypes ----------------------------------------------------------------------------------------
FLOAT_ONLY = {
    "exp": tg.exp, "log": tg.log, "sqrt": tg.sqrt, "abs": tg.abs, "tanh": tg.tanh,
    "sigmoid": tg.sigmoid, "relu": tg.relu, "gelu": F.gelu, "softmax": F.softmax,
    "log_softmax": F.log_softmax, "mean": lambda t: t.mean(), "var": lambda t: t.var(),
    "logsumexp": lambda t: t.logsumexp(), "max": lambda t: t.max(), "div": lambda t: t / t,
    "pow": lambda t: t ** 2, "matmul": lambda t: t @ t, "clip": lambda t: t.clip(0, 1),
    "cross_entropy": lambda t: F.cross_entropy(t.reshape(1, 3), [0]),
}


@pytest.mark.parametrize("name", list(FLOAT_ONLY))
def test_integer_tensor_to_a_float_op_is_a_type_error(name):
    with pytest.raises(TypeError, match=r"(?i)(float.*int64|int64.*float)"):
        FLOAT_ONLY[name](tg.Tensor(np.array([1, 2, 3])))


@pytest.mark.parametrize("data", [
    np.array([1 + 2j, 3j]),
    np.array(["a", "b"]),
    np.array([object(), object()], dtype=object),
    np.array([1.0, 2.0], dtype=np.float16),
    "text",
], ids=["complex", "str", "object", "float16", "python_str"])
def test_unsupported_dtypes_are_a_type_error(data):
    with pytest.raises(TypeError, match="dtype"):
        tg.Tensor(data)


@pytest.mark.parametrize("data", [[1, 2], np.array([True])], ids=["int", "bool"])
def test_requires_grad_on_a_non_float_tensor_is_a_type_error(data):
    with pytest.raises(TypeError, match="only float tensors can require grad"):
        tg.Tensor(data, requires_grad=True)


def test_an_unsupported_operand_type_is_a_type_error():
    with pytest.raises(TypeError, match="str"):
        tg.Tensor([1.0]) + "a"


def test_a_float_index_array_is_a_type_error():
    with pytest.raises(TypeError, match="index"):
        tg.Tensor(np.ones(3))[np.array([0.0, 1.0])]


def test_an_out_of_range_index_names_the_shape():
    with pytest.raises(IndexError, match=re.escape("(3,)")):
        tg.Tensor(np.ones(3))[5]


# ----- axes ----------------------------------------------------------------------------------------------
BAD_AXIS = {
    "sum": lambda t: t.sum(axis=2), "mean": lambda t: t.mean(axis=-3), "max": lambda t: t.max(axis=(0, 5)),
    "min": lambda t: t.min(axis=7), "var": lambda t: t.var(axis=2), "logsumexp": lambda t: t.logsumexp(axis=2),
    "repeated_axis": lambda t: t.sum(axis=(0, -2)),
    "softmax": lambda t: F.softmax(t, axis=2), "log_softmax": lambda t: F.log_softmax(t, axis=-3),
    "concatenate": lambda t: tg.concatenate([t, t], axis=2), "stack": lambda t: tg.stack([t, t], axis=3),
    "transpose_not_a_permutation": lambda t: t.transpose(0, 0), "transpose_out_of_range": lambda t: t.transpose(0, 2),
}


@pytest.mark.parametrize("name", list(BAD_AXIS))
def test_bad_axis_is_a_value_error(name):
    with pytest.raises(ValueError, match="ax"):
        BAD_AXIS[name](tg.Tensor(np.ones((2, 3))))


# ----- losses -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [[0, 3], [-1, 0]], ids=["too_large", "negative"])
def test_cross_entropy_target_out_of_range(target):
    with pytest.raises(ValueError, match=r"(?s)cross_entropy.*\[0, 2\]"):
        F.cross_entropy(tg.Tensor(np.zeros((2, 3))), np.array(target))


def test_cross_entropy_target_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"cross_entropy.*\(2,\)"):
        F.cross_entropy(tg.Tensor(np.zeros((2, 3))), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(2, 3\)"):
        F.cross_entropy(tg.Tensor(np.zeros((2, 3))), np.full((2, 2), 0.5))


def test_cross_entropy_needs_two_dimensional_logits():
    with pytest.raises(ValueError, match=r"cross_entropy.*\(N, C\)"):
        F.cross_entropy(tg.Tensor(np.zeros(3)), np.array([0]))


@pytest.mark.parametrize("loss", [F.mse_loss, F.cross_entropy])
def test_unknown_reduction(loss):
    with pytest.raises(ValueError, match="reduction 'avg'"):
        loss(tg.Tensor(np.zeros((2, 2))), np.array([0, 1]) if loss is F.cross_entropy else np.zeros((2, 2)),
             reduction="avg")


def test_clip_without_bounds():
    with pytest.raises(ValueError, match="clip"):
        tg.Tensor([1.0]).clip()


def test_var_with_too_few_elements_for_ddof():
    with pytest.raises(ValueError, match="ddof=1"):
        tg.Tensor([1.0]).var(ddof=1)


LAYERS_WITH_PARAMETERS = {
    "Linear": lambda dtype: tg.nn.Linear(3, 4, dtype=dtype),
    "LayerNorm": lambda dtype: tg.nn.LayerNorm(3, dtype=dtype),
    "BatchNorm1d": lambda dtype: tg.nn.BatchNorm1d(3, dtype=dtype),
    "RNNCell": lambda dtype: tg.nn.RNNCell(3, 4, dtype=dtype),
    "GRUCell": lambda dtype: tg.nn.GRUCell(3, 4, dtype=dtype),
    "LSTMCell": lambda dtype: tg.nn.LSTMCell(3, 4, dtype=dtype),
    r"deep_mlp\(plain, width=3\)": lambda dtype: tg.nn.deep_mlp("plain", 3, 2, dtype=dtype),
    r"deep_mlp\(highway, width=3\)": lambda dtype: tg.nn.deep_mlp("highway", 3, 2, norm="layer", dtype=dtype),
}


@pytest.mark.parametrize("name", list(LAYERS_WITH_PARAMETERS))
@pytest.mark.parametrize("layer_dtype,input_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_input_of_another_float_dtype_than_the_layer_is_a_type_error(name, layer_dtype, input_dtype):
    # as torch: neither a silent float64 result from a float32 layer nor rounding of the input
    layer = LAYERS_WITH_PARAMETERS[name](layer_dtype)
    x = np.ones((2, 3), dtype=input_dtype)
    want = (rf"{name}: input is {np.dtype(input_dtype)} but the parameters are {np.dtype(layer_dtype)}; "
            rf"convert one of them \(e\.g\. x\.astype\(np\.{np.dtype(layer_dtype)}\)")
    for given in (x, tg.Tensor(x)):
        with pytest.raises(TypeError, match=want):
            layer(given)
    out = layer(x.astype(layer_dtype))
    assert (out[0] if isinstance(out, tuple) else out).dtype == layer_dtype


def test_a_cell_state_of_another_dtype_is_a_type_error():
    cell = tg.nn.LSTMCell(3, 4)
    h = np.zeros((2, 4))
    with pytest.raises(TypeError, match=r"LSTMCell: hidden state h is float64 but the parameters are float32"):
        cell(np.ones((2, 3), np.float32), (h, h.astype(np.float32)))
