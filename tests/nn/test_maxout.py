"""tinygrad_vg/nn/activation.py, the Maxout block: nn.maxout, nn.MaxoutPool, nn.Maxout and
deep_mlp(activation="maxout", pieces=k).

Values against numpy (max over groups of k consecutive features), the tie convention (the whole
gradient to the FIRST maximal piece, as torch.max(dim)'s index), gradients in float64 with a
random upstream gradient away from ties, torch's view+max composition where torch is installed,
the error cases and a short training run.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg import nn, optim
from tinygrad_vg.gradcheck import gradcheck

from .helpers import gradcheck_module


def np_maxout(z, k):
    return z.reshape(*z.shape[:-1], z.shape[-1] // k, k).max(axis=-1)


def untied(rng, shape):
    """Normal values, all distinct by at least 1e-3 (finite differences of eps 1e-6 never cross a tie)."""
    size = int(np.prod(shape))
    values = rng.permutation(size) * 1e-2 + rng.uniform(0, 1e-3, size)
    return (values - values.mean()).reshape(shape)


@settings(deadline=None, max_examples=30)
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), units=st.integers(1, 4), k=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_maxout_values_and_gradients(lead, units, k, seed):
    rng = np.random.default_rng(seed)
    z = tg.Tensor(untied(rng, (*lead, units * k)), requires_grad=True)
    y = nn.maxout(z, k)
    assert y.shape == (*lead, units)
    np.testing.assert_array_equal(y.data, np_maxout(z.data, k))
    assert gradcheck(lambda t: nn.maxout(t, k), [z])


def test_ties_send_the_whole_gradient_to_the_first_maximal_piece():
    z = tg.Tensor(np.array([[1.0, 3.0, 3.0, 0.0, 2.0, 2.0],
                            [5.0, 5.0, 5.0, -1.0, -1.0, -2.0]]), requires_grad=True)
    y = nn.maxout(z, 3)
    y.backward(np.array([[2.0, 7.0], [4.0, 9.0]]))
    np.testing.assert_array_equal(y.data, [[3.0, 2.0], [5.0, -1.0]])
    np.testing.assert_array_equal(z.grad, [[0.0, 2.0, 0.0, 0.0, 7.0, 0.0],
                                           [4.0, 0.0, 0.0, 9.0, 0.0, 0.0]])


def test_an_infinite_losing_piece_does_not_poison_the_winner():
    z = tg.Tensor(np.array([[-np.inf, 1.0]]), requires_grad=True)
    y = nn.maxout(z, 2)
    y.backward(np.array([[1.0]]))
    np.testing.assert_array_equal(y.data, [[1.0]])
    np.testing.assert_array_equal(z.grad, [[0.0, 1.0]])


@settings(deadline=None, max_examples=20)
@given(n_in=st.integers(1, 4), n_out=st.integers(1, 3), k=st.integers(1, 3), batch=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_maxout_layer_against_numpy_and_gradcheck(n_in, n_out, k, batch, seed):
    rng = np.random.default_rng(seed)
    layer = nn.Maxout(n_in, n_out, pieces=k, dtype=np.float64, rng=seed)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert layer.weight.shape == (n_out * k, n_in) and layer.bias.shape == (n_out * k,)
    bound = 1 / np.sqrt(n_in)   # torch.nn.Linear(n_in, n_out * k)'s init
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    x = tg.Tensor(rng.normal(size=(batch, n_in)), requires_grad=True)
    y = layer(x)
    np.testing.assert_allclose(y.data, np_maxout(x.data @ layer.weight.data.T + layer.bias.data, k), rtol=1e-12)
    assert gradcheck_module(layer, [x])


def test_maxout_layer_takes_leading_axes_and_no_bias():
    layer = nn.Maxout(3, 2, pieces=2, bias=False, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    np.testing.assert_allclose(layer(x).data, np_maxout(x @ layer.weight.data.T, 2), rtol=1e-12)
    assert list(layer.state_dict()) == ["weight"]
    assert "pieces=2" in repr(layer) and "pieces=3" in repr(nn.MaxoutPool(3))


def test_errors_name_what_was_wrong():
    with pytest.raises(ValueError, match="pieces must be a positive int, got 0"):
        nn.maxout(np.ones((2, 4)), 0)
    with pytest.raises(ValueError, match=r"out_features \* pieces values \(pieces=3\); got shape \(2, 4\)"):
        nn.maxout(np.ones((2, 4)), 3)
    with pytest.raises(ValueError, match="MaxoutPool: pieces must be a positive int, got True"):
        nn.MaxoutPool(True)
    with pytest.raises(ValueError, match="Maxout: out_features must be a positive int, got 0"):
        nn.Maxout(3, 0)
    with pytest.raises(ValueError, match=r"Maxout expects input of shape \(\.\.\., 3\).*\(2, 4\)"):
        nn.Maxout(3, 2)(np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match="Maxout: input is float64 but the parameters are float32"):
        nn.Maxout(3, 2)(np.ones((2, 3)))


# ----- deep_mlp(activation="maxout") ------------------------------------------------------------------
@pytest.mark.parametrize("kind", nn.KINDS)
def test_deep_mlp_maxout_keys_values_and_gradients(kind):
    k, width, depth = 3, 3, 2
    model = nn.deep_mlp(kind, width, depth, "maxout", pieces=k, dtype=np.float64, rng=0)
    state = model.state_dict()
    rng = np.random.default_rng(1)
    x = tg.Tensor(rng.normal(size=(4, width)), requires_grad=True)
    h = x.data
    features = h
    for i in range(depth):
        p = f"blocks.{i}."
        if kind == "highway":
            assert state[p + "transform.weight"].shape == (k * width, width)
            t = 1 / (1 + np.exp(-(h @ state[p + "gate.weight"].T + state[p + "gate.bias"])))
            c = np_maxout(h @ state[p + "transform.weight"].T + state[p + "transform.bias"], k)
            h = t * c + (1 - t) * h
        elif kind == "dense":
            assert state[p + "linear.weight"].shape == (k * width, width + i * width)   # growth = width
            out = np_maxout(features @ state[p + "linear.weight"].T + state[p + "linear.bias"], k)
            features = np.concatenate([features, out], axis=-1)
        else:
            assert state[p + "linear.weight"].shape == (k * width, width)
            branch = np_maxout(h @ state[p + "linear.weight"].T + state[p + "linear.bias"], k)
            h = branch if kind == "plain" else h + branch
    if kind == "dense":
        h = features @ state["transition.weight"].T + state["transition.bias"]
    np.testing.assert_allclose(model(x).data, h, rtol=1e-12)
    assert gradcheck_module(model, [x])


def test_deep_mlp_maxout_with_norms_and_the_default_pieces():
    model = nn.deep_mlp("residual", 4, 2, "maxout", norm="layer", dtype=np.float64, rng=0)
    assert model.pieces == 2 and model.state_dict()["blocks.0.norm.weight"].shape == (8,)
    x = tg.Tensor(np.random.default_rng(0).normal(size=(3, 4)), requires_grad=True)
    assert gradcheck_module(model, [x])


def test_pieces_only_with_maxout_and_maxout_named_among_the_accepted():
    with pytest.raises(ValueError, match="pieces=3 applies only with activation='maxout'"):
        nn.deep_mlp("plain", 3, 2, "tanh", pieces=3)
    with pytest.raises(ValueError, match="pieces must be a positive int, got 0"):
        nn.deep_mlp("plain", 3, 2, "maxout", pieces=0)
    with pytest.raises(ValueError, match="unknown activation 'maxwell'; accepted: .*gelu, maxout"):
        nn.deep_mlp("plain", 3, 2, "maxwell")


def test_a_maxout_net_trains():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Maxout(2, 16, pieces=3, dtype=np.float64, rng=rng), nn.Linear(16, 1, dtype=np.float64,
                                                                                             rng=rng))
    x = rng.uniform(-2, 2, size=(64, 2))
    y = np.abs(x[:, :1]) - np.abs(x[:, 1:])   # piecewise linear: maxout's kind of function
    opt = optim.Adam(list(model.parameters()), lr=2e-2)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = F.mse_loss(model(x), tg.Tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], (losses[0], losses[-1])


def test_maxout_matches_torch_view_max():
    """torch has no Maxout; its usual form is z.view(..., out, k).max(-1)[0], whose gradient goes
    to the index max returns: the same numbers here, ties included."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    z = np.round(rng.normal(size=(5, 12)), 1)   # rounded: ties do occur
    grad_out = rng.normal(size=(5, 4))
    zt = torch.tensor(z, requires_grad=True)
    yt = zt.view(5, 4, 3).max(-1)[0]
    yt.backward(torch.tensor(grad_out))
    zo = tg.Tensor(z, requires_grad=True)
    yo = nn.maxout(zo, 3)
    yo.backward(grad_out)
    np.testing.assert_array_equal(yo.data, yt.detach().numpy())
    np.testing.assert_array_equal(zo.grad, zt.grad.numpy())
