"""tinygrad_vg/ops/linalg.py LinearActStack (F.linear_act_stack): L LinearAct layers as one node.
Gradchecked in float64 against central differences with a random upstream gradient, and
compared bit for bit with the loop of F.linear_act calls it replaces."""
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import functional as F
from tinygrad_vg.gradcheck import gradcheck

ACTIVATIONS = [None, "tanh", "sigmoid", "relu"]


def layers(rng, widths, residual, dtype=np.float64, bias=True):
    """weights (and biases) for consecutive layers widths[0] -> widths[1] -> ..."""
    if residual:
        widths = [widths[0]] * len(widths)
    ws = [(rng.normal(size=(o, i)) / np.sqrt(i)).astype(dtype) for i, o in zip(widths, widths[1:])]
    bs = [rng.normal(size=o).astype(dtype) for o in widths[1:]] if bias else []
    return ws, bs


# relu is checked with biases only: they keep every pre-activation away from the kink at 0
CASES = [(act, shape, bias) for act in ACTIVATIONS
         for shape, bias in [((4, 3), True), ((3,), True), ((2, 2, 3), False)] if act != "relu" or bias]


@pytest.mark.parametrize("activation, x_shape, with_bias", CASES)
@pytest.mark.parametrize("residual", [False, True])
def test_gradcheck(activation, residual, x_shape, with_bias):
    rng = np.random.default_rng(11)
    ws, bs = layers(rng, [3, 4, 2, 3], residual, bias=with_bias)
    x = rng.normal(size=x_shape)
    if activation == "relu":
        x = x * 0.01
        bs = [b + 3 * np.sign(b) for b in bs]
    n = len(ws)

    def fn(x, *params):
        return F.linear_act_stack(x, params[:n], params[n:] if with_bias else None, activation, residual)
    assert gradcheck(fn, [x, *ws, *bs])


@given(depth=st.integers(1, 4), n=st.integers(1, 5), width=st.integers(1, 5),
       activation=st.sampled_from(ACTIVATIONS), residual=st.booleans(), with_bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), x_grad=st.booleans(), seed=st.integers(0, 2**16))
def test_bit_for_bit_the_loop_of_linear_act(depth, n, width, activation, residual, with_bias, dtype,
                                            x_grad, seed):
    """Same output and gradients, to the bit, as one F.linear_act node per layer."""
    rng = np.random.default_rng(seed)
    ws_np, bs_np = layers(rng, [width] * (depth + 1), residual, dtype, with_bias)
    x_np = rng.normal(size=(n, width)).astype(dtype)
    grad_out = rng.normal(size=(n, width)).astype(dtype)
    results = []
    for stacked in (True, False):
        x = tg.Tensor(x_np, requires_grad=x_grad)
        ws = [tg.Tensor(w, requires_grad=True) for w in ws_np]
        bs = [tg.Tensor(b, requires_grad=True) for b in bs_np]
        if stacked:
            y = F.linear_act_stack(x, ws, bs or None, activation, residual)
            assert [node.name for node in tg.tape(y)] == ["LinearActStack"]
        else:
            y = x
            for i, w in enumerate(ws):
                y = F.linear_act(y, w, bs[i] if bs else None, activation, residual=residual)
        y.backward(grad_out)
        assert (x.grad is not None) == x_grad
        results.append([y.data, x.grad] + [t.grad for t in ws + bs])
    for got, want in zip(*results):
        if want is None:
            assert got is None
        else:
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_only_the_gradients_needed_are_computed():
    rng = np.random.default_rng(4)
    ws, bs = layers(rng, [3, 3, 3], residual=False)
    x = tg.Tensor(rng.normal(size=(2, 3)))                          # a constant input
    w0, w1 = tg.Tensor(ws[0]), tg.Tensor(ws[1], requires_grad=True)  # the first layer frozen
    b0, b1 = tg.Tensor(bs[0], requires_grad=True), tg.Tensor(bs[1])
    F.linear_act_stack(x, [w0, w1], [b0, b1], "tanh").sum().backward()
    assert x.grad is None and w0.grad is None and b1.grad is None
    assert w1.grad.shape == (3, 3) and b0.grad.shape == (3,)


def test_backward_frees_each_layer_once_used_unless_the_graph_is_retained():
    rng = np.random.default_rng(5)
    ws, bs = layers(rng, [3, 3, 3, 3], residual=True)
    params = [tg.Tensor(a, requires_grad=True) for a in ws + bs]
    y = F.linear_act_stack(tg.Tensor(rng.normal(size=(2, 3))), params[:3], params[3:], "tanh", True)
    node = y.node
    saved = [weakref.ref(a) for a in node.saved_arrays().values()]
    assert len(saved) == 6   # x_l and f's output for each of 3 layers
    grad = np.ones((2, 3))
    node.backward(grad)      # called directly (as explain.backward_steps does): nothing freed
    assert all(r() is not None for r in saved)
    y.backward(grad, retain_graph=True)
    assert all(r() is not None for r in saved)
    first = [p.grad.copy() for p in params]
    y.backward(grad)         # the engine's last backward through it: freed as it goes
    assert all(r() is None for r in saved)
    for p, g in zip(params, first):
        np.testing.assert_array_equal(p.grad, 2 * g)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(grad)


def test_bad_input_raises():
    x = tg.Tensor(np.ones((2, 3)))
    w3, w4 = tg.Tensor(np.ones((3, 3))), tg.Tensor(np.ones((4, 3)))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        F.linear_act_stack(x, [w3], activation="gelu")
    with pytest.raises(ValueError, match="needs at least one weight"):
        F.linear_act_stack(x, [])
    with pytest.raises(ValueError, match="got 2 weights and 1 biases; pass one bias per weight"):
        F.linear_act_stack(x, [w3, w3], [tg.Tensor(np.ones(3))])
    with pytest.raises(ValueError, match=r"biases\[0\] is None; every layer has a bias or none does"):
        F.linear_act_stack(x, [w3], [None])
    with pytest.raises(ValueError, match=r"layer 1: input of shape \(2, 4\), weight \(4, 3\)"):
        F.linear_act_stack(x, [w4, w4])
    with pytest.raises(ValueError, match=r"layer 0: input of shape \(2, 3\), weight \(4, 3\).*square \(residual\)"):
        F.linear_act_stack(x, [w4], residual=True)
    with pytest.raises(ValueError, match=r"layer 0: .*bias \(4,\)"):
        F.linear_act_stack(x, [w3], [tg.Tensor(np.ones(4))])
    with pytest.raises(TypeError, match="layer 1's weight is float32 and the input is float64"):
        F.linear_act_stack(x, [w3, tg.Tensor(np.ones((3, 3), np.float32))])
    with pytest.raises(TypeError, match="layer 0's bias is float32 and the input is float64"):
        F.linear_act_stack(x, [w3], [tg.Tensor(np.ones(3, np.float32))])
    with pytest.raises(ValueError, match="the input needs at least 1 dimension"):
        F.linear_act_stack(tg.Tensor(np.float64(1.0)), [w3])


def test_without_a_tape_nothing_is_saved_and_tied_weights_still_get_their_summed_gradient():
    rng = np.random.default_rng(8)
    w_np = rng.normal(size=(3, 3)) / 2
    x = tg.Tensor(rng.normal(size=(2, 3)))
    with tg.no_grad():
        y = F.linear_act_stack(x, [tg.Tensor(w_np, requires_grad=True)] * 3, activation="tanh")
    assert y.node is None
    frozen = F.linear_act_stack(x, [tg.Tensor(w_np)] * 3, activation="tanh")   # nothing requires grad
    assert frozen.node is None
    np.testing.assert_array_equal(frozen.data, y.data)
    w, w_loop = tg.Tensor(w_np, requires_grad=True), tg.Tensor(w_np, requires_grad=True)
    F.linear_act_stack(x, [w, w, w], activation="tanh").sum().backward()
    h = x
    for _ in range(3):
        h = F.linear_act(h, w_loop, activation="tanh")
    h.sum().backward()
    np.testing.assert_allclose(w.grad, w_loop.grad, rtol=1e-13, atol=1e-15)   # the same sum, up to rounding


def test_a_backward_stopped_half_way_leaves_a_clear_error_not_a_crash():
    rng = np.random.default_rng(9)
    ws, _ = layers(rng, [3, 3, 3], residual=True, bias=False)
    params = [tg.Tensor(w, requires_grad=True) for w in ws]
    y = F.linear_act_stack(tg.Tensor(rng.normal(size=(2, 3))), params, activation="tanh", residual=True)
    with pytest.raises(FloatingPointError), np.errstate(all="ignore"):
        with tg.detect_anomaly():
            y.backward(np.full((2, 3), np.inf))   # the anomaly check runs after the stack's backward
    assert y.node.saved_arrays() == {}
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward(np.ones((2, 3)))
