"""Gradient checkpointing gives the plain run's gradients bit for bit, stores less,
and the tape frees what it no longer needs as backward goes (no cycles, no leaks)."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_vg as tg
from tinygrad_vg import nn


def saved_bytes(t):
    """Bytes of the distinct arrays the tape under t keeps for backward: saved arrays and
    leaf inputs (a node keeps only an Edge, no data, for an input made by another node)."""
    arrays = {}
    for node in tg.tape(t):
        for a in node.saved_arrays().values():
            arrays[id(a)] = a.nbytes
        for x in node.inputs:
            if x.node is None:
                arrays[id(x.data)] = x.data.nbytes
    return sum(arrays.values())


def grads_of(make, segments, x, loss_fn):
    model = make(segments)
    xt = tg.Tensor(x, requires_grad=True)
    out = model(xt)
    loss = loss_fn(out)
    loss.backward()
    return [p.grad for p in model.parameters()] + [xt.grad], loss.data


def assert_identical(a, b):
    for u, v in zip(a[0], b[0]):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("kind", nn.KINDS)
@given(depth=st.integers(1, 9), segments=st.one_of(st.integers(1, 9), st.just(True)), seed=st.integers(0, 99))
def test_deep_mlp_checkpointed_gradients_are_bit_identical(kind, depth, segments, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    make = lambda s: nn.deep_mlp(kind, 5, depth, "tanh", init="standard", dtype=np.float64, rng=seed,
                                 checkpoint_segments=s)
    loss = lambda out: tg.functional.mse_loss(out, y)
    assert_identical(grads_of(make, None, x, loss), grads_of(make, segments, x, loss))


@pytest.mark.parametrize("cls", [nn.RNN, nn.GRU, nn.LSTM])
@given(steps=st.integers(1, 12), layers=st.integers(1, 2), segments=st.one_of(st.integers(1, 12), st.just(True)),
       seed=st.integers(0, 99))
def test_sequence_checkpointed_gradients_are_bit_identical(cls, steps, layers, segments, seed):
    x = np.random.default_rng(seed).normal(size=(steps, 2, 3))
    make = lambda s: cls(3, 4, num_layers=layers, dtype=np.float64, rng=seed, checkpoint_segments=s)

    def loss(result):
        out, state = result
        h_n = state[0] if isinstance(state, tuple) else state
        return (out * out).sum() + (h_n * np.arange(4.0)).sum()
    assert_identical(grads_of(make, None, x, loss), grads_of(make, segments, x, loss))


def test_checkpoint_function_matches_plain_and_keeps_only_inputs():
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.normal(size=(6, 6)), requires_grad=True)

    def fn(h):
        for _ in range(20):
            h = (h @ w).tanh()
        return h

    x = rng.normal(size=(4, 6))
    plain_x = tg.Tensor(x, requires_grad=True)
    plain = fn(plain_x)
    stored_plain = saved_bytes(plain)
    plain.sum().backward()
    plain_w = w.grad
    w.grad = None
    ck_x = tg.Tensor(x, requires_grad=True)
    ck = tg.checkpoint(fn, ck_x, params=[w])
    np.testing.assert_array_equal(ck.data, plain.data)
    assert [n.name for n in tg.tape(ck)] == ["Checkpoint"]
    params = w.data.nbytes   # kept by both
    assert saved_bytes(ck) - params < (stored_plain - params) / 10
    ck.sum().backward()
    np.testing.assert_array_equal(w.grad, plain_w)
    np.testing.assert_array_equal(ck_x.grad, plain_x.grad)


def test_checkpoint_with_data_input_still_trains_its_params():
    lin = nn.Linear(3, 2, dtype=np.float64, rng=0)
    out = tg.checkpoint(lin, tg.Tensor(np.ones((4, 3))))      # a Module: its parameters by default
    out.sum().backward()
    np.testing.assert_allclose(lin.weight.grad, np.full((2, 3), 4.0))


def test_checkpoint_retain_graph_and_no_grad():
    w = tg.Tensor(np.array([2.0]), requires_grad=True)
    y = tg.checkpoint(lambda h: h * w * w, tg.Tensor(np.array([3.0]), requires_grad=True))
    y.backward(np.ones(1), retain_graph=True)
    y.backward(np.ones(1))
    np.testing.assert_array_equal(w.grad, [24.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward(np.ones(1))
    with tg.no_grad():
        z = tg.checkpoint(lambda h: h * w, tg.Tensor(np.array([3.0])))
    assert z.node is None


def test_checkpoint_bad_input():
    with pytest.raises(TypeError, match="fn must be callable"):
        tg.checkpoint(3, tg.Tensor(np.ones(2)))
    with pytest.raises(TypeError, match="fn must return one Tensor, got tuple"):
        tg.checkpoint(lambda h: (h, h), tg.Tensor(np.ones(2), requires_grad=True))
    with pytest.raises(ValueError, match="checkpoint_segments must be None, True or a positive int; got 0"):
        nn.deep_mlp("plain", 3, 3, checkpoint_segments=0)
    with pytest.raises(ValueError, match="checkpoint_segments"):
        nn.LSTM(2, 3, checkpoint_segments=-2)


def test_lstm_checkpointing_stores_far_less():
    # what stays is the output sequence itself (asked for) and one state per segment
    x = tg.Tensor(np.random.default_rng(0).normal(size=(400, 4, 8)))
    plain, _ = nn.LSTM(8, 16, dtype=np.float64, rng=0)(x)
    ck, _ = nn.LSTM(8, 16, dtype=np.float64, rng=0, checkpoint_segments=True)(x)
    assert saved_bytes(ck) < saved_bytes(plain) / 3


def test_checkpointed_lstm_keeps_neither_its_output_sequence_nor_its_segment_outputs():
    # loss on the last step only: once the caller drops the output sequence, the tape keeps
    # neither it nor the segments' outputs, only the state entering each segment
    x = np.random.default_rng(0).normal(size=(400, 4, 3))
    results = {}
    for segments in (None, True):
        model = nn.LSTM(3, 32, dtype=np.float64, rng=0, checkpoint_segments=segments)
        xt = tg.Tensor(x)
        tracemalloc.start()
        out, _ = model(xt)
        sequence = out.data.nbytes
        loss = out[-1].sum()
        del out
        results[segments] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        loss.backward()
    assert results[True] < sequence / 2 < results[None] / 4


def test_a_checkpoint_saves_a_copy_of_a_view_input_not_the_whole_array_it_views():
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.normal(size=(8, 8)) / 3, requires_grad=True)

    def segment(h):   # 50 steps, returned stacked, as an RNN segment returns its outputs
        steps = []
        for _ in range(50):
            h = (h @ w).tanh()
            steps.append(h)
        return tg.stack(steps)

    def run(ck):
        w.grad = None
        h, outputs = tg.Tensor(np.ones((4, 8))), []
        for _ in range(10):
            out = tg.checkpoint(segment, h, params=[w]) if ck else segment(h)
            h = out[-1]   # the next segment's input: a view into this segment's output
            outputs.append(weakref.ref(out.data))
        loss = h.sum()
        del h, out
        if ck:   # the next checkpoint node saved a copy of the (4, 8) view, not the (50, 4, 8) array
            assert all(r() is None for r in outputs)
        loss.backward()
        return w.grad

    np.testing.assert_array_equal(run(ck=True), run(ck=False))


def test_intermediates_die_during_backward_not_after():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    early = x * 2.0
    h = early
    later = []
    for _ in range(5):
        h = h.tanh()
        later.append(weakref.ref(h))
    loss = h.sum()
    alive_when_early_node_runs = []
    early.register_hook(lambda g: alive_when_early_node_runs.append([r() is not None for r in later]))
    del h
    loss.backward()
    assert alive_when_early_node_runs == [[False] * 5]   # all later tensors were already freed
    assert x.grad is not None


def test_no_reference_cycles_memory_returns_to_baseline():
    model = nn.deep_mlp("residual", 8, 10, dtype=np.float64, rng=0)
    opt = tg.optim.SGD(list(model.parameters()), lr=0.01)
    x, y = np.ones((4, 8)), np.zeros((4, 8))

    def step():
        opt.zero_grad()
        tg.functional.mse_loss(model(tg.Tensor(x)), y).backward()
        opt.step()

    step()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        for _ in range(50):
            step()
        after = len(gc.get_objects())
    finally:
        gc.enable()
    assert after - before < 50     # nothing per step survives without the cycle collector


def test_retain_grad_is_opt_in():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    a = x * 3.0
    b = a * 2.0
    b.retain_grad()
    b.sum().backward()
    assert a.grad is None
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_nested_checkpoints_match_the_plain_run():
    w = tg.Tensor(np.array([0.5, -1.5]), requires_grad=True)
    fn_inner = lambda b: (b * w).tanh()                          # noqa: E731
    fn_outer = lambda a: tg.checkpoint(fn_inner, a, params=[w]) * 2.0   # noqa: E731
    x_plain = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (fn_inner(x_plain) * 2.0).sum().backward()
    plain = (x_plain.grad, w.grad)
    w.grad = None
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    tg.checkpoint(fn_outer, x, params=[w]).sum().backward()
    np.testing.assert_array_equal(x.grad, plain[0])
    np.testing.assert_array_equal(w.grad, plain[1])


def test_checkpointed_identity_and_parameter_pass_gradients_through():
    x = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (tg.checkpoint(lambda a: a, x) * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    w = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (tg.checkpoint(lambda a: w, tg.Tensor(np.zeros(2)), params=[w]) * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0])


def test_checkpoint_using_an_outside_intermediate_is_a_clear_error():
    w = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w2 = w * 2.0
    x = tg.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    loss = tg.checkpoint(lambda a: a * w2, x).sum() + w2.sum()
    with pytest.raises(RuntimeError, match="uses a tensor made outside it .* pass it to checkpoint"):
        loss.backward()
