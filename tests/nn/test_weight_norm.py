"""tinygrad_vg/nn/utils.py: weight norm, w = g v / ||v|| (torch.nn.utils.weight_norm).

Values against the formula, gradients in float64 (input, g and v, random upstream), state-dict
names and shapes, torch where it is installed (values, gradients of g and v, names, a torch state
dict loading), remove_weight_norm, deep_mlp(weight_norm=True) on the fused and per-block paths,
the error cases, and a short training run.
"""
import copy
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg import nn, optim
from tinygrad_vg.nn.utils import has_weight_norm, remove_weight_norm, weight_norm

from .helpers import gradcheck_module


def np_weight(g, v, dim):
    if dim is None:
        return g * v / np.sqrt((v * v).sum())
    axes = tuple(a for a in range(v.ndim) if a != dim)
    return g * v / np.sqrt((v * v).sum(axis=axes, keepdims=True))


@pytest.mark.parametrize("dim, g_shape", [(0, (4, 1)), (1, (1, 3)), (None, ()), (-1, ())])
def test_linear_state_dict_shapes_and_unchanged_weight(dim, g_shape):
    layer = nn.Linear(3, 4, dtype=np.float64, rng=0)
    before = layer.weight.data.copy()
    assert weight_norm(layer, dim=dim) is layer
    state = layer.state_dict()
    assert list(state) == ["bias", "weight_g", "weight_v"]     # torch's order
    assert state["weight_g"].shape == g_shape and state["weight_v"].shape == (4, 3)
    assert "weight" not in dict(layer.named_parameters())
    np.testing.assert_allclose(layer.weight.data, before, rtol=1e-14)
    np.testing.assert_allclose(np_weight(state["weight_g"], state["weight_v"], None if dim == -1 else dim),
                               before, rtol=1e-14)


@settings(deadline=None, max_examples=25)
@given(dim=st.sampled_from([0, 1, None]), batch=st.integers(1, 4), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_linear_values_follow_g_and_v_and_gradcheck(dim, batch, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    layer = weight_norm(nn.Linear(n_in, n_out, dtype=np.float64, rng=seed), dim=dim)
    layer.weight_g.data = rng.uniform(0.5, 2.0, size=layer.weight_g.shape)   # g no longer ||v||
    x = tg.Tensor(rng.normal(size=(batch, n_in)), requires_grad=True)
    want = x.data @ np_weight(layer.weight_g.data, layer.weight_v.data, dim).T + layer.bias.data
    np.testing.assert_allclose(layer(x).data, want, rtol=1e-12, atol=1e-14)
    assert gradcheck_module(layer, [x])   # input, bias, g and v; random upstream gradient


def test_gradients_of_g_and_v_by_hand():
    """grad_g = sum_j grad_w * v / ||v||, grad_v = (g/||v||) (grad_w - (w/g) grad_g), per row."""
    rng = np.random.default_rng(0)
    layer = weight_norm(nn.Linear(3, 2, bias=False, dtype=np.float64, rng=0))
    layer.weight_g.data = np.array([[1.5], [0.7]])
    x = rng.normal(size=(5, 3))
    grad_out = rng.normal(size=(5, 2))
    layer(x).backward(grad_out)
    g, v = layer.weight_g.data, layer.weight_v.data
    n = np.sqrt((v * v).sum(axis=1, keepdims=True))
    w = g * v / n
    grad_w = grad_out.T @ x
    grad_g = (grad_w * v).sum(axis=1, keepdims=True) / n
    np.testing.assert_allclose(layer.weight_g.grad, grad_g, rtol=1e-12)
    np.testing.assert_allclose(layer.weight_v.grad, g / n * (grad_w - w / g * grad_g), rtol=1e-12)


def test_each_forward_uses_the_current_g_and_v_and_keeps_no_graph():
    layer = weight_norm(nn.Linear(3, 2, dtype=np.float64, rng=0))
    x = np.ones((1, 3))
    first = layer(x).data.copy()
    layer.weight_g.data = layer.weight_g.data * 2.0
    np.testing.assert_allclose(layer(x).data - layer.bias.data, 2.0 * (first - layer.bias.data), rtol=1e-12)
    # the output dropped, the module holds no graph: an optimizer step may change g and v
    loss = layer(x).sum()
    loss.backward()
    layer(x)   # an evaluation whose output is dropped
    assert layer.weight.node is None and not layer.weight.requires_grad
    optim.SGD(list(layer.parameters()), lr=0.1).step()   # g and v are not held by a graph


def test_other_parameters_and_modules():
    # any parameter name and any module: a 1-D bias along its only axis (|v_i|), and a NARX cell
    layer = weight_norm(nn.Linear(3, 2, dtype=np.float64, rng=0), name="bias")
    assert list(layer.state_dict()) == ["weight", "bias_g", "bias_v"]
    np.testing.assert_allclose(layer.bias_g.data, np.abs(layer.bias_v.data))
    x = tg.Tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True)
    assert gradcheck_module(layer, [x])
    cell = weight_norm(nn.NARXCell(2, 3, delay=2, dtype=np.float64, rng=0), name="weight_hh")
    assert set(cell.state_dict()) == {"weight_ih", "bias_ih", "bias_hh", "weight_hh_g", "weight_hh_v"}
    xs = tg.Tensor(np.random.default_rng(1).normal(size=(2, 2)), requires_grad=True)
    history = [np.random.default_rng(2).normal(size=(2, 3)) for _ in range(2)]
    assert gradcheck_module(cell, [xs], call=lambda m, x: m(x, history))


def test_remove_weight_norm_folds_g_and_v_into_weight():
    layer = weight_norm(nn.Linear(3, 4, dtype=np.float64, rng=0))
    layer.weight_g.data = layer.weight_g.data * 3.0
    x = np.random.default_rng(0).normal(size=(2, 3))
    before = layer(x).data.copy()
    assert remove_weight_norm(layer) is layer
    assert list(layer.state_dict()) == ["bias", "weight"] and not has_weight_norm(layer)
    assert isinstance(layer.weight, nn.Parameter) and "forward" not in layer.__dict__
    np.testing.assert_allclose(layer(x).data, before, rtol=1e-12)
    weight_norm(layer)   # and again
    np.testing.assert_allclose(layer(x).data, before, rtol=1e-12)


def test_copies_and_dtype_conversion():
    layer = weight_norm(nn.Linear(3, 2, rng=0))
    twin = copy.deepcopy(layer)
    twin.weight_g.data = twin.weight_g.data * 0.0 + 1.0
    x = np.ones((1, 3), np.float32)
    assert not np.allclose(twin(x).data, layer(x).data)   # the copy runs with its own g
    layer.double()
    assert layer(np.ones((1, 3))).dtype == np.float64


def test_errors_name_what_was_wrong():
    layer = nn.Linear(3, 2, rng=0)
    with pytest.raises(TypeError, match="expected an nn.Module, got ndarray"):
        weight_norm(np.ones(3))
    with pytest.raises(ValueError, match="Linear has no parameter 'wieght'; its parameters: weight, bias"):
        weight_norm(layer, "wieght")
    with pytest.raises(ValueError, match=r"dim=2 is out of range.*accepted: 0 \.\. 1, or None / -1"):
        weight_norm(layer, dim=2)
    with pytest.raises(ValueError, match="dim=-2 is out of range"):
        weight_norm(layer, dim=-2)
    with pytest.raises(TypeError, match="dim must be an int or None, got 0.5"):
        weight_norm(layer, dim=0.5)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in Linear"):
        remove_weight_norm(layer)
    weight_norm(layer)
    with pytest.raises(RuntimeError, match="already weight-normalised"):
        weight_norm(layer)
    zero_row = nn.Linear(3, 2, rng=0)
    zero_row.weight.data[1] = 0.0
    with pytest.raises(ValueError, match="norm 0 over slice 1 along dim 0.*undefined"):
        weight_norm(zero_row)
    assert "weight" in zero_row._parameters   # refused before anything changed


# ----- deep_mlp(weight_norm=True) -------------------------------------------------------------------
@pytest.mark.parametrize("kind", nn.KINDS)
def test_deep_mlp_weight_norm_keys_values_and_gradients(kind):
    plain = nn.deep_mlp(kind, 3, 2, "tanh", dtype=np.float64, rng=0)
    normed = nn.deep_mlp(kind, 3, 2, "tanh", dtype=np.float64, rng=0, weight_norm=True)
    keys = list(normed.state_dict())
    assert not any(k.endswith(".weight") for k in keys)
    assert {k[:-2] for k in keys if k.endswith("_g")} == {k for k in plain.state_dict() if k.endswith(".weight")}
    x = tg.Tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
    np.testing.assert_allclose(normed(x).data, plain(x).data, rtol=1e-12)   # w unchanged at first
    assert gradcheck_module(normed, [x])


@pytest.mark.parametrize("kind", ["plain", "residual"])
def test_the_fused_stack_runs_under_weight_norm_with_fresh_weights(kind):
    model = nn.deep_mlp(kind, 4, 3, "tanh", dtype=np.float64, rng=0, weight_norm=True)
    x = tg.Tensor(np.random.default_rng(0).normal(size=(2, 4)), requires_grad=True)
    assert type(model(x).node).__name__ == "LinearActStack"
    per_layer = nn.deep_mlp(kind, 4, 3, "tanh", dtype=np.float64, rng=0, weight_norm=True, fused_stack=False)
    for _ in range(3):   # each step changes g and v; each forward must see them
        outs = []
        for m in (model, per_layer):
            m.zero_grad()
            out = m(x)
            F.mse_loss(out, np.zeros((2, 4))).backward()
            outs.append((out.data.copy(), [p.grad.copy() for p in m.parameters()]))
            optim.SGD(list(m.parameters()), lr=0.5).step()
        np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12)
        for a, b in zip(outs[0][1], outs[1][1]):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_weight_norm_applied_by_hand_inside_deep_mlp_and_checkpointed():
    model = nn.deep_mlp("residual", 3, 4, "tanh", dtype=np.float64, rng=0)
    weight_norm(model.blocks[2].linear)   # one block only, after the net was built
    x = tg.Tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True)
    assert gradcheck_module(model, [x])
    ckpt = nn.deep_mlp("residual", 3, 4, "tanh", dtype=np.float64, rng=0, weight_norm=True, checkpoint_segments=2)
    full = nn.deep_mlp("residual", 3, 4, "tanh", dtype=np.float64, rng=0, weight_norm=True)
    grads = []
    for m in (ckpt, full):
        F.mse_loss(m(x), np.ones((2, 3))).backward()
        grads.append([p.grad for p in m.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_deep_mlp_weight_norm_must_be_a_bool():
    with pytest.raises(TypeError, match="weight_norm must be True or False, got 'yes'"):
        nn.deep_mlp("plain", 3, 2, weight_norm="yes")


def test_a_weight_normalised_net_trains():
    rng = np.random.default_rng(0)
    model = nn.deep_mlp("plain", 8, 4, "tanh", dtype=np.float64, rng=rng, weight_norm=True)
    x = rng.normal(size=(32, 8))
    y = np.sin(x)
    opt = optim.Adam(list(model.parameters()), lr=1e-2)
    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = F.mse_loss(model(x), tg.Tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])


# ----- torch -----------------------------------------------------------------------------------------
@pytest.fixture
def torch64():
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield torch
    torch.set_default_dtype(previous)


def torch_weight_norm(torch, module, dim):
    with warnings.catch_warnings():   # deprecated in favour of parametrizations.weight_norm (other names)
        warnings.simplefilter("ignore")
        return torch.nn.utils.weight_norm(module, dim=dim)


@pytest.mark.parametrize("dim", [0, 1, None, -1])
def test_matches_torch_values_gradients_and_names(torch64, dim):
    torch = torch64
    theirs = torch_weight_norm(torch, torch.nn.Linear(3, 4), dim)
    with torch.no_grad():
        theirs.weight_g.mul_(torch.linspace(0.5, 2.0, theirs.weight_g.numel()).reshape(theirs.weight_g.shape))
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    ours = weight_norm(nn.Linear(3, 4, dtype=np.float64, rng=0), dim=dim)
    assert list(ours.state_dict()) == list(state)
    assert all(ours.state_dict()[k].shape == v.shape for k, v in state.items())
    ours.load_state_dict(state)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 3))
    grad_out = rng.normal(size=(5, 4))
    out_t = theirs(torch.tensor(x))
    out_t.backward(torch.tensor(grad_out))
    out_o = ours(x)
    out_o.backward(grad_out)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(), rtol=1e-10,
                                   atol=1e-14, err_msg=name)
    torch.nn.utils.remove_weight_norm(theirs)
    remove_weight_norm(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12)
