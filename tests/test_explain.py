"""tinygrad_vg/explain.py: the tape listing and the step-by-step backward."""
import io

import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg.explain import backward_steps, derivative_rule, forward_rule, name_parameters, show

X = [0.5, -1.0, 2.0]
W = [2.0, 0.25, -0.5]


def three_nodes(x_name="x", w_name="w"):
    x = tg.Tensor(X, requires_grad=True, name=x_name)
    w = tg.Tensor(W, requires_grad=True, name=w_name)
    return x, w, ((x * w).tanh()).sum()


# ----- the listing ---------------------------------------------------------------------------
def test_listing_of_a_three_node_graph_is_exact():
    _, _, loss = three_nodes()
    assert tg.tape_listing(loss) == "\n".join([
        "tape: 3 nodes in execution order",
        "#  op    inputs          output  saved for backward",
        "0  Mul   x (3,), w (3,)  (3,)    a (3,), b (3,)",
        "1  Tanh  #0 (3,)         (3,)    y (3,)",
        "2  Sum   #1 (3,)         ()      -",
    ])


def test_listing_numbers_unnamed_leaves_and_shows_intermediate_names_and_constants():
    x, w, _ = three_nodes(x_name=None, w_name=None)
    h = (x * w).tanh()
    h.name = "h"
    loss = (h * 2.0).sum()
    loss.name = "loss"
    assert tg.tape_listing(loss).splitlines()[2:] == [
        "0  Mul   leaf0 (3,), leaf1 (3,)  (3,)     a (3,), b (3,)",
        "1  Tanh  #0 (3,)                 (3,) h   y (3,)",
        "2  Mul   h (3,), const 2         (3,)     a (3,), b ()",
        "3  Sum   #2 (3,)                 () loss  -",
    ]


def test_listing_names_module_parameters_by_their_dotted_paths():
    layer = name_parameters(tg.nn.Linear(2, 3, dtype=np.float64, rng=0), prefix="fc")
    loss = layer(tg.Tensor(np.ones((4, 2)))).relu().mean()
    lines = tg.tape_listing(loss).splitlines()
    assert lines[2].split()[:2] == ["0", "Linear"]
    assert "const (4, 2), fc.weight (3, 2), fc.bias (3,)" in lines[2]
    # unnamed parameters are paramN, not leafN (nn.Parameter recognised without importing nn)
    unnamed = tg.nn.Linear(2, 3, dtype=np.float64, rng=0)
    assert "param0 (3, 2), param1 (3,)" in tg.tape_listing(unnamed(tg.Tensor(np.ones((1, 2)))).sum())


def test_listing_of_a_leaf_says_nothing_was_recorded_and_print_tape_prints_it():
    x = tg.Tensor(X, requires_grad=True, name="x")
    assert tg.tape_listing(x) == "tape: empty (the tensor 'x' of shape (3,) is a leaf: nothing was recorded)"
    _, _, loss = three_nodes()
    out = io.StringIO()
    assert tg.print_tape(loss, file=out) is None
    assert out.getvalue() == tg.tape_listing(loss) + "\n"


# ----- explain_backward ------------------------------------------------------------------------
def test_explain_backward_prints_rules_and_the_right_numbers():
    x, w, loss = three_nodes()
    out = io.StringIO()
    lines = tg.explain_backward(loss, file=out)
    assert out.getvalue() == "\n".join(lines) + "\n"
    text = "\n".join(lines)
    # reverse execution order, each node with its docstring math
    headers = [line for line in lines if line.startswith("#")]
    assert headers == ["#2 Sum:  y = sum(x, axes)", "#1 Tanh:  y = tanh(x)", "#0 Mul:  y = a * b"]
    assert "    rule      : grad_x = grad_out * (1 - y^2)" in lines
    assert "    rule      : grad_a = grad_out * b, grad_b = grad_out * a" in lines
    # the numbers: grad at Tanh's input is 1 - tanh(x w)^2, then times w and x
    d_tanh = 1 - np.tanh(np.multiply(X, W)) ** 2
    assert f"    -> #0 (3,): {show(d_tanh)}" in lines
    assert f"    -> x (3,): {show(d_tanh * W)}" in lines
    assert f"    -> w (3,): {show(d_tanh * X)}" in lines
    assert show(d_tanh * W) == "[0.8399, 0.235, -0.21]"   # 4 significant digits
    assert "    grad_out  = [1, 1, 1]   (from #2)" in text
    loss.backward()
    np.testing.assert_allclose(x.grad, d_tanh * W)


def test_explain_backward_leaves_grads_hooks_and_graph_alone():
    x, w, loss = three_nodes()
    before = np.array([10.0, 20.0, 30.0])
    x.grad = before
    calls = []
    x.register_hook(lambda g: calls.append(g))
    tg.explain_backward(loss, file=io.StringIO())
    assert x.grad is before and w.grad is None and calls == []
    loss.backward()   # the graph was not freed, and the gradients are not doubled
    np.testing.assert_allclose(x.grad, before + (1 - np.tanh(np.multiply(X, W)) ** 2) * W)
    assert len(calls) == 1


def test_explain_backward_after_retain_graph_and_after_a_freed_graph():
    x, _, loss = three_nodes()
    loss.backward(retain_graph=True)
    first = x.grad.copy()
    lines = tg.explain_backward(loss, file=io.StringIO())
    np.testing.assert_array_equal(x.grad, first)
    assert f"    x (3,)  {show(first)}" in lines
    loss.backward()   # frees the graph
    with pytest.raises(RuntimeError, match="retain_graph"):
        tg.explain_backward(loss, file=io.StringIO())


def test_explain_backward_sums_contributions_and_notes_broadcasting():
    a = tg.Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="a")
    b = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True, name="b")
    h = a + b
    loss = (h * h).sum()
    lines = tg.explain_backward(loss, file=io.StringIO())
    assert "    grad_out  = [[2, 6, 10], [8, 12, 16]]   (from #1 + #1)" in lines
    assert "    -> b (3,): [10, 18, 26]   (summed over the broadcast axes of (2, 3))" in lines


def test_explain_backward_shows_norms_for_large_tensors_and_constants_get_no_gradient():
    x = tg.Tensor(np.ones((4, 5)), requires_grad=True, name="x")
    lines = tg.explain_backward((x * 3.0).sum(), file=io.StringIO())
    assert "    -> x (4, 5): norm 13.42 over 20 values" in lines
    assert "    -> const 3: no gradient (it does not require grad)" in lines
    small = tg.explain_backward((x * 3.0).sum(), file=io.StringIO(), small=20)
    assert "    -> x (4, 5): " + show(np.full((4, 5), 3.0), small=20) in small


def test_explain_backward_needs_a_seed_for_non_scalars_and_grad_for_a_leaf():
    x, w, _ = three_nodes()
    h = (x * w).tanh()
    with pytest.raises(RuntimeError, match="grad="):
        tg.explain_backward(h, file=io.StringIO())
    lines = tg.explain_backward(h, grad=np.array([1.0, 0.0, 2.0]), file=io.StringIO())
    assert lines[0] == "backward from #1 Tanh (3,), seeded with dL/dL = [1, 0, 2]"
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.explain_backward(tg.Tensor([1.0]), file=io.StringIO())


def test_backward_steps_agree_with_backward_on_a_small_mlp():
    rng = np.random.default_rng(0)
    model = name_parameters(tg.nn.deep_mlp("residual", width=3, depth=2, dtype=np.float64, rng=1))
    loss = tg.functional.mse_loss(model(tg.Tensor(rng.normal(size=(4, 3)))), tg.Tensor(rng.normal(size=(4, 3))))
    steps, leaves = backward_steps(loss)
    assert [s.index for s in steps] == sorted((s.index for s in steps), reverse=True)
    loss.backward()
    replayed = {x.name: g for x, g in leaves}
    assert set(replayed) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():
        np.testing.assert_allclose(replayed[name], p.grad, rtol=1e-12, atol=0)


# ----- the rules come from the op docstrings ----------------------------------------------------
def test_every_op_docstring_has_a_derivative_rule():
    for name in tg.ops.__all__:
        assert derivative_rule(getattr(tg.ops, name)).startswith("grad_"), name
    assert forward_rule(tg.ops.Tanh) == "y = tanh(x)"
    assert derivative_rule(tg.ops.Sigmoid) == "grad_x = grad_out * y * (1 - y) (at most grad_out / 4)"

    class NoDoc(tg.Function):
        def forward(self, x):
            return x

        def backward(self, grad_out):
            return (grad_out,)

    assert derivative_rule(NoDoc) == "(no 'grad_x = ...' rule in the docstring of NoDoc)"
    assert forward_rule(NoDoc) == ""


def test_checkpoint_nodes_are_replayed_through_their_interior():
    model = name_parameters(tg.nn.deep_mlp("residual", width=3, depth=3, dtype=np.float64, rng=0))
    x = tg.Tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True, name="x")
    h = tg.checkpoint(model.blocks[0], x)
    for block in model.blocks[1:]:
        h = block(h)
    loss = (h * h).sum()
    lines = tg.explain_backward(loss, file=io.StringIO())
    assert "#0 Checkpoint:  y = fn(*inputs), interior not recorded" in lines
    assert "    rule      : backward: rerun fn recording, backprop through it" in lines
    replayed = {t.name: g for t, g in backward_steps(loss)[1]}
    loss.backward()
    np.testing.assert_allclose(replayed["x"], x.grad, rtol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(replayed[name], p.grad, rtol=1e-12, err_msg=name)


def test_a_rule_written_over_several_lines_is_printed_line_by_line():
    class TwoLines(tg.Function):
        """y = 2 x;
        grad_x = 2 grad_out
                 (twice the upstream gradient)"""

        def forward(self, x):
            return 2 * x

        def backward(self, grad_out):
            return (2 * grad_out,)

    x = tg.Tensor([1.0], requires_grad=True, name="x")
    lines = tg.explain_backward(TwoLines.apply(x).sum(), file=io.StringIO())
    i = lines.index("    rule      : grad_x = 2 grad_out")
    assert lines[i + 1] == "                (twice the upstream gradient)"
    assert lines[i - 2] == "#0 TwoLines:  y = 2 x"
