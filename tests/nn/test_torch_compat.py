"""A torch state dict converted to numpy loads into the layer of the same name and gives
the same outputs and gradients. Runs where torch is installed (`pip install torch`);
skipped otherwise, so the suite does not depend on it."""
import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import nn

torch = pytest.importorskip("torch")


def to_numpy(state):
    return {k: v.detach().numpy().astype(np.float64) for k, v in state.items()}


def compare(ours, theirs, x, run_ours, run_theirs):
    ours.load_state_dict(to_numpy(theirs.state_dict()))
    xt = torch.tensor(x, requires_grad=True)
    out_t = run_theirs(theirs, xt)
    g = np.random.default_rng(1).normal(size=tuple(out_t.shape))
    out_t.backward(torch.tensor(g))
    xo = tg.Tensor(x, requires_grad=True)
    out_o = run_ours(ours, xo)
    out_o.backward(g)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    grads = {k: p.grad for k, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, grads[name].numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.fixture(autouse=True)
def double():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


X = np.random.default_rng(0).normal(size=(5, 4, 3))


def test_linear_and_norms():
    plain = lambda m, x: m(x)   # noqa: E731
    compare(nn.Linear(3, 2, dtype=np.float64), torch.nn.Linear(3, 2), X[0], plain, plain)
    compare(nn.LayerNorm(3, dtype=np.float64), torch.nn.LayerNorm(3), X[0], plain, plain)
    compare(nn.BatchNorm1d(3, dtype=np.float64), torch.nn.BatchNorm1d(3), X[0], plain, plain)


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("layers", [1, 2])
def test_sequence_modules(name, layers):
    ours = getattr(nn, name)(3, 4, num_layers=layers, dtype=np.float64)
    theirs = getattr(torch.nn, name)(3, 4, num_layers=layers)
    compare(ours, theirs, X, lambda m, x: m(x)[0], lambda m, x: m(x)[0])


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cells(name):
    ours = getattr(nn, name)(3, 4, dtype=np.float64)
    theirs = getattr(torch.nn, name)(3, 4)
    first = lambda out: out[0] if isinstance(out, tuple) else out   # noqa: E731
    compare(ours, theirs, X[0], lambda m, x: first(m(x)), lambda m, x: first(m(x)))
