"""The fused GRU step: forward equals torch's GRUCell equations written in numpy,
backward equals central differences for every input."""
import numpy as np
import pytest
from hypothesis import given, settings
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


# ----- whole-sequence ops: gradcheck in float64, random upstream (gradcheck draws it) ----------
SEQUENCE_OPS = {"rnn_tanh": (ops.RNNSequence, 1), "rnn_relu": (ops.RNNSequence, 1),
                "gru": (ops.GRUSequence, 3), "lstm": (ops.LSTMSequence, 4)}


def sequence_inputs(kind, T, N, D, H, bias, seed):
    rng = np.random.default_rng(seed)
    G = SEQUENCE_OPS[kind][1]
    inputs = [rng.normal(size=(T, N, D)), rng.normal(size=(N, H)) * 0.5]
    if kind == "lstm":
        inputs.append(rng.normal(size=(N, H)) * 0.5)
    inputs += [rng.normal(size=(G * H, D)) * 0.6, rng.normal(size=(G * H, H)) * 0.6]
    if bias:
        inputs += [rng.normal(size=G * H) * 0.3, rng.normal(size=G * H) * 0.3]
    return inputs


def sequence_op(kind, **params):
    op = SEQUENCE_OPS[kind][0]
    if kind.startswith("rnn"):
        params["nonlinearity"] = kind[4:]
    return lambda *t: op.apply(*t, **params)


def relu_margin(inputs, bias):
    """The smallest |pre-activation| of a relu RNN run (gradcheck needs it away from 0)."""
    x, h, w_ih, w_hh = inputs[:4]
    b = inputs[4] + inputs[5] if bias else 0.0
    smallest = np.inf
    for x_t in x:
        pre = x_t @ w_ih.T + h @ w_hh.T + b
        smallest = min(smallest, np.abs(pre).min())
        h = np.maximum(pre, 0)
    return smallest


@pytest.mark.parametrize("kind", list(SEQUENCE_OPS))
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("segments", [None, (0, 2)])
@pytest.mark.parametrize("return_sequence", [True, False])
def test_sequence_op_gradcheck(kind, bias, segments, return_sequence):
    """return_sequence=False: the output is the last step (and c_T), (1 or 2, N, H)."""
    inputs = sequence_inputs(kind, 4, 2, 3, 2, bias, seed=5 + bias)
    if kind == "rnn_relu":
        assert relu_margin(inputs, bias) > 1e-3
    assert tg.gradcheck(sequence_op(kind, segments=segments, return_sequence=return_sequence), inputs)


@given(kind=st.sampled_from(["gru", "lstm", "rnn_tanh"]), t=st.integers(1, 4), n=st.integers(1, 2),
       d=st.integers(1, 2), h=st.integers(1, 3), seed=st.integers(0, 999))
@settings(max_examples=15, deadline=None)
def test_sequence_op_gradcheck_over_sizes(kind, t, n, d, h, seed):
    inputs = sequence_inputs(kind, t, n, d, h, True, seed)
    assert tg.gradcheck(sequence_op(kind), inputs)


@pytest.mark.parametrize("kind", list(SEQUENCE_OPS))
def test_sequence_op_equals_the_step_ops_unrolled(kind):
    """Values and gradients of the one-node op equal the unroll of the per-step ops."""
    inputs = sequence_inputs(kind, 5, 2, 3, 4, True, seed=1)
    g = np.random.default_rng(2).normal(size=(6 if kind == "lstm" else 5, 2, 4))
    results = []
    for fused in (True, False):
        ts = [tg.Tensor(a, requires_grad=True) for a in inputs]
        if fused:
            y = sequence_op(kind)(*ts)
        else:
            x, h, rest = ts[0], ts[1], ts[2:]
            c = None
            if kind == "lstm":
                c, rest = rest[0], rest[1:]
            w_ih, w_hh, b_ih, b_hh = rest
            outs = []
            for t in range(5):
                if kind == "lstm":
                    both = ops.LSTMStep.apply(x[t], h, c, w_ih, w_hh, b_ih, b_hh)
                    h, c = both[0], both[1]
                elif kind == "gru":
                    h = ops.GRUStep.apply(x[t] @ w_ih.transpose() + b_ih, h, w_hh, b_hh)
                else:
                    pre = x[t] @ w_ih.transpose() + b_ih + h @ w_hh.transpose() + b_hh
                    h = pre.tanh() if kind == "rnn_tanh" else pre.relu()
                outs.append(h)
            y = tg.stack(outs + ([c] if kind == "lstm" else []))
        (y * g).sum().backward()
        results.append([y.data] + [t.grad for t in ts])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def grads_after(y, upstream, inputs):
    """the inputs' gradients from y.backward(upstream) alone (.grad cleared first)"""
    for t in inputs:
        t.grad = None
    y.backward(upstream)
    return [t.grad.copy() for t in inputs]


def test_sequence_op_keeps_what_backward_needs_and_no_more():
    """Plain: the output (itself), the gates, c, tanh(c); checkpointed: the state entering each
    segment only. Either way backward works from the node's own saved arrays."""
    inputs = [tg.Tensor(a, requires_grad=True) for a in sequence_inputs("lstm", 30, 2, 3, 4, True, seed=3)]
    plain = ops.LSTMSequence.apply(*inputs)
    saved = plain.node.saved_arrays()
    assert {k: v.shape for k, v in saved.items() if v.ndim == 3} == {
        "h": (30, 2, 4), "gates": (30, 2, 16), "c": (30, 2, 4), "tanh_c": (30, 2, 4), "x": (30, 2, 3)}
    assert saved["h"].base is plain._data   # the output's first T rows, not a copy (.data is a locked view now)
    ck = ops.LSTMSequence.apply(*inputs, segments=(0, 10, 20))
    assert {k: v.shape for k, v in ck.node.saved_arrays().items() if v.ndim == 3} == {
        "h_in": (3, 2, 4), "c_in": (3, 2, 4), "x": (30, 2, 3)}
    np.testing.assert_array_equal(ck.data, plain.data)
    g = np.random.default_rng(0).normal(size=plain.shape)
    for got, want in zip(grads_after(ck, g, inputs), grads_after(plain, g, inputs)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", list(SEQUENCE_OPS))
@pytest.mark.parametrize("segments", [None, (0, 10, 20)])
def test_last_step_op_outputs_it_alone_with_the_gradients_of_the_full_output(kind, segments):
    """return_sequence=False: y = h_{T-1} (1, N, H) (the LSTM [h_{T-1}, c_{T-1}], (2, N, H)), the full
    output's last rows, and gradients bit for bit those of the full output with a zero upstream
    gradient at the other steps. With segments the node keeps nothing of length T but x; without,
    what the full op keeps (h, and the LSTM's gates, c, tanh(c)), but not its output."""
    T, N, H = 30, 2, 4
    inputs = [tg.Tensor(a, requires_grad=True) for a in sequence_inputs(kind, T, N, 3, H, True, seed=6)]
    full = sequence_op(kind, segments=segments)(*inputs)
    last = sequence_op(kind, segments=segments, return_sequence=False)(*inputs)
    rows = [T - 1, T] if kind == "lstm" else [T - 1]
    np.testing.assert_array_equal(last.data, full.data[rows], strict=True)
    saved = {k: v.shape for k, v in last.node.saved_arrays().items() if v.ndim == 3 and v.shape[0] == T}
    if segments is None:
        assert saved == {k: v.shape for k, v in full.node.saved_arrays().items() if v.ndim == 3 and v.shape[0] == T}
        assert not any(np.shares_memory(v, last.data) for v in last.node.saved_arrays().values())
    else:
        assert saved == {"x": (T, N, 3)}
    upstream = np.random.default_rng(1).normal(size=last.shape)
    grad_full = np.zeros(full.shape)
    grad_full[rows] = upstream
    for got, w in zip(grads_after(last, upstream, inputs), grads_after(full, grad_full, inputs)):
        assert got.tobytes() == w.tobytes()


def test_last_step_op_refuses_a_return_sequence_that_is_not_a_bool():
    inputs = sequence_inputs("gru", 3, 2, 3, 2, False, 0)
    for bad in (0, "False", None):
        with pytest.raises(TypeError, match=r"GRUSequence: return_sequence must be True \(every step's output\) "
                                            r"or False \(the last step's only\); got"):
            ops.GRUSequence.apply(*inputs, return_sequence=bad)


def test_sequence_op_backward_twice_with_retain_graph():
    inputs = [tg.Tensor(a, requires_grad=True) for a in sequence_inputs("gru", 6, 2, 3, 4, True, seed=4)]
    y = ops.GRUSequence.apply(*inputs)
    g = np.ones(y.shape)
    y.backward(g, retain_graph=True)
    once = inputs[3].grad.copy()
    y.backward(g)
    np.testing.assert_allclose(inputs[3].grad, 2 * once, rtol=1e-14)


def test_sequence_op_errors_name_the_argument():
    x, h0, w_ih, w_hh = sequence_inputs("gru", 3, 2, 3, 2, False, 0)
    with pytest.raises(ValueError, match=r"gru_sequence_forward: w_ih must have shape \(3H, D\) = \(6, 3\); got \(6, 2\)"):
        ops.GRUSequence.apply(x, h0, w_ih[:, :2], w_hh)
    with pytest.raises(ValueError, match=r"give both biases \(b_ih and b_hh\) or neither"):
        ops.RNNSequence.apply(x, h0, np.ones((2, 3)), np.ones((2, 2)), np.ones(2))
    with pytest.raises(TypeError, match=r"h0 is float32 but x is float64"):
        ops.GRUSequence.apply(x, h0.astype(np.float32), w_ih, w_hh)
