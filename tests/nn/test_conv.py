"""tinygrad_vg/nn/conv.py and nn/convnet.py: conv, pool and BatchNorm2d layers with torch's names,
shapes, init and state-dict keys; the CIFAR-style conv nets (plain / residual, depth 6n + 2).
Gradchecked in float64 with respect to the input and every parameter; compared with torch
(a torch state dict loads) when torch is installed."""
import numpy as np
import pytest

import tinygrad_vg as tg
from tinygrad_vg import nn
from tinygrad_vg.lab.probes import Probe

from .helpers import gradcheck_module


def torch_or_skip():
    return pytest.importorskip("torch", reason="torch not installed: the comparison with torch is skipped")


# ---------------------------------------------------------------- layers

def test_conv_layers_have_torch_shapes_keys_and_init():
    conv = nn.Conv2d(6, 8, (3, 2), stride=2, padding=1, groups=2, rng=0)
    assert conv.weight.shape == (8, 3, 3, 2) and conv.bias.shape == (8,)
    assert list(conv.state_dict()) == ["weight", "bias"]
    bound = 1 / np.sqrt(3 * 3 * 2)   # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.8 * bound
    assert np.abs(conv.bias.data).max() <= bound
    assert conv(np.zeros((2, 6, 5, 4), np.float32)).shape == (2, 8, 3, 3)
    conv1 = nn.Conv1d(4, 5, 3, bias=False, dtype=np.float64)
    assert conv1.bias is None and list(conv1.state_dict()) == ["weight"] and conv1.weight.shape == (5, 4, 3)
    assert conv1(np.zeros((2, 4, 7))).shape == (2, 5, 5)
    bn = nn.BatchNorm2d(3)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]


@pytest.mark.parametrize("layer", [
    lambda: nn.Conv2d(4, 6, 3, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, dtype=np.float64, rng=1),
    lambda: nn.Conv2d(3, 2, 1, dtype=np.float64, rng=1),
    lambda: nn.BatchNorm2d(4, dtype=np.float64),
    lambda: nn.MaxPool2d(3, stride=2, padding=1),
    lambda: nn.AvgPool2d(2),
    lambda: nn.AdaptiveAvgPool2d((2, 3)),
])
def test_layers_gradcheck(layer):
    module = layer()
    channels = module.in_channels if hasattr(module, "in_channels") else 4
    if isinstance(module, nn.Conv2d) and channels == 3:
        channels = 3
    x = np.random.default_rng(2).permutation(2 * channels * 5 * 6).reshape(2, channels, 5, 6) / 7.0
    assert gradcheck_module(module, [x])


def test_conv1d_gradcheck():
    module = nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, dtype=np.float64, rng=3)
    assert gradcheck_module(module, [np.random.default_rng(3).normal(size=(2, 4, 9))])


def test_batchnorm2d_running_stats_and_eval():
    bn = nn.BatchNorm2d(3, momentum=0.5, dtype=np.float64)
    x = np.random.default_rng(4).normal(2.0, 3.0, size=(4, 3, 5, 5))
    y = bn(x).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * x.var(axis=(0, 2, 3), ddof=1), rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    want = (x - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(x).data, want, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    cumulative = nn.BatchNorm2d(3, momentum=None, dtype=np.float64)
    cumulative(x)
    cumulative(x + 1)
    np.testing.assert_allclose(cumulative.running_mean, x.mean(axis=(0, 2, 3)) + 0.5, rtol=1e-12)


def test_layer_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"Conv2d: groups=3 must divide in_channels=4"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be an int >= 1 or 2 such ints; got \(3,\)"):
        nn.Conv2d(4, 6, (3,))
    with pytest.raises(ValueError, match=r"Conv2d: padding_mode 'reflect' is not supported"):
        nn.Conv2d(4, 6, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv2d expects input of shape \(N, C, H, W\) with C = 4; got shape"):
        nn.Conv2d(4, 6, 3)(np.zeros((1, 3, 5, 5), np.float32))
    with pytest.raises(TypeError, match=r"Conv2d: input is float64 but the parameters are float32"):
        nn.Conv2d(4, 6, 3)(np.zeros((1, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"BatchNorm2d expects input of shape \(N, C, H, W\) with C = 3"):
        nn.BatchNorm2d(3)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 2\) must be at most half"):
        nn.MaxPool2d(3, padding=2)
    with pytest.raises(ValueError, match=r"BatchNorm2d: momentum must be in \[0, 1\] or None"):
        nn.BatchNorm2d(3, momentum=2)


def test_torch_state_dicts_load_and_give_torch_values_and_gradients():
    torch = torch_or_skip()
    torch.manual_seed(0)
    pairs = [
        (torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2,
                                                                           dtype=np.float64)),
        (torch.nn.Conv1d(4, 6, 3, dilation=2), nn.Conv1d(4, 6, 3, dilation=2, dtype=np.float64)),
        (torch.nn.BatchNorm2d(4), nn.BatchNorm2d(4, dtype=np.float64)),
    ]
    rng = np.random.default_rng(5)
    for theirs, ours in pairs:
        theirs = theirs.double()
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        x = rng.normal(size=(3, 4, 7) if isinstance(ours, nn.Conv1d) else (3, 4, 7, 6))
        xt, xo = torch.tensor(x, requires_grad=True), tg.Tensor(x, requires_grad=True)
        yt, yo = theirs(xt), ours(xo)
        g = rng.normal(size=tuple(yt.shape))
        yt.backward(torch.tensor(g))
        yo.backward(g)
        np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=name)
        for name, b in ours.named_buffers():
            np.testing.assert_allclose(b, theirs.state_dict()[name].numpy(), rtol=1e-12, err_msg=name)


# ---------------------------------------------------------------- conv nets

def test_conv_net_layout_keys_and_depths():
    model = nn.conv_net("residual", depth=20, rng=0)
    assert len(model.blocks) == 9
    weights = [k for k in model.state_dict() if k.endswith("weight") and ("conv" in k or "fc" in k)]
    assert len(weights) == 20   # 6n + 2 weighted layers
    assert [model.blocks[i].conv1.out_channels for i in (0, 3, 6)] == [16, 32, 64]
    assert [model.blocks[i].conv1.stride for i in (2, 3, 6)] == [(1, 1), (2, 2), (2, 2)]
    keys = set(model.state_dict())
    assert {"stem.conv.weight", "stem.bn.running_mean", "blocks.0.conv1.weight", "blocks.0.bn2.bias",
            "blocks.8.conv2.weight", "fc.weight", "fc.bias"} <= keys
    assert not any("shortcut" in k for k in keys)   # option A has no parameters
    projected = nn.conv_net("residual", depth=8, width=2, shortcut="B", rng=0)
    assert {"blocks.1.shortcut.conv.weight", "blocks.1.shortcut.bn.running_var"} <= set(projected.state_dict())
    assert projected.blocks[2].conv1.out_channels == 128
    assert len(nn.conv_net("plain", depth=56, rng=0).blocks) == 27
    assert nn.resnet_depths(56)[-3:] == [44, 50, 56]
    y = model(np.zeros((2, 3, 8, 8), np.float32))
    assert y.shape == (2, 10)


@pytest.mark.parametrize("bad, message", [
    (dict(depth=21), r"depth must be 6n \+ 2 with n >= 1"),
    (dict(kind="dense"), r"unknown kind 'dense'; accepted: plain, residual"),
    (dict(shortcut="C"), r"unknown shortcut 'C'; accepted: 'A'"),
    (dict(width=0), r"width must be a positive int"),
])
def test_conv_net_bad_arguments(bad, message):
    with pytest.raises(ValueError, match=message):
        nn.conv_net(**{"kind": "residual", "depth": 8, **bad})


@pytest.mark.parametrize("kind, shortcut", [("plain", "A"), ("residual", "A"), ("residual", "B")])
def test_conv_net_gradcheck(kind, shortcut):
    model = nn.conv_net(kind, depth=8, num_classes=3, in_channels=2, shortcut=shortcut, dtype=np.float64, rng=6)
    x = np.random.default_rng(6).normal(size=(3, 2, 4, 4))
    assert gradcheck_module(model, [x], fast=True)


def test_residual_block_equation_and_option_a_shortcut():
    block = nn.BasicBlock(2, 4, stride=2, residual=True, dtype=np.float64, rng=7)
    x = np.random.default_rng(7).normal(size=(2, 2, 4, 4))
    plain = nn.BasicBlock(2, 4, stride=2, residual=False, dtype=np.float64, rng=7)
    plain.load_state_dict(block.state_dict())
    inner = plain.bn2(plain.conv2(tg.functional.relu(plain.bn1(plain.conv1(x))))).data
    skip = np.zeros((2, 4, 2, 2))
    skip[:, 1:3] = x[:, :, ::2, ::2]
    np.testing.assert_allclose(block(x).data, np.maximum(inner + skip, 0), rtol=1e-12)
    np.testing.assert_allclose(plain(x).data, np.maximum(inner, 0), rtol=1e-12)


def test_probe_records_every_block_of_a_conv_net():
    model = nn.conv_net("residual", depth=14, width=1, num_classes=4, rng=8)
    x = np.random.default_rng(8).normal(size=(4, 3, 8, 8)).astype(np.float32)
    with Probe(model.blocks) as probe:
        loss = tg.functional.cross_entropy(model(x), np.array([0, 1, 2, 3]))
        loss.backward()
        norms = probe.grad_h_norm()
    assert len(norms) == len(model.blocks) + 1 and all(n is not None and n > 0 for n in norms)


def test_basic_block_loads_a_torch_block_of_the_same_keys():
    torch = torch_or_skip()
    tnn = torch.nn

    class TorchBlock(tnn.Module):   # torchvision's BasicBlock with a projection shortcut
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 4, 3, 2, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(4)
            self.conv2 = tnn.Conv2d(4, 4, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(4)
            self.shortcut = tnn.Module()
            self.shortcut.conv = tnn.Conv2d(3, 4, 1, 2, bias=False)
            self.shortcut.bn = tnn.BatchNorm2d(4)

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + self.shortcut.bn(self.shortcut.conv(x)))

    torch.manual_seed(1)
    theirs = TorchBlock().double()
    ours = nn.BasicBlock(3, 4, stride=2, shortcut="B", dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(9).normal(size=(2, 3, 6, 6))
    np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
