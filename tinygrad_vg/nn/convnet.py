"""Convolutional deep nets, CIFAR style (He et al. 2016, section 4.2): plain and residual.

    stem:    h = relu(bn(conv3x3(x)))                      3 -> 16 w channels     keys stem.conv.*, stem.bn.*
    blocks:  3 stages of n blocks, widths 16 w, 32 w, 64 w; the first block of stages 2 and 3
             halves the feature map (stride 2) and doubles the channels:
             plain:    h = relu(bn2(conv2(relu(bn1(conv1(h))))))                 keys blocks.i.conv1.*, bn1, conv2, bn2
             residual: h = relu(bn2(conv2(relu(bn1(conv1(h))))) + shortcut(h))
    head:    global average pooling, then fc (64 w -> classes)                   keys fc.*

depth = 6n + 2 weighted layers (the stem, 2 per block, the fc): 20 (n = 3), 56 (n = 9), 110 ...
Shortcuts where the shape changes: option "A" (the paper's CIFAR choice, no parameters)
subsamples h with stride 2 and pads the new channels with zeros; option "B" is a projection,
a 1x1 conv with stride 2 and a BatchNorm (keys blocks.i.shortcut.conv.*, blocks.i.shortcut.bn.*).
Elsewhere the shortcut is the identity.

Why they differ (the seeds' point): a plain block's Jacobian is a product of convolutions and
BN/relu slopes, so 56 layers multiply 27 of them; a residual block adds the identity, which
keeps a path of weight 1 from the loss to every block. lab/conv_experiments.py measures the
per-block ||dL/dh|| with a Probe on `model.blocks` (each block's output h_l; h_0 is the stem's).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from . import init
from .conv import BatchNorm2d, Conv2d, _as_input
from .linear import Linear
from .module import Module, ModuleList

__all__ = ["BasicBlock", "Shortcut", "ConvNet", "conv_net", "CONV_KINDS", "SHORTCUTS", "resnet_depths"]

CONV_KINDS = ("plain", "residual")
SHORTCUTS = ("A", "B")


def _he_init(conv: Conv2d, rng: np.random.Generator) -> None:
    """He et al. 2015's N(0, 2 / fan_out) for a conv followed by relu (what torchvision's ResNets use)."""
    init.he_normal_(conv.weight, mode="fan_out", nonlinearity="relu", rng=rng)


class Shortcut(Module):
    """The skip path of a block whose shape changes (stride 2, channels in -> out).
    "A": x[:, :, ::2, ::2] with the extra channels zero (no parameters); "B": bn(conv1x1, stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, option: str, dtype: Any,
                 rng: np.random.Generator) -> None:
        super().__init__()
        self.option, self.in_channels, self.out_channels, self.stride = option, in_channels, out_channels, stride
        if option == "B":
            self.conv = Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, dtype=dtype, rng=rng)
            _he_init(self.conv, rng)
            self.bn = BatchNorm2d(out_channels, dtype=dtype)

    def forward(self, h: Tensor) -> Tensor:
        if self.option == "B":
            return self.bn(self.conv(h))
        sub = h[:, :, ::self.stride, ::self.stride]
        extra = self.out_channels - self.in_channels
        if extra == 0:
            return sub
        zeros = np.zeros((sub.shape[0], extra) + tuple(sub.shape[2:]), dtype=sub.data.dtype)
        before = extra // 2   # as the reference CIFAR implementations: pad both sides
        return F.concatenate([zeros[:, :before], sub, zeros[:, before:]], axis=1)

    def extra_repr(self) -> str:
        return f"option={self.option!r}, {self.in_channels} -> {self.out_channels}, stride={self.stride}"


class BasicBlock(Module):
    """Two 3x3 convs with BatchNorm: relu(bn2(conv2(relu(bn1(conv1(h))))) [+ shortcut(h)] before the last relu)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True,
                 shortcut: str = "A", dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        rng = init._rng(rng)
        self.residual = bool(residual)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, dtype=dtype, rng=rng)
        self.bn1 = BatchNorm2d(out_channels, dtype=dtype)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False, dtype=dtype, rng=rng)
        self.bn2 = BatchNorm2d(out_channels, dtype=dtype)
        _he_init(self.conv1, rng)
        _he_init(self.conv2, rng)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = (Shortcut(in_channels, out_channels, stride, shortcut, dtype, rng)
                         if residual and needs_projection else None)

    def forward(self, h: Any) -> Tensor:
        h = h if isinstance(h, Tensor) else Tensor(h)
        out = F.relu(self.bn1(self.conv1(h)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + (h if self.shortcut is None else self.shortcut(h))
        return F.relu(out)

    def extra_repr(self) -> str:
        return f"residual={self.residual}"


class _Stem(Module):
    def __init__(self, in_channels: int, out_channels: int, dtype: Any, rng: np.random.Generator) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 3, padding=1, bias=False, dtype=dtype, rng=rng)
        _he_init(self.conv, rng)
        self.bn = BatchNorm2d(out_channels, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def resnet_depths(max_depth: int = 1202) -> list[int]:
    """The depths conv_net accepts, 6n + 2: 8, 14, 20, 26, 32, 38, 44, 50, 56, ..."""
    return list(range(8, max_depth + 1, 6))


class ConvNet(Module):
    """stem, blocks.0 .. blocks.{3n-1}, global average pooling, fc (see the module docstring)."""

    def __init__(self, kind: str = "residual", depth: int = 20, width: int = 1, num_classes: int = 10,
                 in_channels: int = 3, shortcut: str = "A", dtype: Any = np.float32, rng: Any = None) -> None:
        super().__init__()
        if kind not in CONV_KINDS:
            raise ValueError(f"conv_net: unknown kind {kind!r}; accepted: {', '.join(CONV_KINDS)}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"conv_net: unknown shortcut {shortcut!r}; accepted: 'A' (zero-padded identity, "
                             "no parameters) or 'B' (1x1 conv projection)")
        if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"conv_net: depth must be 6n + 2 with n >= 1 (8, 14, 20, 26, 32, 44, 56, 110, ...: "
                             f"the CIFAR ResNets of He et al. 2016); got {depth!r}")
        for name, value in (("width", width), ("num_classes", num_classes), ("in_channels", in_channels)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"conv_net: {name} must be a positive int; got {value!r}")
        rng = init._rng(rng)
        self.kind, self.depth, self.width, self.shortcut = kind, int(depth), int(width), shortcut
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        n = (depth - 2) // 6
        widths = [16 * width, 32 * width, 64 * width]
        self.stem = _Stem(in_channels, widths[0], dtype, rng)
        blocks, channels = [], widths[0]
        for stage, out_channels in enumerate(widths):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, out_channels, stride, residual=kind == "residual",
                                         shortcut=shortcut, dtype=dtype, rng=rng))
                channels = out_channels
        self.blocks = ModuleList(blocks)
        self.fc = Linear(channels, num_classes, dtype=dtype, rng=rng)

    def features(self, x: Any) -> Tensor:
        """The last block's output (N, 64 w, H / 4, W / 4)."""
        h = self.stem(_as_input(f"conv_net({self.kind}, depth={self.depth})", x, 2, self.in_channels,
                                self.stem.conv.weight.data.dtype))
        for block in self.blocks:
            h = block(h)
        return h

    def forward(self, x: Any) -> Tensor:
        h = self.features(x)
        return self.fc(h.mean(axis=(2, 3)))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, depth={self.depth}, width={self.width}, shortcut={self.shortcut!r}"


def conv_net(kind: str = "residual", depth: int = 20, width: int = 1, num_classes: int = 10, in_channels: int = 3,
             shortcut: str = "A", dtype: Any = np.float32, rng: Any = None) -> ConvNet:
    """A CIFAR-style conv net of depth = 6n + 2 layers: conv_net("residual", 20) is ResNet-20,
    conv_net("residual", 56) ResNet-56, conv_net("plain", 56) their plain twin (He et al. 2016,
    section 4.2). width multiplies the stage widths 16/32/64; shortcut "A" (zero-padded identity)
    or "B" (1x1 conv projection) where the shape changes; rng a numpy Generator or int seed.
    Blocks are model.blocks (keys blocks.i.*): lab.probes.Probe(model.blocks) records ||dL/dh_l||."""
    return ConvNet(kind, depth, width, num_classes, in_channels, shortcut, dtype, rng)
