"""The added ops against torch on the same inputs: values and the gradients of every input
(float64, a random upstream gradient), including the conventions at ties, kinks and NaN that
the docstrings state. Skipped without torch (`pip install torch`)."""
import numpy as np
import pytest

import tinygrad_vg as tg
import tinygrad_vg.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

rng = np.random.default_rng(2026)
X = rng.normal(size=(3, 4))
Y = rng.normal(size=(3, 4))
POS = rng.uniform(0.2, 2.0, size=(3, 4))
PROB = rng.uniform(0.05, 0.95, size=(3, 4))
TIES = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 0.0, 5.0]])
KINKS = np.array([[-1.0, 0.0, 1.0, -2.0], [0.5, -0.0, 2.0, -0.5], [1.0, -1.0, 0.0, 3.0]])
ZEROS = np.array([[2.0, 0.0, 3.0, 1.5], [0.0, 0.0, 5.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
IDX = np.array([[0, 3, 3, 1], [2, 2, 0, 1], [1, 0, 3, 3]])
LOGP = np.log(np.exp(X) / np.exp(X).sum(axis=1, keepdims=True))

# name -> (engine function, torch function, inputs); both get the inputs in order
CASES = {
    "sin": (tg.sin, torch.sin, [X]),
    "cos": (tg.cos, torch.cos, [X]),
    "tan": (tg.tan, torch.tan, [X / 3]),
    "erf": (tg.erf, torch.erf, [X]),
    "log1p": (tg.log1p, torch.log1p, [POS - 0.1]),
    "expm1": (tg.expm1, torch.expm1, [X]),
    "log2": (tg.log2, torch.log2, [POS]),
    "log10": (tg.log10, torch.log10, [POS]),
    "sign at 0": (lambda x: x * tg.sign(x), lambda x: x * torch.sign(x), [KINKS]),
    "maximum": (tg.maximum, torch.maximum, [X, Y]),
    "maximum ties": (tg.maximum, torch.maximum, [TIES, TIES[::-1].copy()]),
    "minimum ties": (tg.minimum, torch.minimum, [TIES, np.full((3, 4), 2.0)]),
    "maximum broadcast": (tg.maximum, torch.maximum, [X, Y[:1]]),
    "silu": (F.silu, TF.silu, [X * 3]),
    "mish": (F.mish, TF.mish, [X * 3]),
    "selu with a kink": (F.selu, TF.selu, [KINKS]),
    "hardtanh with kinks": (F.hardtanh, TF.hardtanh, [KINKS]),
    "hardtanh bounds": (lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0), [KINKS]),
    "abs at 0": (tg.abs, torch.abs, [KINKS]),
    "relu at 0": (tg.relu, torch.relu, [KINKS]),
    "prod": (lambda x: tg.prod(x, dim=1), lambda x: torch.prod(x, dim=1), [X]),
    "prod with zeros": (lambda x: tg.prod(x, dim=1), lambda x: torch.prod(x, dim=1), [ZEROS]),
    "prod of all": (tg.prod, torch.prod, [ZEROS[2:]]),
    "std": (lambda x: tg.std(x, dim=1, ddof=1), lambda x: torch.std(x, dim=1), [X]),
    "std keepdim": (lambda x: x.std(dim=0, keepdim=True), lambda x: x.std(dim=0, keepdim=True, correction=0), [X]),
    "std of a constant": (lambda x: tg.std(x, dim=1, ddof=1), lambda x: torch.std(x, dim=1), [TIES]),
    "amax with ties": (lambda x: x.max(dim=1), lambda x: torch.amax(x, dim=1), [TIES]),
    "amin with ties": (lambda x: x.min(dim=0, keepdim=True), lambda x: torch.amin(x, dim=0, keepdim=True), [TIES]),
    "max of all with ties": (lambda x: x.max(), lambda x: x.max(), [TIES]),
    "cumsum": (lambda x: tg.cumsum(x, dim=1), lambda x: torch.cumsum(x, dim=1), [X]),
    "cumsum dim 0": (lambda x: x.cumsum(0), lambda x: x.cumsum(0), [X]),
    "squeeze": (lambda x: x[:, None].squeeze(1), lambda x: x[:, None].squeeze(1), [X]),
    "unsqueeze": (lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1), [X]),
    "expand": (lambda x: x[:1].expand(5, -1), lambda x: x[:1].expand(5, -1), [X]),
    "flatten": (lambda x: x[None].flatten(1), lambda x: x[None].flatten(1), [X]),
    "flip": (lambda x: x.flip(dims=(0, 1)), lambda x: x.flip(dims=(0, 1)), [X]),
    "roll": (lambda x: x.roll(2, dims=1), lambda x: x.roll(2, dims=1), [X]),
    "roll flat": (lambda x: x.roll(5), lambda x: x.roll(5), [X]),
    "tile (torch's repeat)": (lambda x: x.tile(2, 3), lambda x: x.repeat(2, 3), [X]),
    "repeat_interleave": (lambda x: x.repeat_interleave(3, dim=1), lambda x: x.repeat_interleave(3, dim=1), [X]),
    "repeat_interleave counts": (lambda x: tg.repeat(x, np.array([1, 0, 2]), dim=0),
                                 lambda x: torch.repeat_interleave(x, torch.tensor([1, 0, 2]), dim=0), [X]),
    "pad constant": (lambda x: tg.pad(x, ((1, 2), (0, 3)), constant_values=0.5),
                     lambda x: TF.pad(x, (0, 3, 1, 2), value=0.5), [X]),
    "pad reflect": (lambda x: tg.pad(x[None], ((0, 0), (0, 0), (2, 1)), mode="reflect"),
                    lambda x: TF.pad(x[None], (2, 1), mode="reflect"), [X]),
    "pad replicate": (lambda x: tg.pad(x[None], ((0, 0), (1, 2), (2, 1)), mode="replicate"),
                      lambda x: TF.pad(x[None], (2, 1, 1, 2), mode="replicate"), [X]),
    "pad circular": (lambda x: tg.pad(x[None], ((0, 0), (0, 0), (3, 1)), mode="circular"),
                     lambda x: TF.pad(x[None], (3, 1), mode="circular"), [X]),
    "tril": (lambda x: x.tril(1), lambda x: x.tril(1), [X]),
    "triu": (lambda x: tg.triu(x, diagonal=-1), lambda x: torch.triu(x, diagonal=-1), [X]),
    "gather": (lambda x: x.gather(1, IDX), lambda x: x.gather(1, torch.tensor(IDX)), [X]),
    "gather smaller index": (lambda x: tg.gather(x, 0, IDX[:2, :2] % 3),
                             lambda x: torch.gather(x, 0, torch.tensor(IDX[:2, :2] % 3)), [X]),
    "take_along_axis": (lambda x: tg.take_along_axis(x, IDX, 1),
                        lambda x: torch.take_along_dim(x, torch.tensor(IDX), 1), [X]),
    "sort stable ties": (lambda x: tg.sort(x, dim=1), lambda x: torch.sort(x, dim=1, stable=True)[0], [TIES]),
    "sort descending ties": (lambda x: tg.sort(x, 1, descending=True),
                             lambda x: torch.sort(x, dim=1, descending=True, stable=True)[0], [TIES]),
    "topk": (lambda x: x.topk(2, dim=1)[0], lambda x: x.topk(2, dim=1)[0], [X]),
    "topk smallest": (lambda x: tg.topk(x, 3, dim=0, largest=False)[0],
                      lambda x: torch.topk(x, 3, dim=0, largest=False)[0], [X]),
    "einsum matmul": (lambda a, b: tg.einsum("ij,kj->ik", a, b), lambda a, b: torch.einsum("ij,kj->ik", a, b), [X, Y]),
    "einsum trace": (lambda a: tg.einsum("ii", a[:, :3]), lambda a: torch.einsum("ii", a[:, :3]), [X]),
    "einsum batch ellipsis": (lambda a, b: tg.einsum("...j,...j->...", a, b),
                              lambda a, b: torch.einsum("...j,...j->...", a, b), [X, Y]),
    "nll_loss": (lambda x: F.nll_loss(x, np.array([0, 3, 1])), lambda x: TF.nll_loss(x, torch.tensor([0, 3, 1])), [LOGP]),
    "nll_loss ignore_index sum": (lambda x: F.nll_loss(x, np.array([0, -100, 1]), reduction="sum"),
                                  lambda x: TF.nll_loss(x, torch.tensor([0, -100, 1]), reduction="sum"), [LOGP]),
    "nll_loss ignore_index mean": (lambda x: F.nll_loss(x, np.array([2, 2, -100])),
                                   lambda x: TF.nll_loss(x, torch.tensor([2, 2, -100])), [LOGP]),
    "nll_loss weight mean": (lambda x: F.nll_loss(x, np.array([0, -100, 3]), weight=POS[0]),
                             lambda x: TF.nll_loss(x, torch.tensor([0, -100, 3]), weight=torch.tensor(POS[0])), [LOGP]),
    "nll_loss weight none": (lambda x: F.nll_loss(x, np.array([2, 1, 2]), "none", weight=POS[1]),
                             lambda x: TF.nll_loss(x, torch.tensor([2, 1, 2]), torch.tensor(POS[1]), reduction="none"),
                             [LOGP]),
    "nll_loss none": (lambda x: F.nll_loss(x, np.array([1, 1, 2]), reduction="none"),
                      lambda x: TF.nll_loss(x, torch.tensor([1, 1, 2]), reduction="none"), [LOGP]),
    "bce": (F.binary_cross_entropy, TF.binary_cross_entropy, [PROB, PROB[::-1].copy()]),
    "bce none": (lambda p, t: F.binary_cross_entropy(p, t, "none"),
                 lambda p, t: TF.binary_cross_entropy(p, t, reduction="none"), [PROB, PROB[::-1].copy()]),
    # the target's gradient at p = 0 or 1 differs on purpose: see the test below
    "bce at 0 and 1": (lambda p: F.binary_cross_entropy(p, np.array([1.0, 0.0, 0.0, 1.0])),
                       lambda p: TF.binary_cross_entropy(p, torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)),
                       [np.array([0.0, 1.0, 0.0, 1.0])]),
    "bce with logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, [X * 4, PROB]),
    "bce with logits sum": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, "sum"),
                            lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="sum"), [X * 4, PROB]),
    # torch does not differentiate pos_weight (tinygrad_vg does: test_loss_extra checks it)
    "bce with logits pos_weight": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=POS[0]),
                                   lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(POS[0])),
                                   [X * 4, PROB]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_equal_torchs(name):
    ours, theirs, inputs = CASES[name]
    mine = [tg.Tensor(a.copy(), requires_grad=True) for a in inputs]
    ref = [torch.tensor(a, requires_grad=True) for a in inputs]
    out, expected = ours(*mine), theirs(*ref)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    grad_out = np.random.default_rng(len(name)).normal(size=out.shape)
    out.backward(grad_out)
    expected.backward(torch.tensor(grad_out))
    for i, (m, r) in enumerate(zip(mine, ref)):
        want = np.zeros(m.shape) if r.grad is None else r.grad.numpy()
        got = np.zeros(m.shape) if m.grad is None else m.grad
        # rtol 1e-8: torch's binary_cross_entropy divides by max(p (1 - p), 1e-12) with 1e-12 as a float32
        # constant (4e-9 apart from float64's); every other case agrees to ~1e-15
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12, err_msg=f"gradient of input {i}")


def test_sort_argsort_topk_indices_and_argmax_equal_torchs():
    t = torch.tensor(TIES)
    np.testing.assert_array_equal(tg.argsort(TIES, dim=1).data, torch.sort(t, dim=1, stable=True)[1].numpy())
    np.testing.assert_array_equal(tg.argsort(TIES, 1, descending=True).data,
                                  torch.sort(t, dim=1, descending=True, stable=True)[1].numpy())
    np.testing.assert_array_equal(tg.argmax(TIES, dim=1).data, torch.argmax(t, dim=1).numpy())
    np.testing.assert_array_equal(tg.argmin(TIES, dim=0, keepdim=True).data, torch.argmin(t, dim=0, keepdim=True).numpy())
    np.testing.assert_array_equal(tg.argmax(TIES).data, torch.argmax(t).numpy())
    np.testing.assert_array_equal(tg.topk(X, 2, dim=1)[1].data, torch.topk(torch.tensor(X), 2, dim=1)[1].numpy())
    nan = np.array([1.0, np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(tg.argmax(nan).data, torch.argmax(torch.tensor(nan)).numpy())
    np.testing.assert_array_equal(tg.argsort(nan).data, torch.sort(torch.tensor(nan), stable=True)[1].numpy())
    np.testing.assert_array_equal(tg.argsort(nan, descending=True).data,
                                  torch.sort(torch.tensor(nan), descending=True, stable=True)[1].numpy())


def test_one_hot_and_sign_equal_torchs():
    idx = np.array([[0, 2], [3, 1]])
    np.testing.assert_array_equal(tg.one_hot(idx).data, TF.one_hot(torch.tensor(idx)).numpy())
    np.testing.assert_array_equal(tg.one_hot(idx, 6).data, TF.one_hot(torch.tensor(idx), 6).numpy())
    np.testing.assert_array_equal(tg.sign(KINKS).data, torch.sign(torch.tensor(KINKS)).numpy())


def test_nan_propagates_through_maximum_and_max_as_torch():
    a = np.array([1.0, np.nan, 3.0])
    b = np.array([np.nan, 0.0, 4.0])
    np.testing.assert_array_equal(tg.maximum(a, b).data, torch.maximum(torch.tensor(a), torch.tensor(b)).numpy())
    np.testing.assert_array_equal(tg.minimum(a, b).data, torch.minimum(torch.tensor(a), torch.tensor(b)).numpy())
    assert np.isnan(tg.max(a).data) and torch.isnan(torch.tensor(a).max())


def test_empty_reductions_as_torch():
    empty = np.zeros((2, 0))
    np.testing.assert_array_equal(tg.prod(empty, dim=1).data, torch.prod(torch.tensor(empty), dim=1).numpy())
    np.testing.assert_array_equal(tg.cumsum(empty, dim=1).data, torch.cumsum(torch.tensor(empty), dim=1).numpy())
    # torch.std of one element with correction 1 is NaN with a warning; tinygrad_vg refuses, saying why
    with pytest.raises(ValueError, match="need more elements than ddof"):
        tg.std(np.ones((2, 1)), dim=1, ddof=1)


def test_bce_target_gradient_at_p_0_or_1_is_the_clamped_one_where_torch_gives_inf():
    # forward clamps each log at -100 (as torch), so the loss is (log(1-p) - log p) t + const with
    # the clamped logs: its derivative in t is finite. torch's backward uses the unclamped logs: inf.
    p, t = np.array([0.0, 1.0]), tg.Tensor(np.array([1.0, 0.0]), requires_grad=True)
    F.binary_cross_entropy(p, t, reduction="sum").backward()
    np.testing.assert_array_equal(t.grad, [100.0, -100.0])
    ref = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    TF.binary_cross_entropy(torch.tensor(p), ref, reduction="sum").backward()
    assert torch.isinf(ref.grad).all()
