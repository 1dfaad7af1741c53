"""No silently wrong gradient: the cases of the engine core v2 issue, each as a user hits it.

tinygrad_vg/locking.py (in-place changes to saved arrays), hooks.py and autograd._checked
(what user code hands the engine), checkpoint.py (random state, nesting), and the ops'
corner cases (0 ** 0, empty reductions and losses).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import locking, nn, optim


def leaf(values, dtype=np.float64, name=None):
    return tg.Tensor(np.array(values, dtype=dtype), requires_grad=True, name=name)


# ----- in-place changes to what backward needs ------------------------------------------------------
def test_scaling_a_saved_input_in_place_is_refused():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -4.0], name="w")
    loss = (x * w).sum()
    with pytest.raises(tg.LockedError, match=r"writing into the .data of tensor 'w' would change in place an "
                       r"array that the Mul node #\d+ saved for backward.*Call backward\(\) first"):
        w.data *= 10
    loss.backward()
    np.testing.assert_array_equal(x.grad, [3.0, -4.0])   # the true gradient, w as it was


def test_overwriting_a_saved_output_is_refused():
    x = leaf([0.5, -1.0])
    y = x.tanh()
    with pytest.raises(tg.LockedError, match=r"tensor of shape \(2,\) would change in place an array that "
                       r"the Tanh node #\d+ saved"):
        y.data[:] = 0
    with pytest.raises(ValueError, match="read-only"):
        np.copyto(y.data, 0.0)   # numpy's own functions: numpy's error, still refused
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 1 - np.tanh([0.5, -1.0]) ** 2)


def test_writing_through_the_array_a_tensor_shares_is_refused():
    a = np.array([1.0, 2.0])
    w = tg.Tensor(a)          # Tensor(array) shares memory
    x = leaf([5.0, 6.0])
    loss = (x * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 100.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


def test_writing_into_the_base_of_a_saved_view_is_refused():
    x, w = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0])
    loss = (x[0:2] * w).sum()    # Mul saves a view of x.data
    with pytest.raises(tg.LockedError, match="the Mul node"):
        x.data[0] = 7.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0])


def test_an_optimizer_step_between_forward_and_backward_is_refused_naming_the_parameter_and_op():
    model = nn.Linear(3, 2, dtype=np.float64, rng=0)
    model.weight.name = "fc.weight"
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = tg.Tensor(np.ones((4, 3))), tg.Tensor(np.zeros((4, 2)))
    tg.functional.mse_loss(model(x), y).backward()   # grads from a first step
    opt.step()
    loss = tg.functional.mse_loss(model(x), y)
    before = model.weight.data.copy()
    with pytest.raises(locking.LockedError, match=r"SGD.step\(\) on parameter 'fc.weight' would change in "
                       r"place an array that the Linear node #\d+ saved for backward.*Call backward\(\) first"):
        opt.step()
    np.testing.assert_array_equal(model.weight.data, before)   # nothing was updated
    opt.zero_grad()
    loss.backward()
    opt.step()   # after backward the step is allowed again


def test_adam_step_before_backward_is_refused_too():
    p = nn.Parameter(np.ones(3))
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(3)
    loss = (p * p).sum()
    with pytest.raises(locking.LockedError, match=r"Adam.step\(\) on parameter 0"):
        opt.step()
    assert opt.state == {}
    del loss
    opt.step()


def test_a_graph_dropped_without_backward_unlocks_what_it_held():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    loss = (x * w).tanh().sum()
    assert not w.data.flags.writeable
    del loss
    assert w.data.flags.writeable and x.data.flags.writeable
    w.data *= 10   # allowed now
    assert not locking.held


def test_backward_unlocks_and_retain_graph_keeps_the_lock_until_the_graph_is_dropped():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    loss = (x * w).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(tg.LockedError):
        w.data[0] = 0.0
    loss.backward()
    w.data[0] = 0.0
    assert not locking.held


def test_an_array_saved_by_two_nodes_stays_locked_until_both_are_released():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    first, second = (x * w).sum(), (w * w).sum()
    first.backward()
    with pytest.raises(tg.LockedError):
        w.data[0] = 0.0
    second.backward()
    w.data[0] = 0.0


def test_arrays_that_were_read_only_stay_read_only():
    a = np.broadcast_to(np.array([1.0, 2.0]), (2, 2))   # read-only view from numpy
    x = leaf(np.ones((2, 2)))
    (x * a).sum().backward()
    assert not a.flags.writeable and not locking.held


def test_tensor_copies_and_Tensor_shares():
    a = np.array([1.0, 2.0])
    x = tg.tensor(a, requires_grad=True)
    a[0] = 100.0
    np.testing.assert_array_equal(x.data, [1.0, 2.0])
    assert np.shares_memory(tg.Tensor(a).data, a)
    y = tg.tensor(x)
    assert not np.shares_memory(y.data, x.data) and not y.requires_grad


def test_a_view_taken_before_the_lock_is_refused_too():
    x, w = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    head = x[0:2]                 # a view of x's array, made before anything saved x
    loss = (x * w).sum()
    with pytest.raises(tg.LockedError):
        head.data[0] = 100.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])


def test_what_data_returns_while_locked_reads_like_an_array():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    loss = (x * w).sum()
    d = w.data
    assert isinstance(d, np.ndarray) and not d.flags.writeable
    total = d * 2 + 1                       # arithmetic gives plain, writeable arrays
    assert type(total) is np.ndarray and total.flags.writeable
    np.testing.assert_array_equal(total, [7.0, 9.0])
    assert type(np.asarray(w)) is np.ndarray and float(d.sum()) == 7.0
    loss.backward()
    assert type(w.data) is np.ndarray and w.data.flags.writeable


# ----- what user code hands the engine -------------------------------------------------------------
def test_a_hook_that_changes_the_shape_is_refused_naming_it():
    x = leaf(np.ones((2, 3)), name="x")

    def shrink(grad):
        return grad[0]

    x.register_hook(shrink)
    with pytest.raises(RuntimeError, match=r"hook .*shrink.* on x returned an array of shape \(3,\).*"
                       r"gradient's shape \(2, 3\)"):
        (x * 2.0).sum().backward()
    assert x.grad is None


def test_a_hook_on_an_intermediate_that_grows_the_gradient_is_refused():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2.0
    h.register_hook(lambda g: np.ones((4, 3)))
    with pytest.raises(RuntimeError, match=r"on the output of Mul #\d+ returned an array of shape \(4, 3\)"):
        h.sum().backward()


def test_a_hook_that_changes_the_dtype_is_refused():
    x = leaf([1.0, 2.0], dtype=np.float32)
    x.register_hook(lambda g: g.astype(np.float64))
    with pytest.raises(RuntimeError, match="dtype float64.*dtype float32"):
        (x * 2.0).sum().backward()


def test_a_hook_on_a_zero_dimensional_tensor_works():
    x = leaf(3.0)
    y = x * x
    y.register_hook(lambda g: g * 2.0)
    (y * 3.0).backward()    # Mul's backward of 0-d arrays makes numpy scalars
    assert x.grad.shape == () and x.grad == 36.0


def test_grad_assignment_of_the_wrong_shape_or_dtype_is_refused():
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"shape \(3, 1\).*shape \(3,\)"):
        x.grad = np.zeros((3, 1))
    with pytest.raises(ValueError, match="dtype float32"):
        x.grad = np.zeros(3, np.float32)
    x.grad = [1.0, 1.0, 1.0]     # array-like of the right shape and dtype
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0, 3.0])


def test_a_function_returning_too_few_gradients_is_named():
    class TooFew(tg.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, grad_out):
            return (grad_out,)

    x, w = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match=r"TooFew.backward returned 1 entries; it must return a tuple "
                       r"with one gradient per input \(2\)"):
        TooFew.apply(x, w).sum().backward()


def test_a_function_returning_the_wrong_shape_is_named():
    class WrongShape(tg.Function):
        def forward(self, a):
            return a * 2

        def backward(self, grad_out):
            return (np.ones((5,)),)

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"WrongShape.backward returned a gradient of shape \(5,\) for "
                       r"input 0 of shape \(2,\)"):
        WrongShape.apply(x).sum().backward()


def test_a_function_may_return_a_gradient_that_broadcasts_to_its_input():
    class Broadcasting(tg.Function):
        def forward(self, a):
            return a.copy()

        def backward(self, grad_out):
            return (np.broadcast_to(grad_out, (4,) + grad_out.shape),)

    x = leaf([1.0, 2.0])
    Broadcasting.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_gradients_of_a_shared_leaf_add_up_across_threads():
    p = leaf(np.zeros(200_000))   # big enough that numpy releases the GIL while adding
    ones = np.ones(200_000)
    errors = []

    def run():
        try:
            for _ in range(40):
                (p * ones).sum().backward()
        except Exception as e:   # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_array_equal(p.grad, np.full(200_000, 80.0))


# ----- checkpoint ------------------------------------------------------------------------------------
def test_checkpoint_replays_numpys_global_random_state():
    x = leaf(np.linspace(-1, 1, 50))

    def dropout_like(h):
        return h * (np.random.rand(*h.shape) > 0.5)

    np.random.seed(0)
    y = tg.checkpoint(dropout_like, x)
    mask = y.data / x.data
    after = np.random.rand()
    np.random.seed(0)
    np.random.rand(50)
    assert after == np.random.rand()       # state as the forward left it
    np.random.seed(123)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, mask)
    assert np.random.get_state()[1][0] == np.random.RandomState(123).get_state()[1][0]   # put back


def test_checkpoint_replays_a_generator_given_as_rng():
    rng = np.random.default_rng(0)
    x = leaf(np.linspace(-1, 1, 50))
    y = tg.checkpoint(lambda h: h * rng.random(h.shape), x, rng=rng)
    state = rng.bit_generator.state
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.random.default_rng(0).random(50))   # the forward's draw
    assert rng.bit_generator.state == state


def test_checkpoint_rejects_a_bad_rng():
    with pytest.raises(TypeError, match="rng must be a numpy Generator"):
        tg.checkpoint(lambda h: h, leaf([1.0]), rng=np.random.RandomState(0))


def test_checkpoint_whose_rerun_differs_in_shape_is_refused():
    calls = []

    def grows(h):
        calls.append(1)
        return h if len(calls) == 1 else h.reshape(1, -1)

    y = tg.checkpoint(grows, leaf([1.0, 2.0]) * 1.0)
    with pytest.raises(RuntimeError, match=r"gave shape \(1, 2\), float64 where forward gave shape \(2,\)"):
        y.sum().backward()


def test_nested_checkpoint_using_the_outer_input_directly_keeps_that_path():
    x = tg.Tensor([0.3, -0.7], requires_grad=True)
    f = lambda xin: tg.checkpoint(lambda: xin.exp(), params=[xin]) * 2.0   # noqa: E731
    tg.checkpoint(f, x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp([0.3, -0.7]))
    x.grad = None
    g = lambda xin: tg.checkpoint(lambda: xin.exp(), params=[xin]) * 2.0 + xin * xin   # noqa: E731
    tg.checkpoint(g, x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp([0.3, -0.7]) + 2 * np.array([0.3, -0.7]))


def test_nested_checkpoint_of_a_non_leaf_input():
    x = leaf([0.3, -0.7])
    h = x * 3.0
    out = tg.checkpoint(lambda a: tg.checkpoint(lambda b: (b * b).tanh(), a) + a.exp(), h)
    out.sum().backward()
    hv = 3 * np.array([0.3, -0.7])
    want = (2 * hv * (1 - np.tanh(hv * hv) ** 2) + np.exp(hv)) * 3.0
    np.testing.assert_allclose(x.grad, want)


def test_checkpoint_inputs_and_params_are_locked_until_backward():
    w = leaf([1.0, 2.0])
    x = leaf([3.0, 4.0])
    y = tg.checkpoint(lambda a: a * w, x, params=[w])
    with pytest.raises(tg.LockedError, match="the Checkpoint node"):
        w.data *= 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])


# ----- ops at their corners ---------------------------------------------------------------------------
def test_pow_gradient_at_zero_to_the_zero():
    x = leaf([0.0, 2.0])
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    y = leaf([0.0, 1.0, 2.0])
    (tg.Tensor(0.0) ** y).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 0.0, 0.0])


def test_max_and_min_over_a_non_empty_axis_of_an_empty_tensor():
    for op in ("max", "min"):
        x = leaf(np.zeros((3, 0)))
        y = getattr(x, op)(axis=0)
        assert y.shape == (0,)
        y.sum().backward()
        assert x.grad.shape == (3, 0)
        with pytest.raises(ValueError, match="empty axis"):
            getattr(leaf(np.zeros((3, 0))), op)(axis=1)


def test_mse_loss_of_empty_inputs():
    pred = leaf(np.zeros((0, 2)))
    loss = tg.functional.mse_loss(pred, np.zeros((0, 2)))
    assert np.isnan(loss.item())
    loss.backward()
    assert pred.grad.shape == (0, 2)


# ----- found in review: holes in the locking, each closed ------------------------------------------
def test_a_copy_of_locked_data_is_a_plain_array_that_locks_like_any_other():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    first = (x * w).sum()
    copy = w.data.copy()
    assert type(copy) is np.ndarray and copy.flags.writeable
    assert repr(w.data) == "array([3., 4.])"     # a learner sees an array, not the view's class
    w.data = w.data.copy()
    first.backward()
    x.grad = None
    loss = (x * w).sum()
    with pytest.raises(tg.LockedError):
        w.data[:] = 100.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_a_checkpoint_locks_what_its_function_captures():
    w, x = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    opt = optim.SGD([w], lr=1.0)
    y = tg.checkpoint(lambda a: (a * w).sum(), x)      # w captured, not passed as params=
    w.grad = np.ones(2)
    with pytest.raises(tg.LockedError, match="the Checkpoint node"):
        opt.step()
    m = np.ones(2)
    mask = tg.Tensor(m)
    z = tg.checkpoint(lambda a: (a * mask).sum(), x)   # a numpy array captured through a Tensor
    with pytest.raises(ValueError, match="read-only"):
        m[:] = 0.0
    (y + z).backward()
    np.testing.assert_array_equal(x.grad, [2.0, 3.0])
    assert not locking.held


def test_a_parameter_that_views_a_shared_buffer_is_writeable_after_backward():
    flat = np.random.default_rng(0).normal(size=8)
    w = tg.Tensor(flat[:6].reshape(2, 3), requires_grad=True)
    b = tg.Tensor(flat[6:], requires_grad=True)
    opt = optim.SGD([w, b], lr=0.1)
    loss = ((tg.Tensor(np.ones((4, 3))) @ w.T) * b).tanh().sum()
    loss.backward()
    del loss
    opt.step()
    assert not locking.held and w.data.flags.writeable and b.data.flags.writeable


def test_the_numpy_twins_do_not_deadlock_when_the_garbage_collector_drops_a_graph(tmp_path):
    script = tmp_path / "gc_in_lock.py"
    script.write_text(
        "import gc, random, numpy as np, tinygrad_vg as tg\n"
        "x = tg.Tensor(np.ones(3), requires_grad=True)\n"
        "class Holder: pass\n"
        "random.seed(0)\n"
        "for i in range(3000):\n"
        "    gc.set_threshold(random.randint(2, 40))\n"
        "    h = Holder(); h.self = h; h.out = x.tanh(); del h\n"
        "    y = x * x\n"
        "print('done')\n")
    import os
    import subprocess
    import sys
    env = {**os.environ, "TINYGRAD_VG_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "done", result.stderr[-2000:]


def test_a_failed_backward_unlocks_its_graph_even_while_the_error_is_kept():
    w = leaf([1.0, -1.0])
    opt = optim.SGD([w], lr=0.1)
    x = tg.Tensor([0.0, -2.0])
    with pytest.raises(FloatingPointError) as kept, np.errstate(divide="ignore"):   # kept, as a REPL does
        with tg.detect_anomaly():
            (x * w).sqrt().sum().backward()
    loss = ((x * w) ** 2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()      # the failed graph no longer locks w
    assert kept.value is not None and not locking.held


def test_index_arrays_are_copied_so_a_later_change_does_not_move_the_gradient():
    x = leaf(np.arange(6.0).reshape(3, 2))
    idx = np.array([0, 1])
    y = x[idx, 0]
    idx[:] = 2
    z = x[idx]
    idx[:] = 0
    (y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0], [1.0, 0.0], [2.0, 2.0]])
