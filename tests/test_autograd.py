"""tinygrad_vg/autograd.py: the tape, backward, grad mode, hooks, anomaly mode."""
import threading
import weakref

import numpy as np
import pytest

import tinygrad_vg as tg


def leaf(values, dtype=np.float64):
    return tg.Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----- the tape ------------------------------------------------------------------------
def test_tape_lists_the_nodes_in_execution_order():
    x, w = leaf([1.0, 2.0]), leaf([0.5, -0.5])
    a = x.exp()            # recorded first
    b = w.tanh()           # second, on another branch
    loss = (a * b + x).sum()
    nodes = tg.tape(loss)
    assert [node.name for node in nodes] == ["Exp", "Tanh", "Mul", "Add", "Sum"]
    assert [node.seq for node in nodes] == sorted(node.seq for node in nodes)


def test_tape_of_a_leaf_is_empty_and_constants_are_not_recorded():
    x = leaf([1.0])
    assert tg.tape(x) == []
    constant = tg.Tensor([1.0, 2.0])
    assert tg.tape(constant * 2.0) == []
    assert [n.name for n in tg.tape(x * constant)] == ["Mul"]


def test_a_shared_subexpression_appears_once_on_the_tape():
    x = leaf([1.0, 2.0])
    h = x.tanh()
    loss = (h * h + h).sum()
    assert [node.name for node in tg.tape(loss)] == ["Tanh", "Mul", "Add", "Sum"]


# ----- retain_graph and the freed graph ----------------------------------------------------------
def test_retain_graph_allows_a_second_backward_that_doubles_the_gradients():
    x = leaf([1.0, -2.0, 3.0])
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    np.testing.assert_array_equal(first, 2 * x.data)
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * first)


def test_second_backward_through_a_freed_graph_raises_and_mentions_retain_graph():
    x = leaf([1.0, 2.0])
    loss = (x.exp() * 3.0).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        loss.backward()


def test_backward_through_a_partly_freed_graph_raises():
    x = leaf([1.0, 2.0])
    h = x.tanh()
    h.sum().backward()                    # frees the Tanh node
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2.0).sum().backward()


# ----- grad mode ---------------------------------------------------------------------------------
def test_no_grad_as_context_manager_records_nothing_and_restores_the_mode():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.node is None
    np.testing.assert_array_equal(y.data, [2.0, 4.0])


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with tg.no_grad():
            1 / 0
    assert tg.is_grad_enabled()


def test_no_grad_as_decorator():
    @tg.no_grad()
    def double(t):
        assert not tg.is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    assert not double(x).requires_grad
    assert tg.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_enable_grad_inside_no_grad():
    x = leaf([1.0, 2.0])
    with tg.no_grad():
        with tg.enable_grad():
            y = x * 3.0
        z = x * 3.0
        assert not tg.is_grad_enabled()
    assert y.requires_grad and not z.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_no_grad_is_per_thread():
    x = leaf([1.0, 2.0])
    inside_no_grad, main_done = threading.Event(), threading.Event()
    seen_in_thread = {}

    def worker():
        with tg.no_grad():
            inside_no_grad.set()
            main_done.wait(timeout=10)
            seen_in_thread["requires_grad"] = (x * 2.0).requires_grad

    thread = threading.Thread(target=worker)
    thread.start()
    assert inside_no_grad.wait(timeout=10)
    # the other thread sits inside no_grad right now; this thread still records
    assert tg.is_grad_enabled()
    assert (x * 2.0).requires_grad
    main_done.set()
    thread.join(timeout=10)
    assert seen_in_thread == {"requires_grad": False}


def test_a_new_thread_records_even_when_the_main_thread_is_in_no_grad():
    x = leaf([1.0])
    seen = {}
    with tg.no_grad():
        thread = threading.Thread(target=lambda: seen.update(requires_grad=(x * 2.0).requires_grad))
        thread.start()
        thread.join(timeout=10)
    assert seen == {"requires_grad": True}


# ----- detach ---------------------------------------------------------------------------------------
def test_detach_cuts_the_graph_and_shares_the_data():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    d = h.detach()
    assert d.node is None and not d.requires_grad and d.is_leaf
    assert np.shares_memory(d.data, h.data)
    (d * x).sum().backward()      # d is a constant: dL/dx = d, nothing flows through h
    np.testing.assert_array_equal(x.grad, [2.0, 4.0, 6.0])


# ----- hooks and retain_grad ----------------------------------------------------------------------------
def test_hook_on_a_leaf_sees_and_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.copy()))
    x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [30.0, 30.0])


def test_hook_on_an_intermediate_replaces_the_gradient_flowing_upstream():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    seen = []

    def hook(grad):
        seen.append(grad.copy())
        return grad * 0.5

    h.register_hook(hook)
    (h * h).sum().backward()
    np.testing.assert_array_equal(seen[0], 2 * h.data)                # dL/dh
    np.testing.assert_array_equal(x.grad, 2.0 * 0.5 * 2 * h.data)     # scaled by the hook


def test_removed_hook_is_not_called():
    x = leaf([1.0])
    calls = []
    handle = x.register_hook(lambda g: calls.append(1))
    handle.remove()
    handle.remove()          # removing twice is harmless
    (x * 2.0).sum().backward()
    assert calls == []
    np.testing.assert_array_equal(x.grad, [2.0])


def test_retain_grad_keeps_the_gradient_of_an_intermediate():
    x = leaf([1.0, -2.0])
    kept, dropped = x * 3.0, x * 4.0
    kept.retain_grad()
    (kept * kept + dropped).sum().backward()
    np.testing.assert_array_equal(kept.grad, 2 * kept.data)
    assert dropped.grad is None


# ----- accumulation and aliasing ---------------------------------------------------------------------------
def test_gradients_accumulate_across_backward_calls_on_separate_graphs():
    x = leaf([1.0, 2.0])
    (x * 2.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0 + 2.0, 2.0 + 4.0])


def test_using_a_tensor_twice_sums_both_contributions():
    x = leaf([1.0, 2.0])
    (x + x).backward(np.array([3.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [6.0, 10.0])


def test_gradients_of_different_leaves_never_alias():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    grad_out = np.array([1.0, 1.0])
    (a + b).backward(grad_out)
    assert a.grad is not b.grad
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, grad_out) and not np.shares_memory(b.grad, grad_out)
    a.grad[0] = 100.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    np.testing.assert_array_equal(grad_out, [1.0, 1.0])


def test_backward_on_a_leaf_copies_the_given_gradient():
    x = leaf([1.0, 2.0])
    grad = np.array([7.0, 8.0])
    x.backward(grad)
    assert not np.shares_memory(x.grad, grad)
    np.testing.assert_array_equal(x.grad, grad)


# every op, run forward and backward; no input array (nor the upstream gradient) may change
F = tg.functional
MUTATION_CASES = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
    "pow": lambda a, b: (a * a + 1.0) ** b,
    "exp_log_sqrt_abs": lambda a, b: (a.exp() + b.abs()).log() + (a * a + 1.0).sqrt(),
    "tanh_sigmoid_relu": lambda a, b: a.tanh() + b.sigmoid() + a.relu(),
    "gelu_elu_leaky_softplus": lambda a, b: F.gelu(a) + F.elu(b) + F.leaky_relu(a) + F.softplus(b),
    "clip": lambda a, b: a.clip(-0.5, 0.5) + b,
    "sum_mean_max_min": lambda a, b: a.sum(axis=0) + b.mean(axis=0) + a.max(axis=0) + b.min(axis=0),
    "var_logsumexp": lambda a, b: a.var(axis=0) + b.logsumexp(axis=0),
    "matmul": lambda a, b: a @ b.T,
    "reshape_getitem_transpose": lambda a, b: a.reshape(-1)[::-1].reshape(a.shape).T.T + b[[0, 0]],
    "concatenate_stack": lambda a, b: tg.concatenate([a, b], axis=1) + tg.stack([a, b], axis=-1).sum(),
    "where": lambda a, b: tg.where(a.data > 0, a, b),
    "softmax_log_softmax": lambda a, b: F.log_softmax(a) + F.softmax(b, axis=0),
    "mse_cross_entropy": lambda a, b: F.mse_loss(a, b) + F.cross_entropy(a, F.softmax(b)),
}


@pytest.mark.parametrize("name", list(MUTATION_CASES))
def test_forward_and_backward_never_mutate_their_inputs(name):
    rng = np.random.default_rng(15)
    a_np, b_np = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    a_copy, b_copy = a_np.copy(), b_np.copy()
    a, b = tg.Tensor(a_np, requires_grad=True), tg.Tensor(b_np, requires_grad=True)
    out = MUTATION_CASES[name](a, b)
    grad_out = rng.normal(size=out.shape)
    grad_copy = grad_out.copy()
    out.backward(grad_out)
    np.testing.assert_array_equal(a_np, a_copy)
    np.testing.assert_array_equal(b_np, b_copy)
    np.testing.assert_array_equal(grad_out, grad_copy)
    assert a.grad is not None and b.grad is not None


@pytest.mark.parametrize("name", list(MUTATION_CASES))
def test_an_op_that_declares_what_it_saves_names_every_array_it_keeps(name):
    # `saves` decides what is locked against in-place changes (locking.py): an array missing
    # from it could be changed before backward without an error
    rng = np.random.default_rng(16)
    a = tg.Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    b = tg.Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    for node in tg.tape(MUTATION_CASES[name](a, b)):
        if type(node).saves is not None:
            kept = {k for k, v in vars(node).items() if isinstance(v, np.ndarray)}
            assert kept <= set(node.saves), f"{node.name} keeps {sorted(kept - set(node.saves))} not in saves"


# ----- what a node keeps of its inputs ---------------------------------------------------------------
def test_a_node_keeps_leaves_as_tensors_and_an_edge_without_data_for_the_others():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    y = h + x
    edge, kept = y.node.inputs
    assert kept is x                                   # a leaf: its gradient accumulates there
    assert isinstance(edge, tg.autograd.Edge) and edge.node is h.node
    assert (edge.shape, edge.dtype, edge.requires_grad) == ((3,), np.float64, True)
    assert not hasattr(edge, "data")


def test_an_intermediate_no_backward_needs_is_freed_right_after_the_forward():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    freed = weakref.ref(h.data)
    y = h + 1.0        # Add saves nothing for backward
    z = y.sum()        # nor does Sum
    del h, y
    assert freed() is None          # before backward: reference counting alone frees it
    z.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_an_intermediate_an_op_saved_stays_alive_until_backward_used_it():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    kept = weakref.ref(h.data)
    z = (h * h).sum()  # Mul saves both factors: backward needs them
    del h
    assert kept() is not None
    z.backward()
    np.testing.assert_array_equal(x.grad, 8 * x.data)
    assert kept() is None           # released with the Mul node


def test_a_stacked_sequence_of_which_the_loss_reads_one_step_is_freed_before_backward():
    rng = np.random.default_rng(0)
    w, x = leaf(rng.normal(size=(4, 4)) / 2), rng.normal(size=(50, 3, 4))

    def run(drop):
        w.grad = None
        h, steps = tg.Tensor(np.zeros((3, 4))), []
        for t in range(len(x)):
            h = (h @ w + x[t]).tanh()
            steps.append(h)
        out = tg.stack(steps)
        del steps, h
        loss = out[-1].sum()   # like model(x)[0][-1].sum() for an RNN
        if drop:
            array, tensor = weakref.ref(out.data), weakref.ref(out)
            del out
            assert array() is None and tensor() is None   # Stack and GetItem kept only edges
        loss.backward()
        return w.grad

    np.testing.assert_array_equal(run(drop=True), run(drop=False))


# ----- a long chain -----------------------------------------------------------------------------------
def test_backward_through_a_100000_node_chain_needs_no_recursion():
    x = leaf([1.0, 2.0])
    h = x
    for _ in range(100_000):   # an even number of negations: h == x, dh/dx = identity
        h = -h
    assert len(tg.tape(h)) == 100_000
    h.backward(np.array([3.0, -5.0]))
    np.testing.assert_array_equal(x.grad, [3.0, -5.0])


# ----- anomaly mode --------------------------------------------------------------------------------------
def test_detect_anomaly_names_the_op_whose_forward_made_nan():
    x = leaf([1.0, -1.0])
    with np.errstate(all="ignore"), tg.detect_anomaly():
        y = x * 2.0
        with pytest.raises(FloatingPointError, match="Log"):
            y.log()


def test_detect_anomaly_names_the_op_whose_backward_made_inf():
    x = leaf([0.0, 4.0])
    with np.errstate(all="ignore"), tg.detect_anomaly():
        loss = (x.sqrt() * 2.0).sum()       # forward is finite: sqrt(0) = 0
        with pytest.raises(FloatingPointError, match="Sqrt"):
            loss.backward()


def test_without_detect_anomaly_nan_passes_silently():
    x = leaf([-1.0])
    with np.errstate(all="ignore"):
        y = x.log()
    assert np.isnan(y.data).all()
    with tg.detect_anomaly():
        pass
    with np.errstate(all="ignore"):
        x.sqrt().sum().backward()       # the anomaly mode was switched off again on exit
    assert np.isnan(x.grad).all()


def test_hooks_get_a_read_only_gradient_and_the_seed_is_not_aliased():
    x = tg.Tensor(np.ones(2), requires_grad=True)
    z = tg.Tensor(np.ones(2), requires_grad=True)
    b = z * 1.0
    b.register_hook(lambda g: g * 10)          # replacing works
    (x * 1.0 + b).backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    np.testing.assert_array_equal(z.grad, [10.0, 10.0])
    c = z * 1.0
    c.register_hook(lambda g: g.__imul__(10))  # editing in place would change other gradients
    with pytest.raises(ValueError, match="read-only"):
        (c + 0.0).backward(np.ones(2))
    seed = np.ones(2)
    y = x * 1.0
    y.register_hook(lambda g: g * 5)
    y.backward(seed)
    np.testing.assert_array_equal(seed, [1.0, 1.0])


class _ReturnsSaved(tg.Function):
    """A custom op whose backward hands out an array it also keeps (as user ops may)."""

    def forward(self, x):
        self.kept = np.full(x.shape, 2.0)
        return x * 2.0

    def backward(self, grad_out):
        return (self.kept,)


def test_a_fresh_gradient_nobody_else_holds_becomes_the_leaf_grad_without_a_copy():
    # the op's freshly computed weight gradient is kept as .grad, not copied (what saves a
    # copy of every weight per step); seen through a weakref, which does not hold the array
    made = []
    original = tg.ops.Linear.backward

    def spy(self, grad_out):
        grads = original(self, grad_out)
        made.extend(weakref.ref(g) for g in grads[1:])
        return grads

    w, bias = leaf(np.ones((3, 2))), leaf(np.ones(3))
    tg.ops.Linear.backward = spy
    try:
        F.linear(tg.Tensor(np.ones((4, 2))), w, bias).backward(np.ones((4, 3)))
    finally:
        tg.ops.Linear.backward = original
    assert w.grad is made[0]() and bias.grad is made[1]()
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 4.0))


def test_a_gradient_array_someone_else_holds_is_copied_into_the_leaf():
    x = leaf([1.0, 2.0])
    y = _ReturnsSaved.apply(x)
    y.backward(np.ones(2), retain_graph=True)   # the node still holds the array it returned
    x.grad *= 50.0                              # e.g. clip_grad_norm_, in place
    x.grad = None
    y.backward(np.ones(2))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    kept_by_hook = []
    z = leaf([1.0, 2.0])
    replacement = np.array([5.0, 6.0])
    z.register_hook(lambda g: replacement)          # the caller still holds what the hook returns
    (z * 1.0).backward(np.ones(2))
    assert not np.shares_memory(z.grad, replacement)
    z.grad[0] = 0.0
    np.testing.assert_array_equal(replacement, [5.0, 6.0])
    w = leaf([1.0, 2.0])
    w.register_hook(lambda g: kept_by_hook.append(g))   # a hook keeps a (read-only) view
    (w * 3.0).backward(np.ones(2))
    assert not np.shares_memory(w.grad, kept_by_hook[0])


def test_one_gradient_array_handed_to_several_leaves_and_the_seed_are_never_shared():
    # Add returns its upstream gradient, the seed itself, for both inputs: one of them may
    # keep the array, the other must get a copy; in-place edits of one never reach the other
    a, b, c = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([5.0, 6.0])
    (a + b + c).backward(np.array([1.0, 1.0]))
    arrays = [a.grad, b.grad, c.grad]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.shares_memory(arrays[i], arrays[j])
    a.grad += 1.0
    b.grad *= 3.0
    np.testing.assert_array_equal(c.grad, [1.0, 1.0])
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])


def test_without_reference_counts_every_leaf_gradient_is_a_copy(monkeypatch):
    # another Python (no sys.getrefcount) or a count that cannot be trusted: _calibrate says 0
    # and backward copies, as it did before gradients could be kept without a copy
    import sys
    from tinygrad_vg import ownership
    monkeypatch.delattr(sys, "getrefcount")
    monkeypatch.setattr(ownership, "PRIVATE", ownership._calibrate())
    assert ownership.PRIVATE == 0
    made = []
    original = tg.ops.Linear.backward

    def spy(self, grad_out):
        grads = original(self, grad_out)
        made.extend(weakref.ref(g) for g in grads[1:] if g is not None)
        return grads

    w = leaf(np.ones((3, 2)))
    monkeypatch.setattr(tg.ops.Linear, "backward", spy)
    F.linear(tg.Tensor(np.ones((4, 2))), w).backward(np.ones((4, 3)))
    assert made[0]() is None or w.grad is not made[0]()
    np.testing.assert_array_equal(w.grad, np.full((3, 2), 4.0))


# ----- post-accumulate-grad hooks (torch's Tensor.register_post_accumulate_grad_hook) ------------
def test_a_post_accumulate_hook_sees_the_complete_gradient_once_per_backward():
    w = leaf([1.0, 2.0])
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append((t is w, t.grad.copy())))
    x = w * 2.0
    (x * w + w).sum().backward()      # three uses of w, one call with their sum
    assert len(seen) == 1 and seen[0][0]
    np.testing.assert_array_equal(seen[0][1], 4 * w.data + 1)
    (w * 1.0).sum().backward()        # accumulates: the hook sees .grad after the addition
    np.testing.assert_array_equal(seen[1][1], 4 * w.data + 2)
    w.sum().backward()                # the root itself is the leaf
    assert len(seen) == 3
    handle.remove()
    w.sum().backward()
    assert len(seen) == 3


def test_a_post_accumulate_hook_runs_as_soon_as_the_leafs_last_use_is_done():
    # w2 is used only by the last layer: its hook runs before backward reaches the first layer
    w1, w2 = leaf(np.eye(2)), leaf(np.eye(2))
    events = []
    h = F.tanh(tg.Tensor(np.ones((1, 2))) @ w1)
    h.register_hook(lambda g: events.append("h"))
    w1.register_post_accumulate_grad_hook(lambda t: events.append("w1"))
    w2.register_post_accumulate_grad_hook(lambda t: events.append("w2"))
    (h @ w2).sum().backward()
    assert events == ["w2", "h", "w1"]


def test_post_accumulate_hooks_with_a_checkpoint_run_at_the_end_with_the_full_gradient():
    w = leaf([0.5, -1.0])
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.copy()))
    y = tg.checkpoint(lambda x: F.tanh(x * w), w * 3.0, params=[w])   # w inside and outside
    y.sum().backward()
    want = leaf([0.5, -1.0])
    F.tanh((want * 3.0) * want).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], want.grad, rtol=1e-12)


def test_gradients_delivered_early_to_several_leaves_never_share_memory():
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    for t in (a, b):
        t.register_post_accumulate_grad_hook(lambda t: None)
    (a + b).backward(np.ones(2))   # Add hands one array to both
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 1.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_post_accumulate_hooks_only_on_leaves_that_require_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="only be registered on leaf tensors.*made by Mul"):
        (x * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.Tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="needs a callable, got int"):
        x.register_post_accumulate_grad_hook(3)


def test_a_post_accumulate_hook_may_remove_itself_and_must_return_none():
    w = leaf([1.0])
    calls = []
    handles = []
    handles.append(w.register_post_accumulate_grad_hook(lambda t: (calls.append(1), handles[0].remove())[0]))
    w.register_post_accumulate_grad_hook(lambda t: calls.append(2))
    (w * 2.0).sum().backward()
    assert calls == [1, 2]             # the second hook still runs
    w.register_post_accumulate_grad_hook(lambda t: t.grad)
    with pytest.raises(RuntimeError, match="must return None.*returned a ndarray"):
        (w * 2.0).sum().backward()
