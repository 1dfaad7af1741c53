"""The added ops keep the engine's promises (as tests/test_autograd.py checks for the first
ops): forward and backward never change their inputs nor the upstream gradient, and a node
keeps only the arrays it names in `saves` (what locking.py protects against in-place change)."""
import numpy as np
import pytest

import tinygrad_vg as tg
import tinygrad_vg.functional as F

IDX = np.array([[0, 2, 1], [1, 1, 0]])
CASES = {
    "math": lambda a, b: tg.sin(a) + tg.cos(b) + tg.tan(a * 0.3) + tg.erf(b) + tg.expm1(a),
    "logs": lambda a, b: tg.log1p(a * a) + tg.log2(b * b + 1) + tg.log10(a * a + 1) + a * tg.sign(b),
    "maximum_minimum": lambda a, b: tg.maximum(a, b) + tg.minimum(a, b[:1]),
    "activations": lambda a, b: F.silu(a) + F.mish(b) + F.selu(a) + F.hardtanh(b, -0.5, 0.5),
    "dropout": lambda a, b: F.dropout(a, 0.3, rng=0) + b,
    "prod_std_cumsum": lambda a, b: a.prod(dim=1, keepdim=True) + b.std(0) + a.cumsum(1),
    "squeeze_expand_flatten": lambda a, b: a[None].squeeze(0) + b.unsqueeze(0).expand(2, -1, -1).sum(0)
    + tg.flatten(a).reshape(2, 3),
    "flip_roll_tile_repeat": lambda a, b: a.flip(0) + b.roll(1, 1) + a.tile(1, 2)[:, :3] + b.repeat(2, axis=1)[:, ::2],
    "pad_tril_triu": lambda a, b: tg.pad(a, 1, mode="reflect")[1:-1, 1:-1] + tg.pad(b, 1)[1:-1, 1:-1]
    + a.tril() + b.triu(1),
    "gather_sort_topk": lambda a, b: a.gather(1, IDX) + tg.sort(b, 1) + a.topk(3, 1)[0]
    + tg.take_along_axis(b, IDX, 1),
    "einsum": lambda a, b: tg.einsum("ij,kj->ik", a, b).sum(1, keepdims=True) + tg.einsum("ij,ij->ij", a, b),
    "losses": lambda a, b: F.nll_loss(a, np.array([0, 2])) + F.binary_cross_entropy(a.sigmoid(), b.sigmoid())
    + F.binary_cross_entropy_with_logits(a, b.sigmoid(), pos_weight=np.ones(3)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_forward_and_backward_never_mutate_their_inputs(name):
    rng = np.random.default_rng(15)
    a_np, b_np = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    a_copy, b_copy = a_np.copy(), b_np.copy()
    a, b = tg.Tensor(a_np, requires_grad=True), tg.Tensor(b_np, requires_grad=True)
    out = CASES[name](a, b)
    grad_out = rng.normal(size=out.shape)
    grad_copy = grad_out.copy()
    out.backward(grad_out)
    np.testing.assert_array_equal(a_np, a_copy)
    np.testing.assert_array_equal(b_np, b_copy)
    np.testing.assert_array_equal(grad_out, grad_copy)
    assert a.grad is not None and b.grad is not None


@pytest.mark.parametrize("name", list(CASES))
def test_an_added_op_keeps_only_the_arrays_it_declares(name):
    rng = np.random.default_rng(16)
    a = tg.Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    b = tg.Tensor(rng.normal(size=(2, 3)), requires_grad=True)
    nodes = tg.tape(CASES[name](a, b))
    assert nodes
    for node in nodes:
        assert type(node).saves is not None, f"{node.name} declares no saves"
        kept = {k for k, v in vars(node).items() if isinstance(v, np.ndarray)}
        assert kept <= set(node.saves), f"{node.name} keeps {sorted(kept - set(node.saves))} not in saves"


def test_an_einsum_operand_is_locked_until_backward():
    a = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    w = np.ones((3, 4))
    y = tg.einsum("ij,jk->ik", a, w)
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = 5.0
    y.sum().backward()
    w[0, 0] = 5.0   # released with the node
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 4.0))


def test_an_index_valued_op_inside_a_checkpoint_locks_what_it_read():
    # argmax/sign/one_hot are not recorded, but a checkpoint's rerun reads their inputs again:
    # an array they read must not change before backward
    w = np.array([[0.5, -2.0, 1.0], [3.0, 0.1, -1.0]])
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    y = tg.checkpoint(lambda t: t * tg.sign(w) + tg.one_hot(tg.argmax(w, dim=1), 3), x)
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = -5.0
    y.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, np.sign(w))
