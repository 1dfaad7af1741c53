"""tinygrad_vg/nn/deep.py: deep_mlp(kind="dense"), DenseNet-style.

    h_i = f(norm(linear([x | h_1 | ... | h_{i-1}])))      block i-1 sees width + (i-1)*growth features
    y   = transition([x | h_1 | ... | h_depth])           width + depth*growth -> width, no activation

Forward against those equations in numpy (from the state dict), keys and shapes, gradients in
float64 (element by element and by random projection), checkpointing, the probe's per-block
gradients, torch where it is installed, the error cases and a short training run.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

import tinygrad_vg as tg
import tinygrad_vg.functional as F
from tinygrad_vg import nn, optim
from tinygrad_vg.lab import Probe

from .helpers import gradcheck_module

NP_ACTIVATIONS = {"tanh": np.tanh, "sigmoid": special.expit, "relu": lambda z: np.maximum(z, 0.0),
                  "linear": lambda z: z, "softplus": lambda z: np.logaddexp(0.0, z)}
EPS = 1e-5


def np_dense(x, depth, activation, norm, state):
    f = NP_ACTIVATIONS[activation]
    features = x
    for i in range(depth):
        p = f"blocks.{i}."
        z = features @ state[p + "linear.weight"].T + state[p + "linear.bias"]
        if norm is not None:
            axis = 0 if norm == "batch" else -1
            z = (z - z.mean(axis=axis, keepdims=True)) / np.sqrt(z.var(axis=axis, keepdims=True) + EPS)
            z = z * state[p + "norm.weight"] + state[p + "norm.bias"]
        features = np.concatenate([features, f(z)], axis=-1)
    return features @ state["transition.weight"].T + state["transition.bias"]


def expected_shapes(width, depth, growth):
    shapes = {}
    for i in range(depth):
        shapes[f"blocks.{i}.linear.weight"] = (growth, width + i * growth)
        shapes[f"blocks.{i}.linear.bias"] = (growth,)
    shapes["transition.weight"] = (width, width + depth * growth)
    shapes["transition.bias"] = (width,)
    return shapes


@settings(deadline=None, max_examples=30)
@given(width=st.integers(1, 5), depth=st.integers(1, 4), growth=st.one_of(st.none(), st.integers(1, 4)),
       batch=st.integers(2, 4), activation=st.sampled_from(list(NP_ACTIVATIONS)),
       norm=st.sampled_from([None, "batch", "layer"]), init=st.sampled_from(["standard", "xavier_normal", "he_normal"]),
       seed=st.integers(0, 2**16))
def test_dense_forward_matches_the_equations(width, depth, growth, batch, activation, norm, init, seed):
    model = nn.deep_mlp("dense", width, depth, activation, init=init, norm=norm, growth=growth,
                        dtype=np.float64, rng=seed)
    g = width if growth is None else growth
    assert model.growth == g
    state = model.state_dict()
    shapes = expected_shapes(width, depth, g)
    assert {k: v.shape for k, v in state.items() if k in shapes} == shapes
    assert all(".norm." in k for k in set(state) - set(shapes))
    x = np.random.default_rng(seed).normal(size=(batch, width))
    y = model(x)
    assert y.shape == (batch, width) and y.dtype == np.float64
    np.testing.assert_allclose(y.data, np_dense(x, depth, activation, norm, state), rtol=1e-9, atol=1e-12)


def test_dense_keys_in_order():
    assert list(nn.deep_mlp("dense", 4, 2, rng=0).state_dict()) == [
        "blocks.0.linear.weight", "blocks.0.linear.bias", "blocks.1.linear.weight", "blocks.1.linear.bias",
        "transition.weight", "transition.bias"]
    assert "growth=3" in repr(nn.deep_mlp("dense", 4, 2, growth=3, rng=0))


@settings(deadline=None, max_examples=20)
@given(width=st.integers(1, 3), depth=st.integers(1, 3), growth=st.integers(1, 3), batch=st.integers(2, 3),
       activation=st.sampled_from(["tanh", "sigmoid", "softplus"]), norm=st.sampled_from([None, "batch", "layer"]),
       seed=st.integers(0, 2**16))
def test_dense_gradients_element_by_element(width, depth, growth, batch, activation, norm, seed):
    if norm == "layer" and growth == 1:
        growth = 2   # a one-feature LayerNorm outputs its bias whatever the input: nothing to check
    model = nn.deep_mlp("dense", width, depth, activation, norm=norm, growth=growth, dtype=np.float64, rng=seed)
    x = tg.Tensor(np.random.default_rng(seed).normal(size=(batch, width)), requires_grad=True)
    assert gradcheck_module(model, [x])


def test_dense_gradients_random_projection_deeper():
    model = nn.deep_mlp("dense", 6, 8, "tanh", growth=4, dtype=np.float64, rng=0)
    x = tg.Tensor(np.random.default_rng(0).normal(size=(5, 6)), requires_grad=True)
    assert gradcheck_module(model, [x], fast=True)


def test_dense_blocks_are_fused_nodes_and_checkpointing_gives_the_same_gradients():
    model = nn.deep_mlp("dense", 4, 3, "tanh", dtype=np.float64, rng=0)
    out = model(tg.Tensor(np.ones((2, 4)), requires_grad=True))
    assert [n.name for n in tg.tape(out)] == ["LinearAct", "Concatenate"] * 3 + ["Linear"]
    x = np.random.default_rng(0).normal(size=(3, 4))
    grads = []
    for segments in (None, 2, True):
        m = nn.deep_mlp("dense", 4, 5, "tanh", dtype=np.float64, rng=0, checkpoint_segments=segments)
        xt = tg.Tensor(x, requires_grad=True)
        F.mse_loss(m(xt), np.ones((3, 4))).backward()
        grads.append([xt.grad] + [p.grad for p in m.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)


def test_the_probe_sees_each_blocks_new_features_and_their_total_gradient():
    """dL/dh_i of a dense block is the sum over every later block and the transition that reads h_i."""
    rng = np.random.default_rng(3)
    width, depth, growth = 4, 3, 2
    model = nn.deep_mlp("dense", width, depth, "tanh", growth=growth, dtype=np.float64, rng=rng)
    x, y = rng.normal(size=(5, width)), rng.normal(size=(5, width))
    with Probe(model.blocks) as probe:
        F.mse_loss(model(tg.Tensor(x, requires_grad=True)), y).backward()
    # by hand: the blocks on the growing concatenation, every h_i retained
    hs, features = [], tg.Tensor(x, requires_grad=True)
    hs.append(features)
    for block in model.blocks:
        h = block(features)
        h.retain_grad()
        hs.append(h)
        features = tg.concatenate([features, h], axis=-1)
    F.mse_loss(model.transition(features), y).backward()
    assert [g.shape for g in probe.grad_h] == [(5, width)] + [(5, growth)] * depth
    for got, h in zip(probe.grad_h, hs):
        np.testing.assert_allclose(got, h.grad, rtol=1e-12)


def test_growth_only_for_dense_and_checked():
    with pytest.raises(ValueError, match="growth=4 applies only with kind='dense'"):
        nn.deep_mlp("plain", 3, 2, growth=4)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="growth must be a positive int"):
            nn.deep_mlp("dense", 3, 2, growth=bad)
    with pytest.raises(ValueError, match=r"deep_mlp\(dense, width=3\) expects input of shape \(\.\.\., 3\)"):
        nn.deep_mlp("dense", 3, 2)(np.ones((2, 5), np.float32))


def test_a_20_block_dense_net_trains_on_random_data():
    """The seed's task (random 20-d inputs and targets, batch 32, MSE), where the plain tanh net
    barely moves at this learning rate (tests/nn/test_deep.py)."""
    rng = np.random.default_rng(0)
    model = nn.deep_mlp("dense", 20, 20, "tanh", growth=10, init="standard", dtype=np.float64, rng=rng)
    x, y = rng.normal(size=(32, 20)), rng.normal(size=(32, 20))
    opt = optim.SGD(list(model.parameters()), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = F.mse_loss(model(x), tg.Tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_dense_matches_torch():
    torch = pytest.importorskip("torch")
    width, depth, growth = 3, 3, 2
    ours = nn.deep_mlp("dense", width, depth, "tanh", growth=growth, dtype=np.float64, rng=0)
    linears = [torch.nn.Linear(width + i * growth, growth, dtype=torch.float64) for i in range(depth)]
    transition = torch.nn.Linear(width + depth * growth, width, dtype=torch.float64)
    state = {f"blocks.{i}.linear.{k}": v for i, lin in enumerate(linears) for k, v in lin.state_dict().items()}
    state.update({f"transition.{k}": v for k, v in transition.state_dict().items()})
    ours.load_state_dict({k: v.detach().numpy() for k, v in state.items()})
    rng = np.random.default_rng(1)
    x, grad_out = rng.normal(size=(4, width)), rng.normal(size=(4, width))
    xt = torch.tensor(x, requires_grad=True)
    features = xt
    for lin in linears:
        features = torch.cat([features, torch.tanh(lin(features))], dim=-1)
    out_t = transition(features)
    out_t.backward(torch.tensor(grad_out))
    xo = tg.Tensor(x, requires_grad=True)
    out_o = ours(xo)
    out_o.backward(grad_out)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    torch_grads = {f"blocks.{i}.linear.{k}": p.grad for i, lin in enumerate(linears) for k, p in lin.named_parameters()}
    torch_grads.update({f"transition.{k}": p.grad for k, p in transition.named_parameters()})
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, torch_grads[name].numpy(), rtol=1e-10, atol=1e-14, err_msg=name)
